/**
 * The change log: a sorted set of event JSON scored by its event id. The scripts in scripts.ts
 * write an event in the same step as the profile and keep the newest `logMaxLen` (trimming in
 * steps of 1%).
 *
 * Event ids are decimal numbers, `max(Redis clock ms * 1000, last id + 1)`: increasing, and never
 * handed out twice even when Redis loses its newest writes (a restored snapshot, kill -9 with AOF
 * everysec, a promoted replica), because the clock has moved past the lost ids. Clients treat
 * them as opaque strings. The log tells whether an id a subscriber saw still exists: one that
 * does not (trimmed, lost, or from another data set) cannot be resumed from (`resync`).
 * (A stream would be the natural type, but ioredis-mock rewrites explicit stream ids; a sorted
 * set behaves the same on both.)
 */
import { type Db } from './db';
import { keys } from './keys';
import { toProfile } from './profiles';
import { type Profile } from './schema';

export interface ProfileChangeEvent {
  /** Increasing event id (a decimal number as a string; opaque to clients). */
  id: string;
  type: 'profile';
  account: string;
  /** The whole profile after the change, with every field (filter before showing it). */
  profile: Profile;
}

export type ChangeEvent = ProfileChangeEvent;

/** Parses the JSON an event is logged and published as. */
export function parseEvent(json: string): ProfileChangeEvent {
  const raw = JSON.parse(json) as { id: string; account: string; profile: Record<string, unknown> };
  return {
    id: raw.id,
    type: 'profile',
    account: raw.account,
    profile: toProfile(raw.account, raw.profile),
  };
}

/** Compares two event ids numerically. */
export function compareEventIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The id of the last event handed out ('0' before the first). */
export async function lastEventId(db: Db): Promise<string> {
  return (await db.redis.get(keys.logSeq)) ?? '0';
}

/** Whether the event `id` is in the log ('0', "nothing seen yet", always is). */
export async function eventExists(db: Db, id: string): Promise<boolean> {
  if (id === '0') return true;
  return (await db.redis.zcount(keys.log, id, id)) > 0;
}

export interface ResumePoint {
  /** The newest event id now. */
  newest: string;
  /**
   * Whether a reader that saw everything up to `from` can go on from there: `from` is '0' or
   * still in the log and not past the newest id. Otherwise the reader must resync: the log was
   * trimmed past it, or Redis lost it (and may since have logged other events).
   */
  ok: boolean;
}

/** Checks a resume point in one round trip: O(log n), whatever the log's length. */
export async function resumePoint(db: Db, from: string): Promise<ResumePoint> {
  const results = await db.redis
    .pipeline()
    .get(keys.logSeq)
    .zcount(keys.log, from === '0' ? '-inf' : from, from === '0' ? '-inf' : from)
    .exec();
  const [e1, newest] = results?.[0] ?? [null, null];
  const [e2, count] = results?.[1] ?? [null, 0];
  if (e1) throw e1;
  if (e2) throw e2;
  const last = typeof newest === 'string' ? newest : '0';
  const ok = from === '0' || (count as number) > 0;
  return { newest: last, ok: ok && compareEventIds(from, last) <= 0 };
}

export interface LogRead {
  events: ChangeEvent[];
  /** True when `afterId` is not in the log (trimmed, lost, or another log's): resync. */
  gap: boolean;
}

/** Up to `count` events with ids after `afterId`, oldest first. */
export async function readLogSince(db: Db, afterId: string, count = 1000): Promise<LogRead> {
  const entries = await db.redis.zrangebyscore(keys.log, `(${afterId}`, '+inf', 'LIMIT', 0, count);
  const events = entries.map(parseEvent);
  return { events, gap: !(await resumePoint(db, afterId)).ok };
}

export interface AccountsRead {
  /** Events of the accounts with ids in (after, upto], oldest first. */
  events: ProfileChangeEvent[];
  /** True when an account's own log no longer reaches back to `after`: the reader must resync. */
  gap: boolean;
}

/**
 * What a subscriber that saw everything up to `after` has missed of `accounts`, up to `upto`:
 * read from each account's own change log, so it costs O(k + their events) for k accounts,
 * whatever the length of the global log and whatever other accounts wrote meanwhile.
 */
export async function readAccountsSince(
  db: Db,
  accounts: Iterable<string>,
  after: string,
  upto: string,
): Promise<AccountsRead> {
  const list = [...new Set(accounts)];
  if (list.length === 0 || compareEventIds(after, upto) >= 0) return { events: [], gap: false };
  const pipeline = db.redis.pipeline();
  for (const account of list) {
    pipeline.hget(keys.profile(account), '_logFloor');
    pipeline.zrangebyscore(keys.accountLog(account), `(${after}`, upto);
  }
  const results = (await pipeline.exec()) ?? [];
  const events: ProfileChangeEvent[] = [];
  let gap = false;
  for (let i = 0; i < list.length; i++) {
    const [e1, floor] = results[2 * i] ?? [null, null];
    const [e2, entries] = results[2 * i + 1] ?? [null, []];
    if (e1) throw e1;
    if (e2) throw e2;
    if (typeof floor === 'string' && compareEventIds(after, floor) < 0) gap = true;
    for (const json of entries as string[]) events.push(parseEvent(json));
  }
  events.sort((a, b) => compareEventIds(a.id, b.id));
  return { events, gap };
}
