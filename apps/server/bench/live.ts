/**
 * Live delivery benchmark: how long a profile change takes from the writer's call to a
 * subscriber's onData, through one server and across two servers sharing Redis, next to the
 * bare Redis PUBLISH -> SUBSCRIBE round trip measured in the same run (the baseline).
 *
 *   npm run bench -w @namecard/server     (needs the local Redis; db 5 is flushed)
 */
import { type AppRouter } from '@namecard/api';
import { createRedis, newMemoryName } from '@namecard/db';
import { benchRedis } from '@namecard/db/testing';
import { reportRows, type BenchRow } from '@namecard/db/bench-report';
import { createNamecardTrpc } from '@namecard/client';
import { createTRPCClient, httpLink } from '@trpc/client';
import { startServer, type RunningServer } from '../src/app';
import { createLogger } from '../src/logger';

const SAMPLES = Number(process.env.NAMECARD_BENCH_SAMPLES ?? 300);
const ADMIN = 'bench-admin-secret-0123456789';
const logger = createLogger('silent');

// Unbatched: each call goes out at once (the batch link waits for the tick to end).
const client = (url: string, token: string) => createNamecardTrpc({ url, token, batch: false });

const stats = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
};
const ms = (n: number) => Number(n.toFixed(2));

async function bareRedis(url: string): Promise<number[]> {
  const pub = createRedis({ url });
  const sub = pub.duplicate();
  await sub.subscribe('bench:baseline');
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = new Promise<void>((resolve) => sub.once('message', () => resolve()));
    const t0 = performance.now();
    await pub.publish('bench:baseline', `{"i":${i}}`);
    await got;
    samples.push(performance.now() - t0);
  }
  sub.disconnect();
  pub.disconnect();
  return samples;
}

/** The write alone: updateMyInfo's HTTP round trip, nobody subscribed. */
async function writeOnly(server: RunningServer): Promise<number[]> {
  const admin = createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${server.url}/trpc`, headers: { 'x-namecard-admin': ADMIN } })],
  });
  const writer = await admin.admin.createAccount.mutate({
    account: `x${Math.random().toString(36).slice(2, 8)}`,
  });
  const w = client(server.url, writer.token);
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES + 20; i++) {
    const t0 = performance.now();
    await w.user.updateMyInfo.mutate({ sign: `s${i}` });
    if (i >= 20) samples.push(performance.now() - t0);
  }
  return samples;
}

/** Writes through `writerServer`, subscribes through `readerServer`; one change at a time. */
async function namecard(
  writerServer: RunningServer,
  readerServer: RunningServer,
): Promise<number[]> {
  const admin = createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${writerServer.url}/trpc`, headers: { 'x-namecard-admin': ADMIN } })],
  });
  const suffix = Math.random().toString(36).slice(2, 8);
  const writer = await admin.admin.createAccount.mutate({ account: `w${suffix}` });
  const reader = await admin.admin.createAccount.mutate({ account: `r${suffix}` });
  const w = client(writerServer.url, writer.token);
  const r = client(readerServer.url, reader.token);
  let onItem: ((sign: string) => void) | null = null;
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const sub = r.user.onChange.subscribe(
    { accounts: [writer.account] },
    {
      onData: ({ data }) => {
        if (data.type === 'ready') ready();
        if (data.type === 'profile') onItem?.(data.profile.sign);
      },
    },
  );
  await isReady;
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES + 20; i++) {
    const sign = `s${i}`;
    const got = new Promise<void>((resolve) => {
      onItem = (s) => s === sign && resolve();
    });
    const t0 = performance.now();
    await w.user.updateMyInfo.mutate({ sign });
    await got;
    if (i >= 20) samples.push(performance.now() - t0); // the first 20 warm up
  }
  sub.unsubscribe();
  return samples;
}

async function main() {
  const redis = await benchRedis(5);
  const url = redis.url;
  const rows: Record<string, string | number>[] = [];
  const report: BenchRow[] = [];
  let bare: ReturnType<typeof stats> | undefined;
  const row = (name: string, samples: number[], baseline?: number) => {
    const s = stats(samples);
    const figure = (x: ReturnType<typeof stats>) => `p50 ${ms(x.p50)} ms, p99 ${ms(x.p99)} ms`;
    if (!bare) bare = s;
    else {
      report.push({
        suite: 'live',
        case: `${name} (one change at a time)`,
        namecard: figure(s),
        bare: `${figure(bare)} (Redis PUBLISH -> subscriber)`,
        ratio: Number((s.p50 / bare.p50).toFixed(1)),
        better: 'lower',
        values: { namecardP50: s.p50, namecardP99: s.p99, bareP50: bare.p50, bareP99: bare.p99 },
      });
    }
    rows.push({
      path: name,
      samples: samples.length,
      'p50 ms': ms(s.p50),
      'p90 ms': ms(s.p90),
      'p99 ms': ms(s.p99),
      'max ms': ms(s.max),
      'p50 x baseline': baseline === undefined ? 'baseline' : (s.p50 / baseline).toFixed(1),
    });
    return s.p50;
  };

  const flush = createRedis({ url });
  await flush.flushdb();
  flush.disconnect();
  const base = row('bare Redis PUBLISH -> subscriber', await bareRedis(url));
  const a = await startServer({ port: 0, redisUrl: url, adminSecret: ADMIN, logger });
  const b = await startServer({ port: 0, redisUrl: url, adminSecret: ADMIN, logger });
  row('updateMyInfo round trip alone (no delivery)', await writeOnly(a), base);
  row('write -> live event, same server', await namecard(a, a), base);
  row('write on A -> live event on B', await namecard(a, b), base);
  await a.close();
  await b.close();
  await redis.release();

  const m = await startServer({ port: 0, memoryName: newMemoryName(), adminSecret: ADMIN, logger });
  row('memory mode: updateMyInfo round trip alone', await writeOnly(m), base);
  row('memory mode: write -> live event', await namecard(m, m), base);
  await m.close();

  console.log(
    `\nLive delivery latency, one change at a time (${SAMPLES} samples each; writer's call -> subscriber's onData)`,
  );
  console.table(rows);
  reportRows(report);
}

await main();
