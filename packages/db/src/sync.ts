/**
 * Login-time sync (NIM's onmyinfo + incremental onusers): my profile, and my friends' profiles
 * that changed after a cursor, in bounded pages. The cursor (cursor.ts: a position in every
 * partition) is read before the profiles on the first page and carried by the later ones, so it can be passed as
 * `lastEventId` to the live subscription with no gap between the two.
 *
 * A page covers the next `limit` friends in account order (a continuation token, `nextPage`,
 * names the last one), so one call costs O(limit) profile reads whatever the number of friends.
 * A `since` that no longer exists in the log (trimmed, or lost by Redis) answers a full sync,
 * flagged `full`: the caller replaces its copies instead of merging (a lost write may have left
 * it a state newer than the store's).
 */
import { resumePoint } from './changes';
import { type Db } from './db';
import {
  compareEventIds,
  InvalidCursorError,
  isWellFormedCursor,
  parseCursor,
  type Positions,
} from './cursor';
import { partitionOf } from './keys';
import { listFriends } from './friends';
import { getProfile, readProfiles } from './profiles';
import { LIMITS, type Profile } from './schema';
import { viewProfiles } from './visibility';

export interface SyncResult {
  myInfo: Profile;
  users: Profile[];
  /** The cursor to pass as the next `since`, or as `lastEventId` to `user.onChange`. */
  cursor: string;
  /** True when `users` holds every friend (no `since`, or one that no longer exists). */
  full: boolean;
  /** Pass back as `page` for the next page of this sync; null on the last page. */
  nextPage: string | null;
}

export interface SyncOptions {
  since?: string | null | undefined;
  /** A `nextPage` token from the previous page. */
  page?: string | null | undefined;
  /** Friends covered by one page (1..LIMITS.syncPage, default LIMITS.syncPage). */
  limit?: number | undefined;
}

interface PageState {
  /** The sync's cursor. */
  c: string;
  /** Changed after this cursor; null: every friend. */
  s: string | null;
  /** The last friend of the previous page. */
  a: string;
}

const encodePage = (state: PageState) => Buffer.from(JSON.stringify(state)).toString('base64url');

function decodePage(token: string): PageState {
  try {
    const raw = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<PageState>;
    const isId = (v: unknown): v is string =>
      typeof v === 'string' && isWellFormedCursor(v) && parseCursor(v).kind === 'positions';
    if (isId(raw.c) && (raw.s === null || isId(raw.s)) && typeof raw.a === 'string') {
      return { c: raw.c, s: raw.s, a: raw.a };
    }
  } catch {
    // answered below
  }
  throw new InvalidCursorError('not a page token of user.sync');
}

export async function syncUser(
  db: Db,
  account: string,
  options: SyncOptions = {},
): Promise<SyncResult | null> {
  const limit = options.limit ?? LIMITS.syncPage;
  let state: PageState;
  if (options.page) {
    state = decodePage(options.page);
  } else {
    const since = options.since ?? null;
    const point = await resumePoint(db, since ?? '0');
    state = { c: point.newest, s: since !== null && point.ok ? since : null, a: '' };
  }
  const myInfo = await getProfile(db, account);
  if (!myInfo) return null;
  const friends = (await listFriends(db, account)).filter((f) => f > state.a);
  const page = friends.slice(0, limit);
  const stored = await readProfiles(db, page);
  const after = state.s === null ? null : (parseCursor(state.s) as { positions: Positions });
  const changed = stored
    .filter(
      (f) =>
        after === null ||
        compareEventIds(f.seq, after.positions[partitionOf(f.profile.account)]!) > 0,
    )
    .map((f) => f.profile);
  const last = page[page.length - 1];
  return {
    myInfo,
    users: await viewProfiles(db, account, changed),
    cursor: state.c,
    full: state.s === null,
    nextPage: friends.length > limit && last ? encodePage({ ...state, a: last }) : null,
  };
}
