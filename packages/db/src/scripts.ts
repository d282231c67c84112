/**
 * The Lua scripts that make a profile write, its directory entries and its change event one
 * atomic step. They run on real Redis and on ioredis-mock's Lua VM (fengari) alike, so they keep
 * to what both do the same: no cjson (JSON is built by hand), no 64-bit integer arithmetic
 * (fengari's integers are 32-bit: numbers are formatted with %.0f), no error_reply, and missing
 * values are tested with HGET (HMGET's nils differ).
 */
import { type Db } from './db';
import { type Redis } from './redis';

/** How scripts publish: SPUBLISH on a cluster (only the owning shard hears it), else PUBLISH. */
export const publishCommand = (db: Db): string => (db.cluster ? 'SPUBLISH' : 'PUBLISH');

/** The full name of an account's channel (with the Db's key prefix: channels get none from ioredis). */
export const channelName = (db: Db, channel: string): string => `${db.keyPrefix ?? ''}${channel}`;

const COMMON = `
local function esc(s)
  if not string.find(s, '[%c"\\\\]') then return s end
  return (string.gsub(s, '[%c"\\\\]', function(c) return string.format('\\\\u%04x', string.byte(c)) end))
end

local function profile_json(key, account)
  local flat = redis.call('HGETALL', key)
  local parts = { '"account":"' .. esc(account) .. '"' }
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    if string.sub(f, 1, 1) ~= '_' then
      if f == 'createTime' or f == 'updateTime' then
        parts[#parts + 1] = '"' .. f .. '":' .. v
      else
        parts[#parts + 1] = '"' .. f .. '":"' .. esc(v) .. '"'
      end
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- The clock event ids and write-id expiry follow, in ms, read once per script: Redis's own
-- (TIME), unless the script was given one (memory mode: ioredis-mock's TIME rounds the seconds
-- and takes the microseconds from process.hrtime(), so it jumps back and forth by up to a second).
local given_clock = ''
local clock
local function clock_ms()
  if clock then return clock end
  if given_clock ~= '' then
    clock = tonumber(given_clock) + 0.0
  else
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end

-- The next event id: max(Redis clock in ms * 1000, last id + 1). Ids increase, and a Redis
-- that lost its last writes (restored snapshot, kill -9 with AOF everysec, promoted replica)
-- still never hands one out twice: its clock has moved past the lost ones. Floats throughout
-- (fengari's integers are 32-bit; a double is exact up to 2^53, about the year 2255).
local function next_event_id(seq_key)
  local id = clock_ms() * 1000.0
  local last = tonumber(redis.call('GET', seq_key) or '0')
  if last + 1 > id then id = last + 1 end
  local s = string.format('%.0f', id)
  redis.call('SET', seq_key, s)
  return s
end

-- Whether a write id was applied within the last ttl ms (ioredis resends a command in flight when
-- its connection drops, possibly after other writes): remembers it in the same step if not.
local function seen_write(writes_key, write_id, ttl)
  if redis.call('ZSCORE', writes_key, write_id) then return true end
  local now = clock_ms()
  redis.call('ZREMRANGEBYSCORE', writes_key, '-inf', string.format('%.0f', now - tonumber(ttl)))
  redis.call('ZADD', writes_key, string.format('%.0f', now), write_id)
  redis.call('PEXPIRE', writes_key, ttl)
  return false
end

-- Logs the change whose event id is seq (stored in the profile as _seq by the caller's HSET), in
-- the partition's log and in the account's own, and publishes it (PUBLISH, or SPUBLISH on a
-- cluster: pub_cmd). The account's log keeps its events still in the partition log's window, and
-- at most account_max of them; what the cap drops is noted as the profile's _logFloor, so a
-- reader resuming from before it knows it must resync.
local function append_event(profile_key, seq, log_key, channel, maxlen, account, alog_key, account_max, pub_cmd)
  local event = '{"id":"' .. seq .. '","type":"profile","account":"' .. esc(account) .. '","profile":' .. profile_json(profile_key, account) .. '}'
  redis.call('ZADD', log_key, seq, event)
  -- Trim in steps of 1% (not on every write): keeps at least the newest maxlen events and the
  -- one before them (a reader resumes from an event it saw, which must still be there).
  local keep = tonumber(maxlen) + 1
  if redis.call('ZCARD', log_key) > keep + math.floor(keep / 100) then
    redis.call('ZREMRANGEBYRANK', log_key, 0, -(keep + 1))
  end
  redis.call('ZADD', alog_key, seq, event)
  local oldest = redis.call('ZRANGE', log_key, 0, 0, 'WITHSCORES')
  if oldest[2] then redis.call('ZREMRANGEBYSCORE', alog_key, '-inf', '(' .. oldest[2]) end
  local cap = tonumber(account_max)
  local n = redis.call('ZCARD', alog_key)
  if n > cap then
    local dropped = redis.call('ZRANGE', alog_key, n - cap - 1, n - cap - 1, 'WITHSCORES')
    redis.call('HSET', profile_key, '_logFloor', dropped[2])
    redis.call('ZREMRANGEBYRANK', alog_key, 0, n - cap - 1)
  end
  redis.call(pub_cmd, channel, event)
  return event
end

-- The profile's last event, rebuilt: the answer to a write that is sent again.
local function last_event(profile_key, account)
  local seq = redis.call('HGET', profile_key, '_seq')
  return '{"id":"' .. seq .. '","type":"profile","account":"' .. esc(account) .. '","profile":' .. profile_json(profile_key, account) .. '}'
end

-- Moves the nick's directory entry; the profile's _dirNick joins the field/value pairs in sets.
local function set_nick_entry(profile_key, dir_key, member, sets)
  local old = redis.call('HGET', profile_key, '_dirNick')
  if old then redis.call('ZREM', dir_key, old) end
  if member ~= '' then
    redis.call('ZADD', dir_key, 0, member)
    sets[#sets + 1] = '_dirNick'
    sets[#sets + 1] = member
  else
    redis.call('HDEL', profile_key, '_dirNick')
  end
end

-- Writes the patch's fields (ARGV from first on: field, value, ...; an empty value deletes the
-- field) and the field/value pairs in sets, with one HDEL and one HSET (a redis.call costs about
-- as much as a small command itself).
local function apply_fields(profile_key, first, sets)
  local hset, hdel = { profile_key }, { profile_key }
  for i = first, #ARGV, 2 do
    if ARGV[i + 1] == '' then
      hdel[#hdel + 1] = ARGV[i]
    else
      hset[#hset + 1] = ARGV[i]
      hset[#hset + 1] = ARGV[i + 1]
    end
  end
  for i = 1, #sets do hset[#hset + 1] = sets[i] end
  if #hdel > 1 then redis.call('HDEL', unpack(hdel)) end
  if #hset > 1 then redis.call('HSET', unpack(hset)) end
end
`;

/**
 * Every key a script touches is in one slot: the account's keys and its partition's directory,
 * log and sequence all carry the partition's hash tag (see keys.ts), and the channel it
 * publishes on too (a cluster refuses SPUBLISH to another slot inside a script).
 *
 * KEYS: profile, directory, log, logSeq, writes, accountLog, auth (all of one partition)
 * ARGV: account, now, maxlen, channel, nickDirMember ('' = none), hasNick ('1'/'0'), writeId,
 *       writeIdTtlMs, accountLogMax, clock ('' = Redis's TIME), publishCommand, tokenHash ('' =
 *       none), field, value, ...
 * Returns the event JSON, 'NOT_FOUND', or 'TOKEN_NOT_HELD' (a tokenHash was given and is not the
 * account's: nothing is written). A write whose id was applied in the last
 * writeIdTtlMs is a resend (ioredis resends commands in flight when a connection drops, even
 * after other writes of the profile went through): it is not applied again, and the answer is
 * the profile's last event.
 */
const UPDATE = `${COMMON}
given_clock = ARGV[10]
if ARGV[12] ~= '' and redis.call('HGET', KEYS[7], 'tokenHash') ~= ARGV[12] then return 'TOKEN_NOT_HELD' end
-- Every profile has an updateTime (createAccount sets it): none means no profile.
local prev = redis.call('HGET', KEYS[1], 'updateTime')
if not prev then return 'NOT_FOUND' end
if seen_write(KEYS[5], ARGV[7], ARGV[8]) then return last_event(KEYS[1], ARGV[1]) end
local ut = tonumber(ARGV[2])
if tonumber(prev) + 1 > ut then ut = tonumber(prev) + 1 end
local seq = next_event_id(KEYS[4])
local sets = { 'updateTime', string.format('%.0f', ut), '_seq', seq }
if ARGV[6] == '1' then set_nick_entry(KEYS[1], KEYS[2], ARGV[5], sets) end
apply_fields(KEYS[1], 13, sets)
return append_event(KEYS[1], seq, KEYS[3], ARGV[4], ARGV[3], ARGV[1], KEYS[6], ARGV[9], ARGV[11])
`;

/**
 * KEYS: profile, directory, log, logSeq, auth, writes, accountLog (all of one partition)
 * ARGV: account, now, maxlen, channel, nickDirMember, accountDirMember, tokenHash, writeId,
 *       writeIdTtlMs, accountLogMax, clock ('' = Redis's TIME), publishCommand, field, value, ...
 * Returns the event JSON or 'EXISTS'; the same write sent again answers the profile's last
 * event. The token's index entry (another slot) is claimed before, by createAccount.
 */
const CREATE = `${COMMON}
given_clock = ARGV[11]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('ZSCORE', KEYS[6], ARGV[8]) then return last_event(KEYS[1], ARGV[1]) end
  return 'EXISTS'
end
seen_write(KEYS[6], ARGV[8], ARGV[9])
local seq = next_event_id(KEYS[4])
local sets = { 'createTime', ARGV[2], 'updateTime', ARGV[2], '_seq', seq }
set_nick_entry(KEYS[1], KEYS[2], ARGV[5], sets)
apply_fields(KEYS[1], 13, sets)
redis.call('ZADD', KEYS[2], 0, ARGV[6])
redis.call('HSET', KEYS[5], 'tokenHash', ARGV[7])
return append_event(KEYS[1], seq, KEYS[3], ARGV[4], ARGV[3], ARGV[1], KEYS[7], ARGV[10], ARGV[12])
`;

/**
 * KEYS: token index entry (its value: `<account> <claimed at, ms>`)
 * ARGV: account, value to store, a stored value the entry may be taken over from ('' = none)
 * Claims a token's index entry for an account: 'ok' when free, already this account's, or
 * exactly `takeover` (an abandoned claim, see createAccount); 'taken' otherwise.
 */
const CLAIM_TOKEN = `
local holder = redis.call('GET', KEYS[1])
if holder then
  if string.match(holder, '^[^ ]+') == ARGV[1] then return 'ok' end
  if holder ~= ARGV[3] then return 'taken' end
end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'
`;

/**
 * KEYS: token index entry
 * ARGV: account
 * Deletes the entry if (and only if) it names this account: 'ok' or 'kept'.
 */
const RELEASE_TOKEN = `
local holder = redis.call('GET', KEYS[1])
if holder and string.match(holder, '^[^ ]+') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 'ok'
end
return 'kept'
`;

/**
 * KEYS: friends
 * ARGV: friend, limit, channel, notice, publishCommand
 * Returns 'added', 'already' or 'limit'. One step, so parallel adds cannot pass the limit.
 */
const ADD_FRIEND = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'already' end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'limit' end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call(ARGV[5], ARGV[3], ARGV[4])
return 'added'
`;

/**
 * KEYS: friends
 * ARGV: friend, channel, notice, publishCommand
 * Returns 'removed' or 'absent'; publishes the notice either way.
 */
const REMOVE_FRIEND = `
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call(ARGV[4], ARGV[2], ARGV[3])
if removed == 1 then return 'removed' end
return 'absent'
`;

/**
 * KEYS: subscription leases (sorted set: lease id -> expiry in ms)
 * ARGV: leaseId, leaseMs, limit, now (the caller's clock: ioredis-mock's TIME is off by up to a
 *       second, and instances' clocks differ by far less than a lease)
 * Takes or renews a lease: 'ok', or 'limit' when `limit` unexpired leases are held by others.
 * Leases of a crashed instance expire by themselves; nothing is counted that nobody renews.
 */
const LEASE = `
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 'limit'
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'ok'
`;

/**
 * Redis mode only (see getProfilesAs; memory mode pipelines the same reads): profiles as one
 * viewer may see them, read in one command instead of two per account, so the server builds no
 * command, promise and reply object per account (for 150 accounts that was most of its CPU).
 * KEYS: the accounts' profiles, then their friends sets (in the same order; on a cluster, of one
 *       partition)
 * ARGV: viewer, then the profile fields to read
 * Returns per account: its fields' values (HMGET: nil for absent ones), then 1 if the account
 * added the viewer as a friend, else 0.
 */
const VIEW_PROFILES = `
local n = #KEYS / 2
local out = {}
for i = 1, n do
  out[2 * i - 1] = redis.call('HMGET', KEYS[i], unpack(ARGV, 2))
  out[2 * i] = redis.call('SISMEMBER', KEYS[n + i], ARGV[1])
end
return out
`;

/** Scripts called with their number of keys first (a variable number). */
const VARIADIC_SCRIPTS = {
  ncViewProfiles: { lua: VIEW_PROFILES },
} as const;

const SCRIPTS = {
  ncUpdateProfile: { numberOfKeys: 7, lua: UPDATE },
  ncCreateAccount: { numberOfKeys: 7, lua: CREATE },
  ncClaimToken: { numberOfKeys: 1, lua: CLAIM_TOKEN },
  ncReleaseToken: { numberOfKeys: 1, lua: RELEASE_TOKEN },
  ncRemoveFriend: { numberOfKeys: 1, lua: REMOVE_FRIEND },
  ncLease: { numberOfKeys: 1, lua: LEASE },
  ncAddFriend: { numberOfKeys: 1, lua: ADD_FRIEND },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const defined = new WeakSet<Redis>();

/**
 * Defines our scripts as commands of a client (EVALSHA with EVAL fallback, through ioredis'
 * defineCommand). createRedis does it before the client sends anything: with auto-pipelining, a
 * command defined while a pipeline of the same event-loop turn is open is missing from that
 * pipeline, and calling it there fails and leaves the pipeline's replies misaligned, which throws
 * out of ioredis (`results[i] is not iterable`, ioredis #1931).
 */
export function defineScripts(redis: Redis): void {
  if (defined.has(redis)) return;
  for (const [scriptName, def] of Object.entries(SCRIPTS)) redis.defineCommand(scriptName, def);
  for (const [scriptName, def] of Object.entries(VARIADIC_SCRIPTS)) {
    redis.defineCommand(scriptName, def);
  }
  defined.add(redis);
}

/** Runs a script of VARIADIC_SCRIPTS (any number of keys; on a cluster, all of one slot). */
export function runVariadicScript(
  redis: Redis,
  name: keyof typeof VARIADIC_SCRIPTS,
  keys: string[],
  args: string[],
): Promise<unknown> {
  defineScripts(redis);
  const command = (redis as unknown as Record<string, (...a: (string | number)[]) => unknown>)[
    name
  ]!;
  return command.call(redis, keys.length, ...keys, ...args) as Promise<unknown>;
}

/** Runs one of our scripts (defined on first use on a client that createRedis did not make). */
export async function runScript(
  redis: Redis,
  name: ScriptName,
  keys: string[],
  args: string[],
): Promise<string> {
  defineScripts(redis);
  const command = (redis as unknown as Record<ScriptName, (...a: string[]) => Promise<unknown>>)[
    name
  ];
  const result = await command.call(redis, ...keys, ...args);
  if (typeof result !== 'string') throw new Error(`script ${name} returned ${typeof result}`);
  return result;
}
