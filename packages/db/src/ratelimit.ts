/**
 * Rate limits kept in Redis, so they hold across every server sharing it (and in memory mode on
 * ioredis-mock, which runs the same Lua). The counting is rate-limiter-flexible's
 * `RateLimiterRedis` (a fixed window per key: one atomic `SET NX EX` + `INCRBY` script per
 * consume); this module only names the limits and turns a refusal into `RateLimitedError`.
 *
 * Two ways of counting:
 * - `consume(key)` before the work: strict, every attempt counts (sign-ins per account,
 *   friend.add per account). `refund(key)` gives a point back (a sign-in that succeeded).
 * - `failed(key)` after the work failed, with `check(key)` before it: only failures count (bad
 *   credentials per client IP), so good requests cost no Redis round trip. `check` reads a
 *   process-local "blocked until" that `failed` sets once Redis says the key is over its limit;
 *   another instance learns it at its own first failure from that key. Requests already in flight
 *   when the limit is reached still finish.
 */
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { type Db } from './db';

/** `points` per `seconds`, per key. */
export interface RateRule {
  points: number;
  seconds: number;
}

/** Refused by a rate limit: answer TOO_MANY_REQUESTS with `Retry-After: retryAfterSeconds`. */
export class RateLimitedError extends Error {
  constructor(
    readonly limit: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`too many requests (${limit}); try again in ${retryAfterSeconds} s`);
  }
}

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Most keys remembered as blocked per process (oldest forgotten first past it). */
const MAX_LOCAL_BLOCKS = 10_000;

export class RateLimit {
  private readonly limiter: RateLimiterRedis;
  private readonly blockedUntil = new Map<string, number>();

  constructor(
    db: Db,
    /** Names the limit in errors and in its Redis keys (`nc:rl:<name>:<key>`). */
    readonly name: string,
    readonly rule: RateRule,
  ) {
    this.limiter = new RateLimiterRedis({
      storeClient: db.redis,
      keyPrefix: `nc:rl:${name}`,
      points: rule.points,
      duration: rule.seconds,
    });
  }

  private refused(res: RateLimiterRes): RateLimitedError {
    return new RateLimitedError(this.name, retryAfter(res.msBeforeNext));
  }

  /** Counts one attempt; throws RateLimitedError past the limit. Redis errors propagate. */
  async consume(key: string): Promise<void> {
    try {
      await this.limiter.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw this.refused(error);
      throw error;
    }
  }

  /** Gives one point back (an attempt that should not count, e.g. a successful sign-in). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(key, 1);
  }

  /** Throws RateLimitedError while this process knows the key is over its limit (no Redis call). */
  check(key: string): void {
    const until = this.blockedUntil.get(key);
    if (until === undefined) return;
    const left = until - Date.now();
    if (left > 0) throw new RateLimitedError(this.name, retryAfter(left));
    this.blockedUntil.delete(key);
  }

  /** Counts one failure; throws RateLimitedError when it reached the limit. */
  async failed(key: string): Promise<void> {
    try {
      await this.limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      if (this.blockedUntil.size >= MAX_LOCAL_BLOCKS) {
        const oldest = this.blockedUntil.keys().next();
        if (!oldest.done) this.blockedUntil.delete(oldest.value);
      }
      this.blockedUntil.set(key, Date.now() + error.msBeforeNext);
      throw this.refused(error);
    }
  }
}

/** The limits the API applies; each a setting of apps/server (see README, "Limits"). */
export interface RateRules {
  /** Sign-in attempts per account being signed in to (successes are refunded). */
  signIn: RateRule;
  /** Failed credential checks (sign-in, bearer token, session cookie, admin secret) per client IP. */
  authFailures: RateRule;
  /** `friend.add` calls per account. */
  friendAdd: RateRule;
}

export const DEFAULT_RATE_RULES: RateRules = {
  signIn: { points: 10, seconds: 900 },
  authFailures: { points: 30, seconds: 60 },
  friendAdd: { points: 60, seconds: 60 },
};

export interface RateLimits {
  signIn: RateLimit;
  authFailures: RateLimit;
  friendAdd: RateLimit;
}

export function createRateLimits(db: Db, rules: Partial<RateRules> = {}): RateLimits {
  const r = { ...DEFAULT_RATE_RULES, ...rules };
  return {
    signIn: new RateLimit(db, 'signin', r.signIn),
    authFailures: new RateLimit(db, 'authfail', r.authFailures),
    friendAdd: new RateLimit(db, 'friendadd', r.friendAdd),
  };
}

/** Parses a rule written `points/seconds` (e.g. `10/900`). */
export function parseRateRule(text: string): RateRule | null {
  const m = /^\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*$/.exec(text);
  if (!m) return null;
  const rule = { points: Number(m[1]), seconds: Number(m[2]) };
  return rule.points >= 1 && rule.seconds >= 1 ? rule : null;
}
