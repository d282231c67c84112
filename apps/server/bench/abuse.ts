/**
 * Issue 8's abuse cases replayed against a Redis-mode server with the default limits, printing
 * what a client gets and what it costs the server (time to answer, RSS growth):
 *
 *   npx tsx bench/abuse.ts   (a redis-server of its own; or NAMECARD_BENCH_REDIS_URL, flushed)
 *
 * Not part of `npm run bench`: it is a measurement of refusals, not of throughput.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createDb, seedDemoData } from '@namecard/db';
import { benchRedis } from '@namecard/db/testing';
import { startServer } from '../src/app';
import { createLogger } from '../src/logger';

const ADMIN = 'bench-admin-secret-0123456789';

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const rss = () => process.memoryUsage().rss;

function post(target: string, headers: Record<string, string>, body: Buffer | (() => Buffer)[]) {
  return new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = request(target, { method: 'POST', headers });
    req.on('error', (error) =>
      Array.isArray(body) ? resolve({ status: -1, bytes: 0 }) : reject(error),
    );
    req.on('response', (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    if (Array.isArray(body)) {
      let i = 0;
      const next = () => {
        if (i >= body.length || req.destroyed) return req.end();
        req.write(body[i++]!(), next);
      };
      next();
    } else req.end(body);
  });
}

async function main() {
  const redis = await benchRedis(5);
  const url = redis.url;
  const db = createDb({ url });
  await db.redis.flushdb();
  const seed = await seedDemoData(db, 0);
  if (!seed) throw new Error('the bench database was seeded before');
  db.redis.disconnect();
  const alice = seed.demo.find((d) => d.account === 'alice')!.token;
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    redisUrl: url,
    adminSecret: ADMIN,
    logger: createLogger('silent'),
  });
  const auth = { authorization: `Bearer ${alice}` };
  const rows: string[][] = [];
  const row = (what: string, answer: string, time: number, cost = '') =>
    rows.push([what, answer, `${time.toFixed(0)} ms`, cost]);

  // 1. 600 user.sync calls in one GET.
  let t0 = performance.now();
  const paths = Array.from({ length: 600 }, () => 'user.sync').join(',');
  const batch = await fetch(`${server.url}/trpc/${paths}?batch=1&input={}`, { headers: auth });
  row(
    'GET of 600 user.sync calls',
    `${batch.status}, ${(await batch.text()).length} B`,
    performance.now() - t0,
  );

  // 2. A 100 MB body, declared and chunked.
  let r0 = rss();
  t0 = performance.now();
  const declared = await post(
    `${server.url}/trpc/user.updateMyInfo`,
    { ...auth, 'content-type': 'application/json', 'content-length': String(100 * 1024 * 1024) },
    [() => Buffer.alloc(64 * 1024, 0x61)],
  );
  row(
    '100 MB body (Content-Length)',
    `${declared.status}`,
    performance.now() - t0,
    `RSS +${mb(rss() - r0)}`,
  );
  r0 = rss();
  t0 = performance.now();
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  const chunked = await post(
    `${server.url}/trpc/user.updateMyInfo`,
    { ...auth, 'content-type': 'application/json' },
    Array.from({ length: 100 }, () => () => chunk),
  );
  row(
    '100 MB body (chunked)',
    `${chunked.status}`,
    performance.now() - t0,
    `RSS +${mb(rss() - r0)}`,
  );

  // 3. The biggest patch of unknown keys that fits the body limit.
  const keys: Record<string, number> = {};
  for (let i = 0; i < 90_000; i++) keys[`k${i}`] = 0;
  const body = Buffer.from(JSON.stringify(keys));
  t0 = performance.now();
  const unknown = await post(
    `${server.url}/trpc/user.updateMyInfo`,
    { ...auth, 'content-type': 'application/json' },
    body,
  );
  row(
    `patch of 90,000 unknown keys (${mb(body.length)})`,
    `${unknown.status}, ${unknown.bytes} B`,
    performance.now() - t0,
  );

  // 4. Sign-in guesses at one account, then bad bearer tokens, as fast as one client goes.
  for (const [what, send] of [
    [
      'auth.signIn guesses, 2 s',
      () =>
        fetch(`${server.url}/trpc/auth.signIn`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ account: 'alice', token: `guess-${Math.random()}` }),
        }),
    ],
    [
      'wrong bearer tokens, 2 s',
      () =>
        fetch(`${server.url}/trpc/user.getMyInfo`, {
          headers: { authorization: `Bearer g${Math.random()}` },
        }),
    ],
  ] as const) {
    const counts = new Map<number, number>();
    t0 = performance.now();
    while (performance.now() - t0 < 2000) {
      const res = await send();
      await res.body?.cancel();
      counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
    }
    row(what, [...counts].map(([s, n]) => `${n}x ${s}`).join(', '), performance.now() - t0);
  }
  await server.close();

  // 5. Redis stops answering (SIGSTOP): time to the 503.
  const redisPort = 6390 + Math.floor(Math.random() * 10);
  const child = spawn(
    'redis-server',
    ['--port', String(redisPort), '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const stopUrl = `redis://127.0.0.1:${redisPort}/1`;
  const seeded = createDb({ url: stopUrl });
  const s2 = await seedDemoData(seeded, 0);
  if (!s2) throw new Error('the stopped Redis was seeded before');
  seeded.redis.disconnect();
  const stopped = await startServer({
    port: 0,
    host: '127.0.0.1',
    redisUrl: stopUrl,
    adminSecret: ADMIN,
    logger: createLogger('silent'),
  });
  const token = s2.demo[0]!.token;
  process.kill(child.pid!, 'SIGSTOP');
  t0 = performance.now();
  const res = await fetch(`${stopped.url}/trpc/user.getMyInfo`, {
    headers: { authorization: `Bearer ${token}` },
  });
  row(
    'getMyInfo while Redis is SIGSTOPped',
    `${res.status} ${JSON.stringify(((await res.json()) as { error?: { message: string } }).error?.message)}`,
    performance.now() - t0,
  );
  process.kill(child.pid!, 'SIGCONT');
  t0 = performance.now();
  for (;;) {
    const ok = await fetch(`${stopped.url}/trpc/user.getMyInfo`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await ok.body?.cancel();
    if (ok.status === 200) break;
  }
  row('first 200 after SIGCONT', '200', performance.now() - t0);
  await stopped.close();
  child.kill('SIGTERM');
  await redis.release();

  const width = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(width[i]!)).join('  |  '));
}

await main();
