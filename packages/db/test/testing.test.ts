/**
 * Where the test suites' real Redis comes from: never the developer's own Redis unless
 * NAMECARD_TEST_REDIS_URL points at it, but a redis-server the run starts on a spare port and
 * stops by its PID.
 */
import { describe, expect, inject, it } from 'vitest';
import { probeRealRedis, redisServerAvailable, resolveTestRedis } from '../src/testing';

const binary = redisServerAvailable();
const mustRun = process.env.CI === 'true';
if (!binary.available && !mustRun) {
  console.warn(`\n[namecard/db] WARNING: owned-Redis tests SKIPPED: ${binary.detail}\n`);
}

/** Whether a process with this PID exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the test suites’ Redis', () => {
  it('is the one NAMECARD_TEST_REDIS_URL names, or else one this run started (not :6379)', () => {
    const probe = inject('namecardRealRedis');
    const explicit = process.env.NAMECARD_TEST_REDIS_URL;
    if (explicit) expect(probe.url).toBe(explicit);
    else expect(new URL(probe.url).port).not.toBe('6379');
  });

  describe.skipIf(!binary.available && !mustRun)('resolveTestRedis', () => {
    it('starts a redis-server of its own on a spare port and stops it by PID', async () => {
      const saved = process.env.NAMECARD_TEST_REDIS_URL;
      delete process.env.NAMECARD_TEST_REDIS_URL;
      try {
        const { probe, owned } = await resolveTestRedis(5);
        expect(owned).not.toBeNull();
        expect(probe.reachable).toBe(true);
        expect(probe.url).toBe(`redis://127.0.0.1:${owned!.port}/5`);
        expect(owned!.port).not.toBe(6379);
        expect((await probeRealRedis(probe.url)).reachable).toBe(true);
        expect(alive(owned!.pid)).toBe(true);
        await owned!.stop();
        expect(alive(owned!.pid)).toBe(false);
        expect((await probeRealRedis(probe.url, 300)).reachable).toBe(false);
      } finally {
        if (saved !== undefined) process.env.NAMECARD_TEST_REDIS_URL = saved;
      }
    });

    it('uses NAMECARD_TEST_REDIS_URL when set, starting nothing', async () => {
      const saved = process.env.NAMECARD_TEST_REDIS_URL;
      process.env.NAMECARD_TEST_REDIS_URL = 'redis://127.0.0.1:1/7';
      try {
        const { probe, owned } = await resolveTestRedis(9);
        expect(owned).toBeNull();
        expect(probe.url).toBe('redis://127.0.0.1:1/7');
        expect(probe.reachable).toBe(false);
      } finally {
        if (saved === undefined) delete process.env.NAMECARD_TEST_REDIS_URL;
        else process.env.NAMECARD_TEST_REDIS_URL = saved;
      }
    });
  });
});
