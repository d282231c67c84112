/** Display helpers shared by every view of a profile. */

/** Only http(s) URLs ever become an <img> source; anything else renders the initials. */
export function webUrl(value: string | undefined): string | null {
  if (!value || !URL.canParse(value)) return null;
  const { protocol } = new URL(value);
  return protocol === 'https:' || protocol === 'http:' ? value : null;
}

/** Up to two initials from the nick (or the account): "Alice Liddell" -> "AL", "王小明" -> "王". */
export function initials(nick: string, account: string): string {
  const words = (nick.trim() || account).split(/\s+/u).filter(Boolean);
  const first = (w: string | undefined) => (w ? ([...w][0] ?? '') : '');
  const latin = /^[\p{Script=Latin}\p{N}]/u.test(words[0] ?? '');
  const text = latin && words.length > 1 ? first(words[0]) + first(words.at(-1)) : first(words[0]);
  return text.toLocaleUpperCase();
}

/**
 * One of eight palette colours per account, so a fallback avatar keeps its colour everywhere
 * (a class, not an inline style: the Content-Security-Policy allows no inline styles).
 */
export function paletteIndex(account: string): number {
  let h = 0;
  for (const ch of account) h = (h * 31 + ch.codePointAt(0)!) % 8191;
  return h % 8;
}

export const GENDER_LABEL: Record<string, string> = {
  '': 'Not given',
  unknown: 'Not given',
  male: 'Male',
  female: 'Female',
};
