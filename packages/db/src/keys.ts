/**
 * Every Redis key and channel name Namecard uses. Keys that belong to one account carry it as a
 * hash tag (`{account}`), so a Redis Cluster keeps an account's keys on one shard. Account ids
 * are validated by `accountSchema` before they get here; `key()` refuses anything else.
 */
import { ACCOUNT_PATTERN } from './schema';

const PREFIX = 'nc';

function tag(account: string): string {
  if (!ACCOUNT_PATTERN.test(account)) throw new Error(`invalid account id for a key: ${account}`);
  return `${PREFIX}:{${account}}`;
}

export const keys = {
  /** Hash: the profile fields, plus internal fields whose names start with `_`. */
  profile: (account: string) => `${tag(account)}:profile`,
  /** Hash: `tokenHash` (sha256 hex of the account's token). */
  auth: (account: string) => `${tag(account)}:auth`,
  /** Set: accounts this account added as friends. */
  friends: (account: string) => `${tag(account)}:friends`,
  /** Sorted set: ids of this profile's recent writes (score: when, ms), so a resend applies once. */
  writes: (account: string) => `${tag(account)}:writes`,
  /** Sorted set: this account's own change log (event JSON scored by event id), for resuming. */
  accountLog: (account: string) => `${tag(account)}:log`,
  /** Sorted set: this account's live-subscription leases (score: expiry, ms). */
  subscriptions: (account: string) => `${tag(account)}:subs`,
  /** Pub/sub channel: change events of this account's profile and friend list. */
  channel: (account: string) => `${tag(account)}:changes`,
  /** String: the account a token hash belongs to. */
  token: (tokenHash: string) => `${PREFIX}:token:${tokenHash}`,
  /** String with a TTL: the account a web session id hash belongs to. */
  session: (sessionHash: string) => `${PREFIX}:session:${sessionHash}`,
  /** Sorted set (all scores 0): the directory index, searched by lexical range. */
  directory: `${PREFIX}:directory`,
  /** Sorted set: the change log, event JSON scored by its event id. */
  log: `${PREFIX}:log`,
  /** String: the last event id handed out. */
  logSeq: `${PREFIX}:log:seq`,
  /** String: set once memory mode has seeded its demo data. */
  seeded: `${PREFIX}:seeded`,
} as const;

/** The account a channel name belongs to, or null for a channel that is not ours. */
export function accountOfChannel(channel: string): string | null {
  const m = /^nc:\{([^}]+)\}:changes$/.exec(channel);
  return m ? (m[1] ?? null) : null;
}
