/** Small helpers shared by the store tests. */
import {
  createAccount,
  readLogSince,
  searchDirectory,
  type CreatedAccount,
  type Db,
  type Profile,
  type ProfileChangeEvent,
  type ProfilePatch,
  type Redis,
} from '../src';

/** Every key of the current database with its value, whatever its type (sorted by key). */
export async function dumpRedis(redis: Redis): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const key of (await redis.keys('*')).sort()) {
    const type = await redis.type(key);
    switch (type) {
      case 'string':
        out.set(key, await redis.get(key));
        break;
      case 'hash':
        out.set(key, await redis.hgetall(key));
        break;
      case 'set':
        out.set(key, (await redis.smembers(key)).sort());
        break;
      case 'zset':
        out.set(key, await redis.zrange(key, 0, -1, 'WITHSCORES'));
        break;
      case 'list':
        out.set(key, await redis.lrange(key, 0, -1));
        break;
      case 'none':
        break; // expired between KEYS and TYPE
      default:
        throw new Error(`unexpected key type ${type} for ${key}`);
    }
  }
  return out;
}

/** Creates an account with a fixed, readable token (`<account>-token-0123456789`). */
export function createUser(
  db: Db,
  account: string,
  profile?: ProfilePatch,
  now?: number,
): Promise<CreatedAccount> {
  return createAccount(db, { account, token: `${account}-token-0123456789`, profile }, now);
}

/** Every event in the log, oldest first (asserts the log has no gap). */
export async function readWholeLog(db: Db): Promise<ProfileChangeEvent[]> {
  const events: ProfileChangeEvent[] = [];
  let after = '0';
  for (;;) {
    const { events: page, gap } = await readLogSince(db, after, 100);
    if (gap) throw new Error(`log has a gap after ${after}`);
    if (page.length === 0) return events;
    events.push(...page);
    after = page[page.length - 1]!.id;
  }
}

/** Walks every page of a search; returns the pages' account lists. */
export async function searchAllPages(db: Db, query: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page = await searchDirectory(db, query, limit, cursor);
    expectPageSize(page.profiles, limit);
    pages.push(page.profiles.map((p) => p.account));
    cursor = page.nextCursor;
    if (pages.length > 1000) throw new Error('search pagination does not end');
  } while (cursor);
  return pages;
}

function expectPageSize(profiles: Profile[], limit: number): void {
  if (profiles.length > limit) throw new Error(`page of ${profiles.length} exceeds limit ${limit}`);
}

export const accountsOf = (profiles: readonly Profile[]) => profiles.map((p) => p.account);
