/**
 * Every Redis key and channel name Namecard uses, laid out for Redis Cluster.
 *
 * The data set is split into PARTITIONS (24) fixed partitions. Each has its own hash tag (chosen
 * so the tags' slots are evenly spaced over the 16384: 341, 1024, 1707, ..., 16043), its own change
 * log, event sequence and directory partition. An account belongs to one partition (the CRC16
 * of its id, modulo PARTITIONS) and every key of that account carries the partition's tag, so a
 * write touches one slot: the profile, its directory entry, its log entry, its event id and its
 * publish are one atomic script on one shard. Token and session keys carry no tag: each lookup
 * is a single-key command, and no script touches them together with another key.
 *
 * Account ids are validated by `accountSchema` before they get here; account keys refuse
 * anything else. The layout is fixed: changing PARTITIONS or a tag is a new layout (cursors say
 * which one they belong to; see cursor.ts).
 */
import { slotOf } from './slots';
import { ACCOUNT_PATTERN } from './schema';

const PREFIX = 'nc';

/**
 * The number of partitions (fixed: part of the layout). 24 divides evenly among 2, 3, 4, 6, 8, 12
 * or 24 masters, so a cluster created with that many gets the same number of partitions on each.
 */
export const PARTITIONS = 24;

/** Partition hash tags: `{PARTITION_TAGS[p]}` hashes to slot PARTITION_SLOTS[p]. */
export const PARTITION_TAGS: readonly string[] = [
  'p3gn',
  'p1nc',
  'pm2t',
  'p7kc',
  'p5bn',
  'p4y9',
  'p32d',
  'p92q',
  'penf',
  'p7za',
  'p57d',
  'pabk',
  'p9l0',
  'pffu',
  'p23z',
  'phjm',
  'pbjx',
  'pkx7',
  'pl3j',
  'pfww',
  'p2fp',
  'pq4o',
  'pj6j',
  'pki5',
];

/** The slot of each partition: round((p + 1/2) × 16384 / 24), evenly spaced over the slots. */
export const PARTITION_SLOTS: readonly number[] = Array.from({ length: 24 }, (_, p) =>
  Math.round(((p + 0.5) * 16384) / 24),
);

/** The partition an account belongs to. */
export function partitionOf(account: string): number {
  if (!ACCOUNT_PATTERN.test(account)) throw new Error(`invalid account id for a key: ${account}`);
  return slotOf(account) % PARTITIONS;
}

function partitionTag(p: number): string {
  const tag = PARTITION_TAGS[p];
  if (tag === undefined) throw new Error(`no partition ${p}`);
  return `${PREFIX}:{${tag}}`;
}

const accountBase = (account: string) => `${partitionTag(partitionOf(account))}:${account}`;

/** Every partition number, 0..PARTITIONS-1. */
export const ALL_PARTITIONS: readonly number[] = Array.from({ length: PARTITIONS }, (_, p) => p);

export const keys = {
  /** Hash: the profile fields, plus internal fields whose names start with `_`. */
  profile: (account: string) => `${accountBase(account)}:profile`,
  /** Hash: `tokenHash` (sha256 hex of the account's token), `sessionEpoch`. */
  auth: (account: string) => `${accountBase(account)}:auth`,
  /** Set: accounts this account added as friends. */
  friends: (account: string) => `${accountBase(account)}:friends`,
  /** Sorted set: ids of this profile's recent writes (score: when, ms), so a resend applies once. */
  writes: (account: string) => `${accountBase(account)}:writes`,
  /** Sorted set: this account's own change log (event JSON scored by event id), for resuming. */
  accountLog: (account: string) => `${accountBase(account)}:log`,
  /** Sorted set: this account's live-subscription leases (score: expiry, ms). */
  subscriptions: (account: string) => `${accountBase(account)}:subs`,
  /**
   * Channel: change events of this account's profile and friend list (SPUBLISH on a cluster,
   * so it goes only to the shard of the account's partition; PUBLISH elsewhere).
   */
  channel: (account: string) => `${accountBase(account)}:changes`,
  /** String: the account a token hash belongs to (no tag: looked up on its own). */
  token: (tokenHash: string) => `${PREFIX}:token:${tokenHash}`,
  /** String with a TTL: the account a web session id hash belongs to. */
  session: (sessionHash: string) => `${PREFIX}:session:${sessionHash}`,
  /** Sorted set (all scores 0): partition p's part of the directory index. */
  directory: (p: number) => `${partitionTag(p)}:dir`,
  /** Sorted set: partition p's change log, event JSON scored by its event id. */
  log: (p: number) => `${partitionTag(p)}:log`,
  /** String: the last event id partition p handed out. */
  logSeq: (p: number) => `${partitionTag(p)}:seq`,
  /** String: set once memory mode has seeded its demo data. */
  seeded: `${PREFIX}:seeded`,
  /** String: the key layout this data set uses (`partitions:24`), set at first start. */
  layout: `${PREFIX}:layout`,
} as const;

/** Keys only the layout before partitions had (one global log and directory): see checkLayout. */
export const LEGACY_KEYS = [`${PREFIX}:log:seq`, `${PREFIX}:directory`, `${PREFIX}:log`] as const;

/** The name of this key layout, as `nc:layout` holds it. */
export const LAYOUT = `partitions:${PARTITIONS}`;

/** The account a channel name belongs to (after `prefix`), or null for one that is not ours. */
export function accountOfChannel(channel: string, prefix = ''): string | null {
  if (!channel.startsWith(prefix)) return null;
  const m = /^nc:\{[0-9a-z]+\}:([A-Za-z0-9_.@-]+):changes$/.exec(channel.slice(prefix.length));
  return m ? (m[1] ?? null) : null;
}
