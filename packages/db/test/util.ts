/** Small helpers shared by the store tests. */
import { type Cluster } from 'ioredis';
import {
  advance,
  createAccount,
  encodeCursor,
  feedSubscriber,
  isCluster,
  parseCursor,
  keys,
  partitionOf,
  readLogSince,
  searchDirectory,
  ChangeFeed,
  liveChanges,
  type CreatedAccount,
  type Db,
  type LiveItem,
  type LiveOptions,
  type Profile,
  type ProfileChangeEvent,
  type ProfilePatch,
  type Redis,
} from '../src';

/** The keys of the data set: of the current database, or on a cluster of every master under the client's key prefix (without it). */
async function allKeys(redis: Redis): Promise<string[]> {
  if (!isCluster(redis)) return redis.keys('*');
  const cluster = redis as unknown as Cluster;
  const prefix = cluster.options.keyPrefix ?? '';
  const lists = await Promise.all(cluster.nodes('master').map((node) => node.keys(`${prefix}*`)));
  return lists.flat().map((key) => key.slice(prefix.length));
}

/** Every key of the data set with its value, whatever its type (sorted by key). */
export async function dumpRedis(redis: Redis): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const key of (await allKeys(redis)).sort()) {
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

/** Every event in every partition's log, oldest id first (asserts the logs have no gap). */
export async function readWholeLog(db: Db): Promise<ProfileChangeEvent[]> {
  const events: ProfileChangeEvent[] = [];
  let after = '0';
  for (;;) {
    const { events: page, gap, cursor } = await readLogSince(db, after, 100);
    if (gap) throw new Error(`log has a gap after ${after}`);
    if (page.length === 0) return events;
    events.push(...page);
    after = cursor;
  }
}

/** The newest event id of an account's partition ('0' before its first). */
export async function newestIdOf(db: Db, account: string): Promise<string> {
  return (await db.redis.get(keys.logSeq(partitionOf(account)))) ?? '0';
}

/** The key of an account's partition's log / directory. */
export const logOf = (account: string) => keys.log(partitionOf(account));
export const directoryOf = (account: string) => keys.directory(partitionOf(account));

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

/** The cursor after `events` (each moves its partition's position), from `cursor`. */
export function cursorAfter(cursor: string, ...events: ProfileChangeEvent[]): string {
  const parsed = parseCursor(cursor);
  if (parsed.kind !== 'positions') throw new Error(`not a cursor of this layout: ${cursor}`);
  let positions = parsed.positions;
  for (const event of events) positions = advance(positions, event);
  return encodeCursor(positions);
}

/** `count` account ids (`<stem>0`, `<stem>1`, ...-ish) that all live in `account`'s partition. */
export function partitionMates(account: string, count: number, stem = 'mate'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    if (partitionOf(`${stem}${i}`) === partitionOf(account)) out.push(`${stem}${i}`);
  }
  return out;
}

/** Hears the messages of one of the Db's channels (sharded on a cluster); stop with disconnect(). */
export async function listen(
  db: Db,
  channel: string,
  onMessage: (message: string) => void,
): Promise<{ disconnect(): void }> {
  const subscriber = feedSubscriber(db);
  const name = `${db.keyPrefix ?? ''}${channel}`;
  subscriber.on('message', (from, message) => {
    if (from === name) onMessage(message);
  });
  await subscriber.subscribe(name);
  return subscriber;
}

/** Waits until `check` holds, polling every 100 ms; throws naming `what` (read at the timeout). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A live subscription on a feed of its own (an API instance's), collecting its items. */
export interface LiveWatcher {
  items: LiveItem[];
  /** What ended the subscription early, if anything. */
  errors: unknown[];
  stop(): Promise<void>;
}

export function watchLive(
  db: Db,
  options: Omit<LiveOptions, 'db' | 'feed' | 'signal'>,
): LiveWatcher {
  const feed = ChangeFeed.forDb(db);
  const abort = new AbortController();
  const items: LiveItem[] = [];
  const errors: unknown[] = [];
  const done = (async () => {
    for await (const item of liveChanges({ ...options, db, feed, signal: abort.signal })) {
      items.push(item);
    }
  })().catch((error: unknown) => {
    errors.push(error);
  });
  return {
    items,
    errors,
    stop: async () => {
      abort.abort();
      await feed.close();
      await done;
    },
  };
}

/** `account:sign` of every profile item, in order. */
export const signsOf = (items: readonly LiveItem[]) =>
  items.flatMap((i) => (i.type === 'profile' ? [`${i.account}:${i.profile.sign}`] : []));
