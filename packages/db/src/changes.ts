/**
 * The change log: a sorted set of event JSON scored by one global sequence counter, so event ids
 * are plain increasing numbers and a gap (trimmed entries) can be told exactly. The scripts in
 * scripts.ts write an event in the same step as the profile and keep the newest `logMaxLen`
 * (trimming in steps of 1%).
 * (A stream would be the natural type, but ioredis-mock rewrites explicit stream ids; a sorted
 * set behaves the same on both.)
 */
import { type Db } from './db';
import { keys } from './keys';
import { toProfile } from './profiles';
import { type Profile } from './schema';

export interface ProfileChangeEvent {
  /** Global, increasing event id (a decimal number as a string). */
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

export interface LogRead {
  events: ChangeEvent[];
  /** True when events after `afterId` were trimmed from the log: the reader must resync. */
  gap: boolean;
}

/** Up to `count` events with ids after `afterId`, oldest first. */
export async function readLogSince(db: Db, afterId: string, count = 1000): Promise<LogRead> {
  const next = BigInt(afterId) + 1n;
  const entries = await db.redis.zrangebyscore(keys.log, `(${afterId}`, '+inf', 'LIMIT', 0, count);
  const events = entries.map(parseEvent);
  const first = events[0];
  if (first) return { events, gap: BigInt(first.id) !== next };
  const last = BigInt(await lastEventId(db));
  return { events, gap: last >= next };
}
