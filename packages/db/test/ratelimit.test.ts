/**
 * Rate limits and session control in the store, on ioredis-mock and on real Redis alike (the
 * limiter's Lua runs on both): counts hold across clients of one data set, as across servers.
 */
import { describe, expect, it } from 'vitest';
import {
  accountForSession,
  accountForToken,
  AccountNotFoundError,
  createSession,
  endAllSessions,
  parseRateRule,
  RateLimit,
  RateLimitedError,
  rotateToken,
  TokenTakenError,
} from '../src';
import { describeEachBackend } from './backends';
import { createUser } from './util';

describeEachBackend('RateLimit', (backend) => {
  it('consume: every attempt counts; past the limit RateLimitedError with a Retry-After', async () => {
    const limit = new RateLimit(backend.db, 'test', { points: 2, seconds: 30 });
    await limit.consume('k');
    await limit.consume('k');
    const error = await limit.consume('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((error as RateLimitedError).retryAfterSeconds).toBeLessThanOrEqual(30);
    await limit.consume('other key');
  });

  it('refund gives an attempt back', async () => {
    const limit = new RateLimit(backend.db, 'test', { points: 1, seconds: 30 });
    await limit.consume('k');
    await limit.refund('k');
    await limit.consume('k');
    await expect(limit.consume('k')).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('failed/check: counts hold across clients (servers); check needs no Redis once blocked', async () => {
    const a = new RateLimit(backend.db, 'test', { points: 2, seconds: 30 });
    const b = new RateLimit(backend.connect(), 'test', { points: 2, seconds: 30 });
    await a.failed('ip');
    await a.failed('ip');
    b.check('ip'); // b has not seen a failure yet
    await expect(b.failed('ip')).rejects.toBeInstanceOf(RateLimitedError);
    expect(() => b.check('ip')).toThrow(RateLimitedError);
    expect(() => b.check('another ip')).not.toThrow();
  });
});

describeEachBackend('sessions and tokens', (backend) => {
  it('endAllSessions ends every session of one account only', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    await createUser(db, 'bob');
    const [a1, a2, b1] = [
      await createSession(db, 'alice'),
      await createSession(db, 'alice'),
      await createSession(db, 'bob'),
    ];
    await endAllSessions(db, 'alice');
    expect(await accountForSession(db, a1)).toBeNull();
    expect(await accountForSession(db, a2)).toBeNull();
    expect(await accountForSession(db, b1)).toBe('bob');
    const a3 = await createSession(db, 'alice');
    expect(await accountForSession(db, a3)).toBe('alice');
    await expect(endAllSessions(db, 'nobody')).rejects.toBeInstanceOf(AccountNotFoundError);
  });

  it('rotateToken replaces the token and ends sessions; a taken token is refused', async () => {
    const { db } = backend;
    const alice = await createUser(db, 'alice');
    const bob = await createUser(db, 'bob');
    const session = await createSession(db, 'alice');
    const token = await rotateToken(db, 'alice');
    expect(await accountForToken(db, alice.token)).toBeNull();
    expect(await accountForToken(db, token)).toBe('alice');
    expect(await accountForSession(db, session)).toBeNull();
    await expect(rotateToken(db, 'alice', bob.token)).rejects.toBeInstanceOf(TokenTakenError);
    expect(await accountForToken(db, bob.token)).toBe('bob');
    expect(await accountForToken(db, token)).toBe('alice');
    await expect(rotateToken(db, 'nobody')).rejects.toBeInstanceOf(AccountNotFoundError);
  });
});

describe('parseRateRule', () => {
  it('reads points/seconds and refuses the rest', () => {
    expect(parseRateRule('10/60')).toEqual({ points: 10, seconds: 60 });
    expect(parseRateRule(' 3 / 1 ')).toEqual({ points: 3, seconds: 1 });
    for (const bad of ['', '10', '0/60', '10/0', 'a/b', '-1/5', '1.5/2']) {
      expect(parseRateRule(bad)).toBeNull();
    }
  });
});
