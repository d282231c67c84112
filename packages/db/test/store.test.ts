import { describe, expect, it } from 'vitest';
import { accountOfChannel, closeDb, createDb, keys, pingDb, redisMode } from '../src';
import { describeEachBackend } from './backends';

describe('keys', () => {
  it('tags every per-account key with the account as a hash tag', () => {
    expect(keys.profile('alice')).toBe('nc:{alice}:profile');
    expect(keys.auth('a.b@c-d_e')).toBe('nc:{a.b@c-d_e}:auth');
    expect(keys.friends('bob')).toBe('nc:{bob}:friends');
    expect(keys.channel('bob')).toBe('nc:{bob}:changes');
    expect(accountOfChannel(keys.channel('a.b@c'))).toBe('a.b@c');
    expect(accountOfChannel('nc:{alice}:profile')).toBeNull();
    expect(accountOfChannel('other')).toBeNull();
  });

  it('refuses account ids that could break out of the hash tag', () => {
    for (const bad of ['a}b', '{a}', 'a:b', '', 'a b', 'x'.repeat(33), 'é']) {
      expect(() => keys.profile(bad), bad).toThrow(/invalid account id/);
    }
  });

  it('redisMode follows the URL', () => {
    expect(redisMode(undefined)).toBe('memory');
    expect(redisMode('')).toBe('memory');
    expect(redisMode('redis://127.0.0.1:6379/9')).toBe('redis');
  });

  it('createDb() with no options follows REDIS_URL', async () => {
    const saved = process.env.REDIS_URL;
    try {
      delete process.env.REDIS_URL;
      const memory = createDb();
      expect(memory.mode).toBe('memory');
      await closeDb(memory);
      process.env.REDIS_URL = 'redis://127.0.0.1:1/9';
      const real = createDb();
      expect(real.mode).toBe('redis');
      real.redis.disconnect();
    } finally {
      if (saved === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = saved;
    }
  });

  it('pingDb answers false, in time, for a Redis that is not there', async () => {
    const db = createDb({ url: 'redis://127.0.0.1:1/9' });
    db.redis.on('error', () => {});
    const started = Date.now();
    try {
      expect(await pingDb(db, 300)).toBe(false);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      db.redis.disconnect();
    }
  });
});

describeEachBackend('db handle', (backend) => {
  it('pings, and clients of one data set share it while another data set is separate', async () => {
    const { db } = backend;
    expect(db.mode).toBe(backend.kind);
    expect(await pingDb(db)).toBe(true);
    const other = backend.connect();
    await db.redis.set('nc:test:shared', 'yes');
    expect(await other.redis.get('nc:test:shared')).toBe('yes');
    if (backend.kind === 'memory') {
      const separate = createDb({ memoryName: `separate-${Date.now()}` });
      try {
        expect(await separate.redis.get('nc:test:shared')).toBeNull();
      } finally {
        await closeDb(separate);
      }
    }
  });
});
