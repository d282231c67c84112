/**
 * Cursors: where a reader is in every partition's change log, as one opaque string.
 *
 * Event ids are per partition (decimal, `max(clock ms × 1000, last id + 1)` of that partition).
 * A cursor holds one position per partition: the last event id the reader has of it ('0': none
 * yet). It is what `user.onChange` items carry as their id (`lastEventId`) and what `user.sync`
 * answers as `cursor`.
 *
 * Format (ASCII, URL- and header-safe): `n24_<max>_<d0>.<d1>. … .<d23>`. `n24` names the layout
 * (24 partitions); `<max>` is the highest position in base 36; `<dp>` is `max - position p` in
 * base 36, or empty for a partition the reader has nothing of. Positions written moments apart
 * differ by a few million, so a cursor is typically 80–150 characters, at most about 250 (ids a
 * day apart).
 *
 * A plain number (an id from servers before partitions) or a cursor of another layout is
 * well-formed but foreign: resuming from it answers `resync`. Anything else is malformed
 * (BAD_REQUEST at the API).
 */
import { PARTITIONS } from './keys';

/** One position per partition (decimal event ids as strings; '0' = nothing yet). */
export type Positions = string[];

const LAYOUT = `n${PARTITIONS}`;

/** Well-formed cursor text: an old plain id, or `<layout>_<max>_<deltas>` (any layout). */
export const CURSOR_TEXT = /^(?:\d{1,20}|[a-z]\d{1,4}_[0-9a-z]{1,16}_[0-9a-z.]{0,400})$/;

export class InvalidCursorError extends Error {}

/** Positions of a reader who has seen nothing. */
export const startPositions = (): Positions => Array.from({ length: PARTITIONS }, () => '0');

export function encodeCursor(positions: Positions): string {
  // Every live item carries one, for every subscriber: plain numbers where they are exact (ids
  // are clock ms × 1000, below 2^53 until about the year 2255), bigints otherwise.
  const numbers = positions.map(Number);
  if (numbers.every(Number.isSafeInteger)) {
    let top = 0;
    for (const n of numbers) if (n > top) top = n;
    let text = `${LAYOUT}_${top.toString(36)}_`;
    for (let p = 0; p < numbers.length; p++) {
      if (p > 0) text += '.';
      if (positions[p] !== '0') text += (top - numbers[p]!).toString(36);
    }
    return text;
  }
  let max = 0n;
  for (const p of positions) if (BigInt(p) > max) max = BigInt(p);
  const deltas = positions.map((p) => (p === '0' ? '' : (max - BigInt(p)).toString(36)));
  return `${LAYOUT}_${max.toString(36)}_${deltas.join('.')}`;
}

function parseBase36(text: string): bigint {
  let value = 0n;
  for (const ch of text) value = value * 36n + BigInt(parseInt(ch, 36));
  return value;
}

export type ParsedCursor = { kind: 'positions'; positions: Positions } | { kind: 'foreign' };

/**
 * Reads a cursor: its positions, or `foreign` for an old plain id or another layout's cursor
 * ('0' is "from the start"). Throws InvalidCursorError for anything malformed.
 */
export function parseCursor(text: string): ParsedCursor {
  if (text === '0') return { kind: 'positions', positions: startPositions() };
  if (!CURSOR_TEXT.test(text)) throw new InvalidCursorError('not an event id of Namecard');
  if (/^\d+$/.test(text)) return { kind: 'foreign' };
  const [layout, maxText = '', deltaText = ''] = text.split('_');
  if (layout !== LAYOUT) return { kind: 'foreign' };
  const deltas = deltaText.split('.');
  if (deltas.length !== PARTITIONS) throw new InvalidCursorError('not an event id of Namecard');
  const max = parseBase36(maxText);
  const positions = deltas.map((d) => (d === '' ? 0n : max - parseBase36(d)));
  if (positions.some((p) => p < 0n) || max >= 10n ** 20n) {
    throw new InvalidCursorError('not an event id of Namecard');
  }
  return { kind: 'positions', positions: positions.map((p) => p.toString()) };
}

/** Compares two event ids of one partition numerically. */
export function compareEventIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two cursors of this layout position by position: -1 when `a` is behind `b` in some
 * partition and ahead in none, 1 the other way round, 0 when equal, NaN when neither (or either
 * is foreign). For tests and tools; readers never need to compare cursors.
 */
export function compareCursors(a: string, b: string): number {
  const x = parseCursor(a);
  const y = parseCursor(b);
  if (x.kind !== 'positions' || y.kind !== 'positions') return NaN;
  let behind = false;
  let ahead = false;
  x.positions.forEach((p, i) => {
    const c = compareEventIds(p, y.positions[i]!);
    if (c < 0) behind = true;
    if (c > 0) ahead = true;
  });
  if (behind && ahead) return NaN;
  return behind ? -1 : ahead ? 1 : 0;
}

/** Whether `text` is a well-formed cursor (of any layout) or old id: not BAD_REQUEST. */
export function isWellFormedCursor(text: string): boolean {
  try {
    parseCursor(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The position a cursor holds for one partition, as a bigint (-1 for a foreign cursor): for
 * tests and tools that check ids never go back.
 */
export function cursorPosition(cursor: string, partition: number): bigint {
  const parsed = parseCursor(cursor);
  return parsed.kind === 'positions' ? BigInt(parsed.positions[partition] ?? '0') : -1n;
}

/** A cursor `by` ahead of `cursor` in every partition it has seen (a point no log reached). */
export function cursorAhead(cursor: string, by: bigint): string {
  const parsed = parseCursor(cursor);
  if (parsed.kind !== 'positions') throw new InvalidCursorError('a foreign cursor');
  return encodeCursor(parsed.positions.map((p) => (p === '0' ? p : (BigInt(p) + by).toString())));
}
