/**
 * The one place that defines every profile field and its limits.
 * Used by the API's input validation, by the store, by packages/client and by the web forms.
 */
import { z } from 'zod';

export const LIMITS = {
  account: 32,
  nick: 64,
  avatar: 1024,
  sign: 256,
  email: 64,
  tel: 32,
  custom: 1024,
  /** `user.getUsers` and the client's batch size. */
  getUsers: 150,
  /** Calls per batch request: the server's default (NAMECARD_MAX_BATCH) and the client's batch size. */
  batch: 50,
  /** `admin.getUsers`. */
  adminGetUsers: 200,
  /**
   * Accounts one `user.onChange` subscription may watch besides its own and its friends. The list
   * travels in the SSE GET's URL: 150 accounts of 32 characters are about 6.3 KB URL-encoded,
   * inside the 8 KB request-line limit of common proxies (nginx, most CDNs) and Node's 16 KB.
   */
  watch: 150,
  /** Friends' profiles in one `user.sync` page. */
  syncPage: 500,
  /** Friends one account may add. */
  friends: 3000,
  /** Length of a directory search query. */
  query: 64,
  searchPage: 100,
  token: 256,
} as const;

/** Counts characters as a person does: one per code point, so an emoji or a CJK character is one. */
export const charCount = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

const maxChars = (max: number) =>
  // abort: the checks after it never see an over-long string.
  z.string().refine((s) => charCount(s) <= max, {
    message: `must be at most ${max} characters`,
    abort: true,
  });

// Lone UTF-16 surrogates cannot be stored as UTF-8; C0 controls have no place in a one-line field.
const noLoneSurrogates = (s: string) => !/\p{Cs}/u.test(s);
// Every control character (C0, DEL, C1) and the line/paragraph separators.
const oneLine = (s: string) => !/[\p{Cc}\p{Zl}\p{Zp}]/u.test(s);
// Multi-line text: tab, LF and CR (so CRLF) allowed; other controls not.
// eslint-disable-next-line no-control-regex
const printable = (s: string) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(s);
// Bidi embeddings, overrides and isolates reorder the text around them: "alice\u202Eecila" shows
// as someone else's name.
const noBidiControls = (s: string) => !/[\u202a-\u202e\u2066-\u2069]/.test(s);

/**
 * Invisible format characters (Unicode category Cf: zero-width spaces, joiners, bidi marks, word
 * joiners, BOM, soft hyphen...) let one name imitate another. Refused in names, except where
 * text needs them: a zero-width joiner right after an emoji (family and profession emoji), a
 * zero-width non-joiner between two letters of a non-Latin script (Persian, Indic), and emoji
 * tag characters after the black flag (subdivision flags).
 */
/** VS16 (emoji presentation) or a skin-tone modifier: what may sit between an emoji and a ZWJ. */
const isEmojiModifier = (ch: string) => {
  const cp = ch.codePointAt(0) ?? 0;
  return cp === 0xfe0f || (cp >= 0x1f3fb && cp <= 0x1f3ff);
};

function noInvisibleFormat(s: string): boolean {
  if (!/\p{Cf}/u.test(s)) return true;
  const chars = [...s];
  return chars.every((ch, i) => {
    if (!/\p{Cf}/u.test(ch)) return true;
    const prev = chars[i - 1] ?? '';
    const next = chars[i + 1] ?? '';
    if (ch === '\u200d') return /\p{Extended_Pictographic}/u.test(prev) || isEmojiModifier(prev);
    if (ch === '\u200c') {
      return (
        /[\p{L}\p{M}]/u.test(prev) && /\p{L}/u.test(next) && !/\p{sc=Latin}/u.test(prev + next)
      );
    }
    if (/[\u{e0020}-\u{e007f}]/u.test(ch)) return /[\u{1f3f4}\u{e0020}-\u{e007e}]/u.test(prev);
    return false;
  });
}

export const ACCOUNT_PATTERN = /^[A-Za-z0-9_.@-]{1,32}$/;
export const accountSchema = z
  .string()
  .regex(ACCOUNT_PATTERN, 'must be 1 to 32 characters of A-Z a-z 0-9 _ . @ -');

export const GENDERS = ['unknown', 'male', 'female'] as const;
export const genderSchema = z.enum(GENDERS);

const isWebUrl = (s: string) => {
  if (!URL.canParse(s)) return false;
  const { protocol, hostname } = new URL(s);
  return (protocol === 'https:' || protocol === 'http:') && hostname !== '';
};

/**
 * An avatar URL as it is stored: trimmed, then in the URL's canonical form (`new URL(s).href`:
 * scheme and host lower-cased, IDN hosts in punycode, unsafe characters percent-encoded).
 * Whitespace, quotes, angle brackets, backslashes and invisible characters inside are refused
 * rather than repaired: such a URL was not typed by a person.
 */
const avatarSchema = z
  .string()
  .refine((s) => s === '' || s.trim() !== '', {
    message: 'must be an http: or https: URL',
    abort: true,
  })
  .transform((s) => s.trim())
  .refine((s) => !/[\s"'`<>\\\p{Cc}\p{Cf}]/u.test(s), {
    message: 'must not contain spaces, quotes, < > \\ or control characters',
    abort: true,
  })
  .refine((s) => s === '' || isWebUrl(s), {
    message: 'must be an http: or https: URL',
    abort: true,
  })
  .transform((s) => (s === '' ? s : new URL(s).href))
  .refine((s) => charCount(s) <= LIMITS.avatar, `must be at most ${LIMITS.avatar} characters`);

const isRealDate = (s: string) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
};

const isJson = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const TEL_PATTERN = /^[-+()0-9]+$/;

/** Each editable field; `''` is always allowed and clears the field. */
export const profileFields = {
  nick: maxChars(LIMITS.nick)
    .refine(noLoneSurrogates, 'must be valid Unicode text')
    .refine(oneLine, 'must not contain control characters')
    .refine(
      (s) => noBidiControls(s) && noInvisibleFormat(s),
      'must not contain invisible or direction-changing characters',
    ),
  // One schema, not a union with '': zod reports a union's failure as a bare "Invalid input".
  avatar: avatarSchema,
  sign: maxChars(LIMITS.sign)
    .refine(noLoneSurrogates, 'must be valid Unicode text')
    .refine(printable, 'must not contain control characters')
    .refine(noBidiControls, 'must not contain direction-changing characters'),
  gender: z.union([z.literal(''), genderSchema], {
    error: `must be one of ${GENDERS.join(', ')}`,
  }),
  email: z.union([
    z.literal(''),
    maxChars(LIMITS.email)
      .regex(EMAIL_PATTERN, 'must be an address like name@example.com')
      .refine((s) => oneLine(s) && noLoneSurrogates(s), 'must not contain control characters')
      .refine((s) => !/\p{Cf}/u.test(s), 'must not contain invisible characters'),
  ]),
  birth: z.union([
    z.literal(''),
    z.string().refine(isRealDate, 'must be a real date as yyyy-MM-dd'),
  ]),
  tel: z.union([
    z.literal(''),
    maxChars(LIMITS.tel).regex(TEL_PATTERN, 'must contain only digits and + - ( )'),
  ]),
  custom: z.union([
    z.literal(''),
    maxChars(LIMITS.custom)
      .refine(noLoneSurrogates, 'must be valid Unicode text')
      .refine(isJson, 'must be valid JSON'),
  ]),
} as const;

export type ProfileField = keyof typeof profileFields;
export const PROFILE_FIELDS = Object.keys(profileFields) as ProfileField[];
/** Fields shown only to the owner, to accounts the owner added as friends, and to admin. */
export const PRIVATE_FIELDS = ['email', 'tel'] as const satisfies readonly ProfileField[];

/** A partial update: every key optional, unknown keys rejected (no mass assignment). */
export const profilePatchSchema = z.strictObject({
  nick: profileFields.nick.optional(),
  avatar: profileFields.avatar.optional(),
  sign: profileFields.sign.optional(),
  gender: profileFields.gender.optional(),
  email: profileFields.email.optional(),
  birth: profileFields.birth.optional(),
  tel: profileFields.tel.optional(),
  custom: profileFields.custom.optional(),
});
export type ProfilePatch = z.infer<typeof profilePatchSchema>;

/** A stored profile as the API returns it. `email` and `tel` are absent where the viewer may not see them. */
export const profileSchema = z.object({
  account: z.string(),
  nick: z.string(),
  avatar: z.string(),
  sign: z.string(),
  gender: z.union([z.literal(''), genderSchema]),
  email: z.string().optional(),
  birth: z.string(),
  tel: z.string().optional(),
  custom: z.string(),
  createTime: z.number(),
  updateTime: z.number(),
});
export type Profile = z.infer<typeof profileSchema>;

export const accountsSchema = (max: number) =>
  z
    .array(accountSchema)
    .min(1, 'must list at least one account')
    .max(max, `must list at most ${max} accounts`);

export const searchInputSchema = z.object({
  query: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .refine((s) => charCount(s) <= LIMITS.query, `must be at most ${LIMITS.query} characters`),
  cursor: z.string().max(512).nullish(),
  limit: z.number().int().min(1).max(LIMITS.searchPage).default(20),
});

export const tokenSchema = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(LIMITS.token, `must be at most ${LIMITS.token} characters`)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/**
 * Event ids / cursors are opaque strings (see cursor.ts for the format): a cursor of this or
 * another layout, or an old plain number (both well-formed: resuming from a foreign one answers
 * `resync`). Kept in step with CURSOR_TEXT in cursor.ts (this module is imported by the web app
 * and stays free of the store).
 */
export const eventIdSchema = z
  .string()
  .max(440, 'must be an event id')
  .regex(/^(?:\d{1,20}|[a-z]\d{1,4}_[0-9a-z]{1,16}_[0-9a-z.]{0,400})$/, 'must be an event id');
