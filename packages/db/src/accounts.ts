/**
 * Accounts, their tokens and web sessions. Tokens and session ids are kept only as SHA-256
 * hashes: the hash indexes the account, and the stored hash is compared in constant time.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { type Db } from './db';
import { accountMember, nickMember } from './directory';
import { keys } from './keys';
import { parseEvent, type ProfileChangeEvent } from './changes';
import { ACCOUNT_LOG_MAX, eventClock, patchPairs, WRITE_ID_TTL_MS } from './profiles';
import { runScript } from './scripts';
import { type ProfilePatch } from './schema';

export const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

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

/** Creates an account with its token (a new random one when none is given) and its profile. */
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
  const result = await runScript(
    db.redis,
    'ncCreateAccount',
    [
      keys.profile(account),
      keys.directory,
      keys.log,
      keys.logSeq,
      keys.token(tokenHash),
      keys.auth(account),
      keys.writes(account),
      keys.accountLog(account),
    ],
    [
      account,
      String(now),
      String(db.logMaxLen),
      keys.channel(account),
      nickMember(input.profile?.nick ?? '', account),
      accountMember(account),
      tokenHash,
      writeId,
      String(WRITE_ID_TTL_MS),
      String(db.accountLogMax ?? ACCOUNT_LOG_MAX),
      eventClock(db),
      ...patchPairs(input.profile ?? {}),
    ],
  );
  if (result === 'EXISTS') throw new AccountExistsError(account);
  if (result === 'TOKEN_TAKEN') throw new TokenTakenError();
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
async function holdsToken(db: Db, account: string, tokenHash: string): Promise<boolean> {
  const stored = await db.redis.hget(keys.auth(account), 'tokenHash');
  if (!stored || stored.length !== tokenHash.length) return false;
  return timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(tokenHash, 'hex'));
}

/** The account a token belongs to, or null. */
export async function accountForToken(db: Db, token: string): Promise<string | null> {
  const tokenHash = hashSecret(token);
  const cache = tokenCache(db);
  const remembered = cache.get(tokenHash);
  if (remembered !== undefined) {
    if (await holdsToken(db, remembered, tokenHash)) return remembered;
    cache.delete(tokenHash);
  }
  const account = await db.redis.get(keys.token(tokenHash));
  if (!account || !(await holdsToken(db, account, tokenHash))) return null;
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
  const claimed = await db.redis.set(keys.token(tokenHash), account, 'NX');
  if (!claimed && (await db.redis.get(keys.token(tokenHash))) !== account) {
    throw new TokenTakenError();
  }
  // The auth hash is what accountForToken trusts: once it holds the new hash the old token
  // fails, even before its index entry is deleted.
  await db.redis
    .multi()
    .hset(keys.auth(account), 'tokenHash', tokenHash)
    .hincrby(keys.auth(account), 'sessionEpoch', 1)
    .exec();
  if (oldHash !== tokenHash) await db.redis.del(keys.token(oldHash));
  return token;
}
