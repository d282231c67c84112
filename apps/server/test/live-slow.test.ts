/**
 * A subscriber that stops reading cannot make the server hold an ever-growing backlog: once more
 * than DEFAULT_MAX_QUEUE events wait for it, the server cuts its connection and forgets it. The
 * client then resumes from the last id it had and gets the rest from the log.
 *
 * Real Redis (the in-memory mode's Lua VM is too slow to make thousands of changes quickly).
 */
import { compareCursors, DEFAULT_MAX_QUEUE, LIMITS, updateProfile } from '@namecard/db';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealRedis, startTestServer, type TestServer } from './helpers';
import {
  describeItems,
  expectStrictlyIncreasingIds,
  heapAfterGc,
  liveRedis,
  openRawSse,
  subscribeLive,
  waitFor,
} from './live-helpers';

const SLOW_DB = 14;
/** Changes made at most while waiting for the cut (it comes after ~2000 here). */
const MAX_CHANGES = 10_000;
const MB = 1024 * 1024;

describeRealRedis('a subscriber that stops reading', await liveRedis(SLOW_DB), (url) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ redisUrl: url, shutdownGraceMs: 300 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`is cut off past ${DEFAULT_MAX_QUEUE} waiting events, server memory stays bounded, and it resumes from its last id`, async () => {
    // Big events: every field near its limit, in two-byte characters (~6 KB per event in memory).
    const big = (c: string, n: number) => c.repeat(n);
    await updateProfile(server.db, 'bob', {
      nick: big('鲍', LIMITS.nick),
      avatar: `https://avatars.example.com/${big('a', LIMITS.avatar - 40)}`,
      custom: JSON.stringify({ pad: big('鲍', LIMITS.custom - 20) }),
    });
    const heapBefore = heapAfterGc();

    const raw = await openRawSse(server.url, server.tokens.alice, {});
    await waitFor(
      () => raw.text().includes('"type":"ready"'),
      5000,
      () => `ready on the raw connection: ${raw.text()}`,
    );
    raw.pause();
    const lastIdBefore = raw.ids().at(-1)!;
    expect(lastIdBefore).toMatch(/^n24_[0-9a-z]+_[0-9a-z.]+$/);
    expect(server.feed.stats.listeners).toBe(1);

    // Changes of alice's friend bob, 100 at a time, until the server gives up on the subscriber
    // (the socket buffers take the first few hundred events, the server holds the next
    // DEFAULT_MAX_QUEUE), then a few more; the heap is sampled meanwhile.
    let peakHeap = 0;
    const sampler = setInterval(
      () => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)),
      20,
    );
    let written = 0;
    let cutAfter = -1;
    const writeBatch = async () => {
      await Promise.all(
        Array.from({ length: 100 }, (_, k) =>
          updateProfile(server.db, 'bob', { sign: `${written + k} `.padEnd(LIMITS.sign, '鲍') }),
        ),
      );
      written += 100;
    };
    try {
      while (written < MAX_CHANGES && server.feed.stats.listeners > 0) await writeBatch();
      cutAfter = written;
      for (let i = 0; i < 3; i++) await writeBatch();
      // The server forgot the subscriber while it still holds the connection and does not read.
      await waitFor(
        () => server.feed.stats.listeners === 0,
        10_000,
        () => `the listener to go, stats ${JSON.stringify(server.feed.stats)}`,
      );
    } finally {
      clearInterval(sampler);
    }
    expect(cutAfter, 'changes written when the subscriber was cut off').toBeGreaterThan(
      DEFAULT_MAX_QUEUE,
    );
    expect(server.feed.stats).toEqual({ listeners: 0, channels: 0 });
    expect(raw.isClosed()).toBe(false);
    // What the server held for it went with it: the heap is back near where it was (with the
    // backlog kept, it would be ~5 KB per waiting event above it: ~11 MB in this test).
    const growth = heapAfterGc() - heapBefore;
    expect(
      growth,
      `heap growth ${(growth / MB).toFixed(1)} MB (peak ${((peakHeap - heapBefore) / MB).toFixed(1)} MB)`,
    ).toBeLessThan(6 * MB);

    // Reading again, the client finds its response cut short: it got what the socket buffers held.
    raw.resume();
    await waitFor(() => raw.isClosed(), 10_000, 'the raw connection to close');
    expect(raw.complete(), 'the response was cut, not ended').toBe(false);
    const received = raw.ids().filter((id) => compareCursors(id, lastIdBefore) === 1).length;
    expect(received).toBeLessThanOrEqual(cutAfter - DEFAULT_MAX_QUEUE);

    // A normal client resuming from the last id it had gets the rest from the log, then ready.
    const lastId = raw.ids().at(-1)!;
    const resumed = subscribeLive(server.url, { token: server.tokens.alice, lastEventId: lastId });
    try {
      await resumed.waitForReady(1, 20_000);
      const replayed = resumed.profiles('bob');
      expect(received + replayed.length, describeItems(resumed.items.slice(-3))).toBe(written);
      expect(new Set(replayed.map((p) => p.profile.sign.split(' ')[0])).size).toBe(replayed.length);
      expect(compareCursors(replayed[0]!.id, lastId)).toBe(1);
      expectStrictlyIncreasingIds(resumed.items);
      expect(resumed.items.filter((i) => i.data.type === 'resync')).toEqual([]);
    } finally {
      resumed.unsubscribe();
    }
  }, 45_000);
});
