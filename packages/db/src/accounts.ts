/**
 * Accounts, their tokens and web sessions. Tokens and session ids are kept only as SHA-256
 * hashes: the hash indexes the account, and the stored hash is compared in constant time.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
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

/** The account a token belongs to, or null. */
export async function accountForToken(db: Db, token: string): Promise<string | null> {
  const tokenHash = hashSecret(token);
  const account = await db.redis.get(keys.token(tokenHash));
  if (!account) return null;
  const stored = await db.redis.hget(keys.auth(account), 'tokenHash');
  if (!stored || stored.length !== tokenHash.length) return null;
  return timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(tokenHash, 'hex'))
    ? account
    : null;
}

export const SESSION_TTL_SECONDS = 30 * 24 * 3600;

/** Starts a web session for an account; returns the session id for the cookie. */
export async function createSession(db: Db, account: string): Promise<string> {
  const sessionId = newSecret();
  await db.redis.set(keys.session(hashSecret(sessionId)), account, 'EX', SESSION_TTL_SECONDS);
  return sessionId;
}

export async function accountForSession(db: Db, sessionId: string): Promise<string | null> {
  return db.redis.get(keys.session(hashSecret(sessionId)));
}

export async function deleteSession(db: Db, sessionId: string): Promise<void> {
  await db.redis.del(keys.session(hashSecret(sessionId)));
}
