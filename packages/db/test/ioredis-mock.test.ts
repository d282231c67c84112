/**
 * What patches/ioredis-mock+8.13.1.patch touches, checked on ioredis-mock AND on real Redis so
 * the patched mock keeps answering what Redis answers: sorted-set order and ranges (the patch
 * reads and writes sorted sets and hashes in place instead of copying them), WATCH seeing those
 * in-place writes, and Lua scripts (the patch keeps one Lua VM per client and compiles a script
 * once): no state leaks from one call to the next, and errors inside scripts leave the next call
 * working. Also fails when the patch is not applied (npm's postinstall did not run it).
 */
import { expect, it } from 'vitest';
import { type Redis } from '../src';
import { describeEachBackend, type BackendKind } from './backends';

// The mock's patch is checked against one real Redis; a cluster adds nothing here.
const MOCK_AND_REDIS: BackendKind[] = ['memory', 'redis'];

/** ZRANGE ... WITHSCORES as [member, score] pairs. */
async function zpairs(redis: Redis, key: string): Promise<[string, number][]> {
  const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
  const out: [string, number][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const byScoreThenMember = (a: [string, number], b: [string, number]) =>
  a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

describeEachBackend(
  'ioredis-mock patch: sorted sets',
  (backend) => {
    it('orders by score, equal scores by member; a new score moves a member', async () => {
      const { redis } = backend.db;
      expect(await redis.zadd('z', 1, 'b', 1, 'a', 0, 'c', 2, 'a', 1, 'bb', 1, 'B')).toBe(5);
      expect(await zpairs(redis, 'z')).toEqual([
        ['c', 0],
        ['B', 1],
        ['b', 1],
        ['bb', 1],
        ['a', 2],
      ]);
      expect(await redis.zadd('z', 0.5, 'a')).toBe(0);
      expect(await redis.zrange('z', 0, -1)).toEqual(['c', 'a', 'B', 'b', 'bb']);
      expect(await redis.zrevrange('z', 0, 1)).toEqual(['bb', 'b']);
      expect(await redis.zrange('z', -2, -1)).toEqual(['b', 'bb']);
      expect(await redis.zcard('z')).toBe(5);
      expect(await redis.zscore('z', 'a')).toBe('0.5');
      expect(await redis.zadd('z', 'NX', 9, 'a', 9, 'new')).toBe(1);
      expect(await redis.zadd('z', 'XX', 'CH', 3, 'c', 3, 'absent')).toBe(1);
      expect(await redis.zrange('z', 0, -1)).toEqual(['a', 'B', 'b', 'bb', 'c', 'new']);
    });

    it('ranges by score: inclusive, exclusive, infinite bounds, LIMIT, reversed', async () => {
      const { redis } = backend.db;
      await redis.zadd('z', 1, 'a', 2, 'b', 2, 'c', 3, 'd', 4, 'e', 5, 'f');
      expect(await redis.zrangebyscore('z', 2, 4)).toEqual(['b', 'c', 'd', 'e']);
      expect(await redis.zrangebyscore('z', '(2', '(5')).toEqual(['d', 'e']);
      expect(await redis.zrangebyscore('z', '-inf', '+inf', 'LIMIT', 1, 3)).toEqual([
        'b',
        'c',
        'd',
      ]);
      expect(await redis.zrangebyscore('z', '(3', '+inf', 'LIMIT', 0, 100)).toEqual(['e', 'f']);
      expect(await redis.zrangebyscore('z', 6, '+inf')).toEqual([]);
      expect(await redis.zrevrangebyscore('z', '+inf', '(1', 'LIMIT', 0, 3)).toEqual([
        'f',
        'e',
        'd',
      ]);
      expect(await redis.zcount('z', '(1', 3)).toBe(3);
    });

    it('ranges by lex: [ and ( bounds, - and +, LIMIT, reversed', async () => {
      const { redis } = backend.db;
      for (const m of ['b', 'a', 'ab', 'abc', 'b0', 'ba', 'c', 'A', 'a.n.x', 'a.a.x']) {
        await redis.zadd('lex', 0, m);
      }
      expect(await redis.zrangebylex('lex', '-', '+')).toEqual([
        'A',
        'a',
        'a.a.x',
        'a.n.x',
        'ab',
        'abc',
        'b',
        'b0',
        'ba',
        'c',
      ]);
      expect(await redis.zrangebylex('lex', '[a', '(b')).toEqual([
        'a',
        'a.a.x',
        'a.n.x',
        'ab',
        'abc',
      ]);
      expect(await redis.zrangebylex('lex', '(a', '[b0', 'LIMIT', 1, 3)).toEqual([
        'a.n.x',
        'ab',
        'abc',
      ]);
      // A prefix query, as the directory makes: from [prefix to (the prefix with its last byte + 1.
      expect(await redis.zrangebylex('lex', '[a.', '(a/')).toEqual(['a.a.x', 'a.n.x']);
      expect(await redis.zrevrangebylex('lex', '+', '[b', 'LIMIT', 0, 2)).toEqual(['c', 'ba']);
    });

    it('removes by member, rank and score; ranges stay right after every change', async () => {
      const { redis } = backend.db;
      await redis.zadd('z', 1, 'a', 2, 'b', 3, 'c', 4, 'd', 5, 'e', 6, 'f');
      expect(await redis.zrem('z', 'c', 'absent')).toBe(1);
      expect(await redis.zremrangebyrank('z', 0, -5)).toBe(1);
      expect(await redis.zrange('z', 0, -1)).toEqual(['b', 'd', 'e', 'f']);
      expect(await redis.zremrangebyscore('z', '(4', 5)).toBe(1);
      expect(await zpairs(redis, 'z')).toEqual([
        ['b', 2],
        ['d', 4],
        ['f', 6],
      ]);
      expect(await redis.zcard('z')).toBe(3);
    });

    it('a random mix of ZADD, ZREM, ZINCRBY and trims keeps the order a plain sort gives', async () => {
      const { redis } = backend.db;
      const random = prng(9);
      const model = new Map<string, number>();
      for (let step = 0; step < 400; step++) {
        const member = `m${Math.floor(random() * 60)}`;
        const roll = random();
        if (roll < 0.6) {
          const score = Math.floor(random() * 8);
          await redis.zadd('z', score, member);
          model.set(member, score);
        } else if (roll < 0.8) {
          await redis.zrem('z', member);
          model.delete(member);
        } else if (roll < 0.87) {
          const by = Math.floor(random() * 3);
          await redis.zincrby('z', by, member);
          model.set(member, (model.get(member) ?? 0) + by);
        } else {
          // The change log's trim: keep the newest (highest) entries.
          const keep = 20;
          const sorted = [...model].sort(byScoreThenMember);
          const removed = Math.max(0, sorted.length - keep);
          expect(await redis.zremrangebyrank('z', 0, -(keep + 1))).toBe(removed);
          for (const [m] of sorted.slice(0, removed)) model.delete(m);
        }
        if (step % 25 === 0 || step === 399) {
          expect(await zpairs(redis, 'z')).toEqual([...model].sort(byScoreThenMember));
          const lo = Math.floor(random() * 8);
          expect(await redis.zrangebyscore('z', `(${lo}`, '+inf', 'LIMIT', 0, 5)).toEqual(
            [...model]
              .filter(([, s]) => s > lo)
              .sort(byScoreThenMember)
              .slice(0, 5)
              .map(([m]) => m),
          );
        }
      }
    });

    it('WATCH sees sorted-set and hash writes made in place by another client', async () => {
      const { redis } = backend.db;
      const other = backend.connect().redis;
      const writes: [string, () => Promise<unknown>][] = [
        ['w', () => other.zadd('w', 1, 'x')],
        ['w', () => other.zrem('w', 'x')],
        ['h', () => other.hset('h', 'f', '1', 'g', '2')],
        ['h', () => other.hdel('h', 'f')],
      ];
      for (const [key, write] of writes) {
        await redis.watch(key);
        await write();
        expect(await redis.multi().set('k', 'v').exec()).toBeNull();
      }
      await redis.watch('w');
      expect(await redis.multi().set('k', 'v').exec()).toEqual([[null, 'OK']]);
    });
  },
  MOCK_AND_REDIS,
);

describeEachBackend(
  'ioredis-mock patch: hashes',
  (backend) => {
    it('HSET counts new fields, HDEL of the last field deletes the key, HGETALL hands out a copy', async () => {
      const { redis } = backend.db;
      expect(await redis.hset('h', 'a', '1', 'b', '2')).toBe(2);
      expect(await redis.hset('h', 'a', '3', 'c', '4')).toBe(1);
      expect(await redis.hmget('h', 'a', 'x', 'c')).toEqual(['3', null, '4']);
      expect(await redis.hexists('h', 'c')).toBe(1);
      const copy = await redis.hgetall('h');
      copy.a = 'changed';
      expect(await redis.hget('h', 'a')).toBe('3');
      expect(await redis.hdel('h', 'a', 'absent')).toBe(1);
      expect(await redis.hdel('h', 'b', 'c')).toBe(2);
      expect(await redis.exists('h')).toBe(0);
      expect(await redis.hget('h', 'a')).toBeNull();
    });
  },
  MOCK_AND_REDIS,
);

describeEachBackend(
  'ioredis-mock patch: Lua scripts',
  (backend) => {
    it('nothing a script sets survives into the next call: globals, library fields, KEYS, ARGV', async () => {
      const { redis } = backend.db;
      // Real Redis refuses these writes (read-only globals); the mock allows them within a call.
      // Either way the next call must not see them.
      const first = await redis.eval(
        `pcall(function() leaked = 1 end)
       pcall(function() string.leaked = 1 end)
       pcall(function() redis.leaked = 1 end)
       return #KEYS .. ' ' .. #ARGV`,
        3,
        '{k}1',
        '{k}2',
        '{k}3',
        'a1',
        'a2',
        'a3',
      );
      expect(first).toBe('3 3');
      const second = await redis.eval(
        `return table.concat({ #KEYS, #ARGV, tostring(KEYS[2]), tostring(ARGV[1]),
         type(rawget(_G, 'leaked')), type(rawget(string, 'leaked')), type(rawget(redis, 'leaked')),
         type(string.format), type(redis.call) }, ' ')`,
        1,
        'only',
      );
      expect(second).toBe('1 0 nil nil nil nil nil function function');
    });

    it('a global assigned in a call is seen in that call only (the mock; Redis refuses it)', async () => {
      const { redis } = backend.db;
      const assign = redis.eval('counter = (counter or 0) + 1 return counter', 0);
      if (backend.kind === 'redis') {
        await expect(assign).rejects.toThrow(/readonly|global/i);
        return;
      }
      expect(await assign).toBe(1);
      expect(await redis.eval('counter = (counter or 0) + 1 return counter', 0)).toBe(1);
      // Also through a chunk the script load()s (Lua 5.3's load; Redis' Lua 5.1 has loadstring).
      expect(await redis.eval(`load('viaLoad = 1')() return viaLoad`, 0)).toBe(1);
      expect(await redis.eval(`return type(load('return viaLoad')()) .. type(viaLoad)`, 0)).toBe(
        'nilnil',
      );
    });

    it('an error inside a script rejects that call only; writes made before it stay, as in Redis', async () => {
      const { redis } = backend.db;
      await expect(
        redis.eval(`redis.call('SET', KEYS[1], 'v') error('boom')`, 1, 'k'),
      ).rejects.toThrow(/boom/);
      expect(await redis.get('k')).toBe('v');
      await expect(redis.eval('this is not lua', 0)).rejects.toThrow();
      await expect(redis.eval(`return redis.call('NOSUCHCOMMAND')`, 0)).rejects.toThrow();
      await redis.hset('h', 'f', 'v');
      await expect(
        redis.eval(`return redis.call('ZADD', KEYS[1], 1, 'x')`, 1, 'h'),
      ).rejects.toThrow();
      // A redis.call error caught by pcall does not end the script.
      expect(
        await redis.eval(`local ok = pcall(redis.call, 'NOSUCHCOMMAND') return tostring(ok)`, 0),
      ).toBe('false');
      // And the client's scripts keep working, with this call's own KEYS and ARGV.
      expect(await redis.eval('return KEYS[1] .. ARGV[1] .. #ARGV', 1, 'key', 'arg')).toBe(
        'keyarg1',
      );
    });

    it('defined commands in a pipeline and in parallel answer in order, on two clients', async () => {
      const { redis } = backend.db;
      const other = backend.connect().redis;
      const lua = `redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LLEN', KEYS[1])`;
      redis.defineCommand('ncTestAppend', { numberOfKeys: 1, lua });
      other.defineCommand('ncTestAppend', { numberOfKeys: 1, lua });
      type WithAppend = { ncTestAppend(key: string, value: string): Promise<number> };
      const pipeline = redis.pipeline() as unknown as WithAppend & {
        exec(): Promise<[Error | null, unknown][]>;
      };
      for (const value of ['a', 'b', 'c']) void pipeline.ncTestAppend('list', value);
      expect(await pipeline.exec()).toEqual([
        [null, 1],
        [null, 2],
        [null, 3],
      ]);
      const lengths = await Promise.all(
        ['d', 'e', 'f', 'g'].map((value, i) =>
          ((i % 2 ? other : redis) as unknown as WithAppend).ncTestAppend('list', value),
        ),
      );
      // Two connections: each call is atomic, their order between clients is not fixed.
      expect(lengths.sort()).toEqual([4, 5, 6, 7]);
      const list = await redis.lrange('list', 0, -1);
      expect(list.slice(0, 3)).toEqual(['a', 'b', 'c']);
      expect(list.slice(3).sort()).toEqual(['d', 'e', 'f', 'g']);
    });

    it('the patch is applied: a client keeps its Lua VM between calls', async () => {
      if (backend.kind === 'redis') return;
      const { redis } = backend.db;
      await redis.eval('return 1', 0);
      const vm = (redis as unknown as { _scriptVm?: object })._scriptVm;
      if (!vm) {
        throw new Error(
          'ioredis-mock is not patched (patches/ioredis-mock+8.13.1.patch): run `npm install` ' +
            '(its postinstall runs patch-package) and check that it reports the patch applied',
        );
      }
      await redis.eval('return 2', 0);
      expect((redis as unknown as { _scriptVm?: object })._scriptVm).toBe(vm);
    });
  },
  MOCK_AND_REDIS,
);
