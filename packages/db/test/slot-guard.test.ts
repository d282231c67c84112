/**
 * The slot guard of memory mode: ioredis-mock has no cluster, so the store's client refuses what
 * a Redis Cluster refuses (keys of one command, script or MULTI in more than one slot), and a
 * cross-slot bug shows in every memory-mode test instead of only on a cluster.
 */
import { describe, expect, it } from 'vitest';
import {
  closeDb,
  createDb,
  CrossSlotError,
  keys,
  newMemoryName,
  partitionOf,
  PARTITIONS,
} from '../src';
import { runScript } from '../src/scripts';
import { partitionMates } from './util';

const [MATE] = partitionMates('alice', 1, 'bob');
const OTHER = 'zed';

describe('slot guard (memory mode)', () => {
  it('rejects a script whose keys are in two slots, and runs it when they share one', async () => {
    const db = createDb({ memoryName: newMemoryName() });
    try {
      expect(partitionOf(OTHER)).not.toBe(partitionOf('alice'));
      db.redis.defineCommand('twoKeys', {
        numberOfKeys: 2,
        lua: "redis.call('SET', KEYS[1], 'x') redis.call('SET', KEYS[2], 'y') return 'ok'",
      });
      const twoKeys = (a: string, b: string) =>
        (db.redis as unknown as { twoKeys(a: string, b: string): Promise<string> }).twoKeys(a, b);
      const refused = twoKeys(keys.profile('alice'), keys.profile(OTHER));
      await expect(refused).rejects.toBeInstanceOf(CrossSlotError);
      await expect(refused).rejects.toThrow(/CROSSSLOT/);
      // Nothing was written.
      expect(await db.redis.exists(keys.profile('alice'))).toBe(0);
      expect(await db.redis.exists(keys.profile(OTHER))).toBe(0);
      await expect(twoKeys(keys.profile('alice'), keys.profile(MATE!))).resolves.toBe('ok');
      // EVAL with keys in two slots (the token index and a profile), as the old create did.
      await expect(
        db.redis.eval('return 1', 2, keys.token('ab'), keys.profile('alice')),
      ).rejects.toBeInstanceOf(CrossSlotError);
    } finally {
      await closeDb(db);
    }
  });

  it('rejects multi-key commands and MULTI across slots; pipelines go per command', async () => {
    const db = createDb({ memoryName: newMemoryName() });
    try {
      await expect(db.redis.del(keys.log(0), keys.log(1))).rejects.toBeInstanceOf(CrossSlotError);
      await expect(db.redis.mget(keys.log(0), keys.logSeq(0))).resolves.toEqual([null, null]);
      const multi = db.redis.multi().set(keys.logSeq(0), '1').set(keys.logSeq(1), '1');
      await expect(multi.exec()).rejects.toBeInstanceOf(CrossSlotError);
      expect(await db.redis.get(keys.logSeq(0))).toBeNull();
      const sameSlot = await db.redis
        .multi()
        .set(keys.logSeq(2), '1')
        .zadd(keys.log(2), 1, 'e')
        .exec();
      expect(sameSlot?.map(([error]) => error)).toEqual([null, null]);
      // A pipeline may mix slots (a cluster client sends one per node), not within a command.
      const mixed = await db.redis
        .pipeline()
        .get(keys.logSeq(0))
        .get(keys.logSeq(PARTITIONS - 1))
        .exec();
      expect(mixed?.map(([error]) => error)).toEqual([null, null]);
    } finally {
      await closeDb(db);
    }
  });

  it("the store's own scripts pass it (every write is one slot)", async () => {
    const db = createDb({ memoryName: newMemoryName() });
    try {
      const result = await runScript(
        db.redis,
        'ncLease',
        [keys.subscriptions('alice')],
        ['lease', '1000', '5', String(Date.now())],
      );
      expect(result).toBe('ok');
    } finally {
      await closeDb(db);
    }
  });
});
