/**
 * The user directory: prefix search on nick and account, case-insensitive and Unicode-normalised.
 *
 * One sorted set per partition (its accounts' entries, written in the same step as their
 * profiles), every score 0, searched with ZRANGEBYLEX and merged: members are unique across
 * partitions, so the merged order is the order one set of them all would have, and pages and
 * cursors are the same whatever the number of partitions. A member is
 * `<hex of the normalised text's UTF-8>.<n|a>.<account>`: hex keeps the order byte-wise and
 * ASCII-only, so real Redis and ioredis-mock (which compares JS strings) order it the same, and a
 * text prefix is a hex prefix. The `.` sorts before every hex digit, so a shorter text comes
 * before the longer ones it begins (`a` before `a b`, `a0`, `aa`). `n` entries come from nicks, `a` entries from account ids; the
 * script that writes a profile keeps its `n` entry in step with its nick.
 */
import { type Db } from './db';
import { InvalidCursorError } from './cursor';
import { ALL_PARTITIONS, keys } from './keys';
import { pipelineByNode, repliesOrThrow } from './redis';
import { readProfiles } from './profiles';
import { type Profile } from './schema';

/**
 * Folds text for matching: compatibility forms (full-width letters, half-width kana) become their
 * plain forms, case is folded, and Latin accents are dropped, so "José", "JOSE" and "ｊｏｓｅ"
 * all match "jose". Kana voicing marks (U+3099/U+309A) are kept: が is not か.
 */
export function normalizeForSearch(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFKC')
    .toLowerCase()
    .trim()
    .replace(/\s+/g, ' ');
}

const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');

/** Directory member for a nick ('' when the nick is empty: no entry). */
export function nickMember(nick: string, account: string): string {
  const norm = normalizeForSearch(nick);
  return norm ? `${hex(norm)}.n.${account}` : '';
}

export function accountMember(account: string): string {
  return `${hex(normalizeForSearch(account))}.a.${account}`;
}

function parseMember(member: string): { kind: 'n' | 'a'; account: string } | null {
  const m = /^[0-9a-f]*\.([na])\.(.+)$/.exec(member);
  return m ? { kind: m[1] as 'n' | 'a', account: m[2]! } : null;
}

const encodeCursor = (member: string) => Buffer.from(member, 'utf8').toString('base64url');
const decodeCursor = (cursor: string) => Buffer.from(cursor, 'base64url').toString('utf8');

/**
 * Up to `batch` members in [min, max) of the whole directory, in order: each partition's first
 * `batch` (one ZRANGEBYLEX each, sent to every node at once) merged, cut where a partition that
 * had more stops (what lies beyond may interleave with its unread members). `full` says whether
 * some partition had more.
 */
async function readDirectory(
  db: Db,
  min: string,
  max: string,
  batch: number,
): Promise<{ members: string[]; full: boolean }> {
  const lists = repliesOrThrow(
    await pipelineByNode(
      db.redis,
      ALL_PARTITIONS.map((p) => ['zrangebylex', keys.directory(p), min, max, 'LIMIT', 0, batch]),
    ),
  ) as string[][];
  let bound: string | null = null;
  for (const list of lists) {
    const lastRead = list[list.length - 1];
    if (list.length === batch && lastRead !== undefined && (bound === null || lastRead < bound)) {
      bound = lastRead;
    }
  }
  const merged = lists
    .flat()
    .filter((m) => bound === null || m <= bound)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { members: merged, full: bound !== null };
}

export interface SearchPage {
  profiles: Profile[];
  /** Pass back as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

/**
 * One page of accounts whose nick or account id starts with `query`, ordered by the matched text.
 * An account whose nick and id both match is listed once (by its nick). The cursor is the last
 * directory member read, so pages stay stable while the directory changes.
 */
export async function searchDirectory(
  db: Db,
  query: string,
  limit: number,
  cursor?: string | null,
): Promise<SearchPage> {
  const norm = normalizeForSearch(query);
  const prefix = hex(norm);
  const max = `(${prefix}g`; // 'g' sorts after every hex digit and '.'
  let min = `[${prefix}`;
  if (cursor) {
    const last = decodeCursor(cursor);
    if (!last.startsWith(prefix) || !parseMember(last)) {
      throw new InvalidCursorError('cursor does not belong to this query');
    }
    min = `(${last}`;
  }
  const found: Profile[] = [];
  const seen = new Set<string>();
  const batch = Math.max(limit * 2, 20);
  for (;;) {
    const { members, full } = await readDirectory(db, min, max, batch);
    const parsed = members.map(parseMember);
    // The merge holds up to `batch` members of every partition; a page usually needs only the
    // first `batch` of them: profiles are read a chunk at a time, as far as the page needs.
    const byAccount = new Map<string, Profile>();
    for (let i = 0; i < members.length; i++) {
      if (i % batch === 0) {
        const chunk = parsed.slice(i, i + batch).flatMap((p) => (p ? [p.account] : []));
        for (const s of await readProfiles(db, chunk)) byAccount.set(s.profile.account, s.profile);
      }
      const entry = parsed[i];
      const profile = entry && byAccount.get(entry.account);
      if (!entry || !profile || seen.has(entry.account)) continue;
      // The account's nick entry lists it already (wherever in the order it falls).
      if (entry.kind === 'a' && normalizeForSearch(profile.nick).startsWith(norm)) continue;
      seen.add(entry.account);
      found.push(profile);
      if (found.length === limit) {
        const more = i < members.length - 1 || full;
        return { profiles: found, nextCursor: more ? encodeCursor(members[i]!) : null };
      }
    }
    if (!full) return { profiles: found, nextCursor: null };
    min = `(${members[members.length - 1]}`;
  }
}
