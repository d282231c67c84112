import { describe, expect, it } from 'vitest';
import { commonSlot as generateMulti, slotOf as calculateSlot } from '../src/slots';
import {
  ALL_PARTITIONS,
  accountOfChannel,
  checkLayout,
  closeDb,
  createDb,
  keys,
  LAYOUT,
  LayoutError,
  LEGACY_KEYS,
  PARTITION_SLOTS,
  PARTITION_TAGS,
  PARTITIONS,
  partitionOf,
  pingDb,
  redisMode,
} from '../src';
import { describeEachBackend } from './backends';

describe('keys', () => {
  it("tags every key of an account with its partition's hash tag", () => {
    const tag = `nc:{${PARTITION_TAGS[partitionOf('alice')]}}`;
    expect(keys.profile('alice')).toBe(`${tag}:alice:profile`);
    expect(keys.friends('alice')).toBe(`${tag}:alice:friends`);
    expect(keys.channel('alice')).toBe(`${tag}:alice:changes`);
    const p = partitionOf('a.b@c-d_e');
    const account = [
      keys.profile('a.b@c-d_e'),
      keys.auth('a.b@c-d_e'),
      keys.accountLog('a.b@c-d_e'),
    ];
    const partition = [keys.log(p), keys.logSeq(p), keys.directory(p), keys.channel('a.b@c-d_e')];
    expect(generateMulti([...account, ...partition])).toBe(PARTITION_SLOTS[p]);
    expect(accountOfChannel(keys.channel('a.b@c'))).toBe('a.b@c');
    expect(accountOfChannel(`t1:${keys.channel('a.b@c')}`, 't1:')).toBe('a.b@c');
    expect(accountOfChannel(keys.profile('alice'))).toBeNull();
    expect(accountOfChannel('other')).toBeNull();
  });

  it('spreads the partitions evenly over the slots, and accounts evenly over the partitions', () => {
    expect(PARTITION_TAGS).toHaveLength(PARTITIONS);
    expect(ALL_PARTITIONS.map((p) => calculateSlot(keys.log(p)))).toEqual(PARTITION_SLOTS);
    const counts = new Array<number>(PARTITIONS).fill(0);
    for (let i = 0; i < 24_000; i++) counts[partitionOf(`user${i}`)]! += 1;
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(150);
  });

  it('keeps token and session keys out of every partition (looked up on their own)', () => {
    expect(keys.token('ab12')).toBe('nc:token:ab12');
    expect(keys.session('cd34')).toBe('nc:session:cd34');
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
    expect(db.mode).toBe(backend.kind === 'memory' ? 'memory' : 'redis');
    expect(db.cluster).toBe(backend.kind === 'cluster');
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

describeEachBackend('key layout', (backend) => {
  it('is claimed at first start, accepted again, and another layout is refused with a message', async () => {
    const { db } = backend;
    await checkLayout(db);
    expect(await db.redis.get(keys.layout)).toBe(LAYOUT);
    await checkLayout(backend.connect());
    await db.redis.set(keys.layout, 'partitions:32');
    await expect(checkLayout(db)).rejects.toThrow(
      /layout partitions:32; this version uses partitions:24/,
    );
  });

  it("refuses a data set of today's servers (global nc:log, nc:directory) and writes nothing", async () => {
    const { db } = backend;
    for (const key of LEGACY_KEYS) {
      await db.redis.set(key, 'old');
      const refused = checkLayout(db);
      await expect(refused).rejects.toBeInstanceOf(LayoutError);
      await expect(refused).rejects.toThrow(/layout before partitions.*empty Redis/);
      expect(await db.redis.get(keys.layout)).toBeNull();
      await db.redis.del(key);
    }
  });
});
