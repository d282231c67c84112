import { describe, expect, test } from 'vitest';
import { chunk, dedupe, mapLimit } from '../src/batch';
import { mergeUsers, supersedes } from '../src';

const p = (account: string, updateTime: number, nick = `${account}@${updateTime}`) => ({
  account,
  updateTime,
  nick,
});

describe('mergeUsers', () => {
  test('one profile per account, the newer updateTime wins whichever list it is in', () => {
    const olds = [p('a', 1), p('b', 5), p('c', 3)];
    const news = [p('b', 4), p('a', 2), p('d', 1)];
    expect(mergeUsers(olds, news)).toEqual([p('a', 2), p('b', 5), p('c', 3), p('d', 1)]);
    expect(mergeUsers(news, olds)).toEqual([p('b', 5), p('a', 2), p('d', 1), p('c', 3)]);
  });

  test('equal updateTime: the later copy wins (later list, or later in the same list)', () => {
    expect(mergeUsers([p('a', 7, 'old')], [p('a', 7, 'new')])).toEqual([p('a', 7, 'new')]);
    expect(mergeUsers([p('a', 7, 'first'), p('a', 7, 'second')])).toEqual([p('a', 7, 'second')]);
    expect(mergeUsers([p('a', 8, 'newer'), p('a', 7, 'older')])).toEqual([p('a', 8, 'newer')]);
  });

  test('order of first appearance; empty, null and undefined lists; inputs untouched', () => {
    const a = [p('x', 1), p('y', 1)];
    const b = [p('z', 1), p('x', 2)];
    const snapshot = JSON.stringify([a, b]);
    expect(mergeUsers(null, a, undefined, [], b).map((u) => u.account)).toEqual(['x', 'y', 'z']);
    expect(JSON.stringify([a, b])).toBe(snapshot);
    expect(mergeUsers()).toEqual([]);
  });

  test('supersedes', () => {
    expect(supersedes(p('a', 2), undefined)).toBe(true);
    expect(supersedes(p('a', 2), p('a', 1))).toBe(true);
    expect(supersedes(p('a', 2), p('a', 2))).toBe(true);
    expect(supersedes(p('a', 1), p('a', 2))).toBe(false);
  });
});

describe('batching helpers', () => {
  test('dedupe keeps first occurrences in order; chunk splits by size', () => {
    expect(dedupe(['b', 'a', 'b', 'c', 'a'])).toEqual(['b', 'a', 'c']);
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 150)).toEqual([]);
    expect(() => chunk([1], 0)).toThrow(RangeError);
  });

  test('mapLimit keeps order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([50, 10, 30, 5, 20, 1], 2, async (ms, i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return i;
    });
    expect(out).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  test('mapLimit rejects with the first error and starts nothing after it', async () => {
    const started: number[] = [];
    await expect(
      mapLimit([1, 2, 3, 4], 1, async (n) => {
        await Promise.resolve();
        started.push(n);
        if (n === 2) throw new Error('boom');
        return n;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });
});
