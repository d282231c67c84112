/**
 * Accounts, their tokens and web sessions. Tokens and session ids are kept only as SHA-256
 * hashes: the hash indexes the account, and the stored hash is compared in constant time.
 */
import { hash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { type Db } from './db';
import { accountMember, nickMember } from './directory';
import { keys, partitionOf } from './keys';
import { parseEvent, type ProfileChangeEvent } from './changes';
import { ACCOUNT_LOG_MAX, eventClock, patchPairs, WRITE_ID_TTL_MS } from './profiles';
import { channelName, publishCommand, runScript } from './scripts';
import { ACCOUNT_PATTERN, type ProfilePatch } from './schema';

/** sha256 hex (crypto.hash: one call, a third of createHash's time; every call hashes its token). */
export const hashSecret = (secret: string) => hash('sha256', secret, 'hex');

/** A new random token or session id (192 bits, URL-safe). */
export const newSecret = () => randomBytes(24).toString('base64url');

export function secretsEqual(a: string, b: string): boolean {
  const x = Buffer.from(hashSecret(a), 'hex');
  const y = Buffer.from(hashSecret(b), 'hex');
  return timingSafeEqual(x, y);
}

export class AccountExistsError extends Error {
  constructor(readonly account: string) {
    super(`account ${account} already exists`);
  }
}

export class TokenTakenError extends Error {
  constructor() {
    super('that token is already in use by another account');
  }
}

export interface CreatedAccount {
  account: string;
  token: string;
  event: ProfileChangeEvent;
}

/**
 * A token claim older than this whose account never got the token (a create that died between
 * its two steps) may be taken over by another account. Longer than ioredis may hold a command
 * before resending it, so a create still in flight is never overtaken.
 */
export const TOKEN_CLAIM_TTL_MS = 10 * 60_000;

const tokenHolder = (value: string | null) => (value ? (value.split(' ')[0] ?? '') : '');

/**
 * Claims a token's index entry for `account` (a key of its own slot, apart from the account's).
 * Throws TokenTakenError when another account holds it, unless that claim is abandoned: older
 * than TOKEN_CLAIM_TTL_MS and not the token of the account that made it.
 */
async function claimToken(db: Db, account: string, tokenHash: string, now: number) {
  const key = keys.token(tokenHash);
  const value = `${account} ${now}`;
  if ((await runScript(db.redis, 'ncClaimToken', [key], [account, value, ''])) === 'ok') return;
  const held = await db.redis.get(key);
  const holder = tokenHolder(held);
  const claimedAt = Number(held?.split(' ')[1] ?? 'NaN');
  const abandoned =
    held !== null &&
    Number.isFinite(claimedAt) &&
    now - claimedAt > TOKEN_CLAIM_TTL_MS &&
    (await db.redis.hget(keys.auth(holder), 'tokenHash')) !== tokenHash;
  if (
    abandoned &&
    (await runScript(db.redis, 'ncClaimToken', [key], [account, value, held])) === 'ok'
  ) {
    return;
  }
  throw new TokenTakenError();
}

/**
 * Creates an account with its token (a new random one when none is given) and its profile, in
 * two steps that each touch one slot: the token's index entry is claimed (TokenTakenError if
 * another account holds it), then one script writes the profile, auth hash, directory entry,
 * log entry and event (AccountExistsError if the account exists; the claim is then let go
 * unless the account holds that token). Sent again with the same `writeId` (a retry, or a
 * resend by ioredis), both steps answer as the first did. A token resolves only through the
 * account's auth hash, so a claim whose create never ran authenticates nobody.
 */
export async function createAccount(
  db: Db,
  input: { account: string; token?: string | undefined; profile?: ProfilePatch | undefined },
  now = Date.now(),
  /** Makes the write idempotent (see updateProfile). */
  writeId: string = randomUUID(),
): Promise<CreatedAccount> {
  const token = input.token ?? newSecret();
  const tokenHash = hashSecret(token);
  const { account } = input;
  const p = partitionOf(account); // refuses an invalid account id before anything is written
  try {
    await claimToken(db, account, tokenHash, Date.now());
  } catch (error) {
    if (error instanceof TokenTakenError && (await db.redis.exists(keys.profile(account)))) {
      throw new AccountExistsError(account);
    }
    throw error;
  }
  const result = await runScript(
    db.redis,
    'ncCreateAccount',
    [
      keys.profile(account),
      keys.directory(p),
      keys.log(p),
      keys.logSeq(p),
      keys.auth(account),
      keys.writes(account),
      keys.accountLog(account),
    ],
    [
      account,
      String(now),
      String(db.logMaxLen),
      channelName(db, keys.channel(account)),
      nickMember(input.profile?.nick ?? '', account),
      accountMember(account),
      tokenHash,
      writeId,
      String(WRITE_ID_TTL_MS),
      String(db.accountLogMax ?? ACCOUNT_LOG_MAX),
      eventClock(db),
      publishCommand(db),
      ...patchPairs(input.profile ?? {}),
    ],
  );
  if (result === 'EXISTS') {
    if ((await db.redis.hget(keys.auth(account), 'tokenHash')) !== tokenHash) {
      await runScript(db.redis, 'ncReleaseToken', [keys.token(tokenHash)], [account]);
    }
    throw new AccountExistsError(account);
  }
  return { account, token, event: parseEvent(result) };
}

/**
 * Which account each recently seen token hash belongs to, per Db (so per server process). It
 * saves the token index read (`nc:token:<hash>`) and nothing else: the account's auth hash,
 * which rotation changes, is read on every call, so a rotated token fails at once on every
 * instance sharing Redis; a remembered account whose auth hash no longer holds the token is
 * forgotten and the index read again (a token rotated away may since belong to another account).
 */
const tokenAccounts = new WeakMap<Db, LRUCache<string, string>>();
export const TOKEN_CACHE_SIZE = 10_000;

function tokenCache(db: Db): LRUCache<string, string> {
  let cache = tokenAccounts.get(db);
  if (!cache) tokenAccounts.set(db, (cache = new LRUCache({ max: TOKEN_CACHE_SIZE })));
  return cache;
}

/** Does the account's auth hash hold this token hash (compared in constant time)? */
export async function holdsToken(db: Db, account: string, tokenHash: string): Promise<boolean> {
  const stored = await db.redis.hget(keys.auth(account), 'tokenHash');
  if (!stored || stored.length !== tokenHash.length) return false;
  return timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(tokenHash, 'hex'));
}

/** The account a token belongs to, or null. */
export function accountForToken(db: Db, token: string): Promise<string | null> {
  return accountForTokenHash(db, hashSecret(token));
}

/**
 * The account this process last saw holding the token (by its hash, `hashSecret(token)`), from
 * memory, without asking Redis; null if none. Only a guess: accountForTokenHash confirms it.
 * It lets a read start in the same round trip to Redis as the token's check.
 */
export function rememberedTokenHolder(db: Db, tokenHash: string): string | null {
  return tokenCache(db).peek(tokenHash) ?? null;
}

/** accountForToken, given the token's hash. */
export async function accountForTokenHash(db: Db, tokenHash: string): Promise<string | null> {
  const cache = tokenCache(db);
  const remembered = cache.get(tokenHash);
  if (remembered !== undefined) {
    if (await holdsToken(db, remembered, tokenHash)) return remembered;
    cache.delete(tokenHash);
  }
  const account = tokenHolder(await db.redis.get(keys.token(tokenHash)));
  if (!ACCOUNT_PATTERN.test(account) || !(await holdsToken(db, account, tokenHash))) return null;
  cache.set(tokenHash, account);
  return account;
}

export const SESSION_TTL_SECONDS = 30 * 24 * 3600;

/**
 * Sessions carry the account's session epoch (`sessionEpoch` in its auth hash, 0 when unset):
 * `endAllSessions` bumps it, and every session started before no longer matches. One small
 * write ends any number of sessions, with no index of them to keep. Stored as `<account> <epoch>`
 * (account ids have no spaces; a value without one is from before epochs, epoch 0).
 */
async function sessionEpoch(db: Db, account: string): Promise<string> {
  return (await db.redis.hget(keys.auth(account), 'sessionEpoch')) ?? '0';
}

/** Starts a web session for an account; returns the session id for the cookie. */
export async function createSession(db: Db, account: string): Promise<string> {
  const sessionId = newSecret();
  const epoch = await sessionEpoch(db, account);
  await db.redis.set(
    keys.session(hashSecret(sessionId)),
    `${account} ${epoch}`,
    'EX',
    SESSION_TTL_SECONDS,
  );
  return sessionId;
}

export async function accountForSession(db: Db, sessionId: string): Promise<string | null> {
  const value = await db.redis.get(keys.session(hashSecret(sessionId)));
  if (!value) return null;
  const [account = '', epoch = '0'] = value.split(' ');
  if (!ACCOUNT_PATTERN.test(account)) return null;
  return (await sessionEpoch(db, account)) === epoch ? account : null;
}

export async function deleteSession(db: Db, sessionId: string): Promise<void> {
  await db.redis.del(keys.session(hashSecret(sessionId)));
}

export class AccountNotFoundError extends Error {
  constructor(readonly account: string) {
    super(`no account ${account}`);
  }
}

/** Ends every web session of an account (all devices). Throws AccountNotFoundError. */
export async function endAllSessions(db: Db, account: string): Promise<void> {
  if (!(await db.redis.exists(keys.auth(account)))) throw new AccountNotFoundError(account);
  await db.redis.hincrby(keys.auth(account), 'sessionEpoch', 1);
}

/**
 * Gives an account a new token (a random one unless given) and ends its web sessions (a leaked
 * token may have started some); the old token stops working at once. Throws
 * AccountNotFoundError, or TokenTakenError when the given token is another account's.
 */
export async function rotateToken(
  db: Db,
  account: string,
  token: string = newSecret(),
): Promise<string> {
  const tokenHash = hashSecret(token);
  const oldHash = await db.redis.hget(keys.auth(account), 'tokenHash');
  if (!oldHash) throw new AccountNotFoundError(account);
  // Claims the new token's index entry only if free (or already this account's).
  await claimToken(db, account, tokenHash, Date.now());
  // The auth hash is what accountForToken trusts: once it holds the new hash the old token
  // fails, even before its index entry is deleted.
  await db.redis
    .multi()
    .hset(keys.auth(account), 'tokenHash', tokenHash)
    .hincrby(keys.auth(account), 'sessionEpoch', 1)
    .exec();
  if (oldHash !== tokenHash) {
    await runScript(db.redis, 'ncReleaseToken', [keys.token(oldHash)], [account]);
  }
  return token;
}
