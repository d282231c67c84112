/**
 * Profiles: read one or many, create, and apply a partial update. Every write goes through one
 * Lua script that also keeps the directory index in step and logs + publishes the change event.
 */
import { randomUUID } from 'node:crypto';
import { type Db } from './db';
import { pipelineByNode } from './redis';
import { nickMember } from './directory';
import { keys, partitionOf } from './keys';
import { channelName, publishCommand, runScript } from './scripts';
import { GENDERS, PRIVATE_FIELDS, PROFILE_FIELDS, type Profile, type ProfilePatch } from './schema';
import { parseEvent, type ProfileChangeEvent } from './changes';

const isGender = (v: unknown): v is Profile['gender'] =>
  typeof v === 'string' && (GENDERS as readonly string[]).includes(v);

/**
 * Builds a `Profile` from stored fields (a hash, or the JSON of an event): every field, or with
 * `withPrivate` false the profile as a viewer who may not see private fields gets it (built
 * without them rather than copied and trimmed: a getUsers of 150 makes 150 of these).
 */
export function toProfile(
  account: string,
  stored: Record<string, unknown>,
  withPrivate = true,
): Profile {
  const text = (name: string) => (typeof stored[name] === 'string' ? stored[name] : '');
  const gender = isGender(stored.gender) ? stored.gender : 'unknown';
  const createTime = Number(stored.createTime ?? 0);
  const updateTime = Number(stored.updateTime ?? 0);
  if (!withPrivate) {
    return {
      account,
      nick: text('nick'),
      avatar: text('avatar'),
      sign: text('sign'),
      gender,
      birth: text('birth'),
      custom: text('custom'),
      createTime,
      updateTime,
    };
  }
  return {
    account,
    nick: text('nick'),
    avatar: text('avatar'),
    sign: text('sign'),
    gender,
    email: text('email'),
    birth: text('birth'),
    tel: text('tel'),
    custom: text('custom'),
    createTime,
    updateTime,
  };
}

/** A profile's stored fields that make its `Profile`, in the order of an HMGET's answer. */
export const STORED_FIELDS = [...PROFILE_FIELDS, 'createTime', 'updateTime'] as const;

/** An HMGET of STORED_FIELDS as the stored hash toProfile reads (absent fields left out). */
export function storedFields(values: readonly (string | null)[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i < STORED_FIELDS.length; i++) {
    const value = values[i];
    if (typeof value === 'string') fields[STORED_FIELDS[i]!] = value;
  }
  return fields;
}

// toProfile and withoutPrivateFields name the private fields: they must be these two.
PRIVATE_FIELDS satisfies readonly ('email' | 'tel')[];

/** The profile as a viewer who may not see private fields gets it. */
export function withoutPrivateFields(profile: Profile): Profile {
  const { email: _email, tel: _tel, ...rest } = profile;
  return rest;
}

export interface StoredProfile {
  profile: Profile;
  /** Event sequence number of the profile's last change. */
  seq: string;
}

/** Reads profiles with their last event sequence; unknown accounts are left out. */
export async function readProfiles(db: Db, accounts: readonly string[]): Promise<StoredProfile[]> {
  const unique = [...new Set(accounts)];
  if (unique.length === 0) return [];
  const results = await pipelineByNode(
    db.redis,
    unique.map((account) => ['hgetall', keys.profile(account)]),
  );
  const out: StoredProfile[] = [];
  results.forEach(([error, hash], i) => {
    if (error) throw error;
    const fields = hash as Record<string, string>;
    if (!fields.createTime) return;
    out.push({ profile: toProfile(unique[i]!, fields), seq: fields._seq ?? '0' });
  });
  return out;
}

/** Existing profiles, deduplicated, in input order. */
export async function getProfiles(db: Db, accounts: readonly string[]): Promise<Profile[]> {
  return (await readProfiles(db, accounts)).map((s) => s.profile);
}

export async function getProfile(db: Db, account: string): Promise<Profile | null> {
  const fields = await db.redis.hgetall(keys.profile(account));
  return fields.createTime ? toProfile(account, fields) : null;
}

export async function profileExists(db: Db, account: string): Promise<boolean> {
  return (await db.redis.exists(keys.profile(account))) === 1;
}

/** Field/value pairs of a validated patch, in schema order. */
export function patchPairs(patch: ProfilePatch): string[] {
  const pairs: string[] = [];
  for (const field of PROFILE_FIELDS) {
    const value = patch[field];
    if (value !== undefined) pairs.push(field, value);
  }
  return pairs;
}

/**
 * The clock the write scripts take event ids from: '' for Redis's own (TIME: one clock per Redis,
 * whichever instance writes), this process's in memory mode (ioredis-mock's TIME rounds the
 * seconds and takes the microseconds from process.hrtime(), so it jumps by up to a second).
 */
export const eventClock = (db: Db): string => (db.mode === 'memory' ? String(Date.now()) : '');

/**
 * How long a profile remembers the ids of its writes: longer than ioredis may hold a command
 * before resending it (its reconnect attempts while Redis is away).
 */
export const WRITE_ID_TTL_MS = 10 * 60_000;

/**
 * Events an account's own change log keeps at most (besides being kept only while they are in
 * the global log's window). A subscriber resuming from before the oldest one gets `resync`.
 */
export const ACCOUNT_LOG_MAX = 10_000;

export class ProfileNotFoundError extends Error {
  constructor(readonly account: string) {
    super(`no profile for account ${account}`);
  }
}

/** A write made for a token's holder (updateProfileAsTokenHolder): the token is not the account's. */
export class TokenNotHeldError extends Error {
  constructor(readonly account: string) {
    super(`the token is not account ${account}'s`);
  }
}

/**
 * Applies a validated patch atomically: only the fields in it change, so two devices editing
 * different fields at once both win. `updateTime` becomes max(now, previous + 1).
 * Returns the change event (its profile is the new full profile). `writeId` makes the write
 * idempotent: the same id again within WRITE_ID_TTL_MS (as when ioredis resends a command after
 * a dropped connection, even after other writes went through meanwhile) is not applied twice and
 * answers the profile's last event.
 */
export function updateProfile(
  db: Db,
  account: string,
  patch: ProfilePatch,
  now = Date.now(),
  writeId: string = randomUUID(),
): Promise<ProfileChangeEvent> {
  return writeProfile(db, account, patch, now, writeId, '');
}

/**
 * updateProfile for the holder of a token whose check is left to the write (the API's
 * userProcedure, for a token this process saw before: one round trip to Redis instead of two):
 * in the same step, the account's token hash must be `tokenHash` (hashSecret of the token), or
 * nothing is written and TokenNotHeldError is thrown.
 */
export function updateProfileAsTokenHolder(
  db: Db,
  account: string,
  tokenHash: string,
  patch: ProfilePatch,
): Promise<ProfileChangeEvent> {
  return writeProfile(db, account, patch, Date.now(), randomUUID(), tokenHash);
}

async function writeProfile(
  db: Db,
  account: string,
  patch: ProfilePatch,
  now: number,
  writeId: string,
  tokenHash: string,
): Promise<ProfileChangeEvent> {
  const pairs = patchPairs(patch);
  const hasNick = patch.nick !== undefined;
  const partition = partitionOf(account);
  const result = await runScript(
    db.redis,
    'ncUpdateProfile',
    [
      keys.profile(account),
      keys.directory(partition),
      keys.log(partition),
      keys.logSeq(partition),
      keys.writes(account),
      keys.accountLog(account),
      keys.auth(account),
    ],
    [
      account,
      String(now),
      String(db.logMaxLen),
      channelName(db, keys.channel(account)),
      hasNick ? nickMember(patch.nick ?? '', account) : '',
      hasNick ? '1' : '0',
      writeId,
      String(WRITE_ID_TTL_MS),
      String(db.accountLogMax ?? ACCOUNT_LOG_MAX),
      eventClock(db),
      publishCommand(db),
      tokenHash,
      ...pairs,
    ],
  );
  if (result === 'NOT_FOUND') throw new ProfileNotFoundError(account);
  if (result === 'TOKEN_NOT_HELD') throw new TokenNotHeldError(account);
  return parseEvent(result);
}
