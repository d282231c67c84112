/**
 * Per-request overhead benchmark: Namecard's API next to a bare `node:http` + ioredis server
 * (below, in this file) doing the Redis work a minimal implementation of the same call needs,
 * measured in the same run against the same redis-server, rounds alternating. Both servers run
 * in child processes; the load comes from a third one (autocannon, a load generator made for
 * this), so the servers' figures do not include the client's work.
 *
 *   npm run bench -w @namecard/server            (this and the other server benches)
 *   tsx bench/requests.ts                          (this one; NAMECARD_BENCH_SECONDS=4 per round)
 *   NAMECARD_BENCH_PROF=/tmp/prof tsx bench/requests.ts   (CPU profiles of the Namecard server)
 *
 * The bare server authenticates every call the minimal way (GET of the token's index entry),
 * then: getMyInfo HGETALL; updateMyInfo HSET + PUBLISH in one pipeline; getUsers(150) HGETALL +
 * SISMEMBER per account in one pipeline; search ZRANGEBYLEX + 20 HGETALL in one pipeline.
 * Namecard does more on a write (the write id, the directory entry, the event id, the global and
 * the account's change log, in one Lua step) and checks the token against the account's auth hash.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import {
  ALL_PARTITIONS,
  createAccount,
  createDb,
  keys,
  normalizeForSearch,
  PRIVATE_FIELDS,
} from '@namecard/db';
import { benchRedis } from '@namecard/db/testing';
import { reportRows, type BenchRow } from '@namecard/db/bench-report';
import { startServer } from '../src/app';
import { createLogger } from '../src/logger';

const SELF = fileURLToPath(import.meta.url);
const ADMIN = 'bench-admin-secret-0123456789';
const SECONDS = Number(process.env.NAMECARD_BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.NAMECARD_BENCH_ROUNDS ?? 2);
const SEARCH_USERS = Number(process.env.NAMECARD_BENCH_SEARCH_USERS ?? 100_000);
const TOKENS = 16;

// ---------------------------------------------------------------------------------------------
// The bare server: node:http + ioredis, nothing else.

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function bareServer(redisUrl: string) {
  const redis = new Redis(redisUrl);
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const input = (url: string): unknown =>
    JSON.parse(decodeURIComponent(new URL(url, 'http://x').searchParams.get('input') ?? 'null'));
  const readBody = async (req: IncomingMessage) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    return body;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    if (path === '/healthz') return send(res, 200, { status: (await redis.ping()) && 'ok' });
    const token = (req.headers.authorization ?? '').slice('Bearer '.length);
    // The token index holds `<account> <ms>`.
    const account = (await redis.get(keys.token(sha256(token))))?.split(' ')[0];
    if (!account) return send(res, 401, { error: 'unknown token' });
    switch (path) {
      case '/trpc/user.getMyInfo':
        return send(res, 200, { result: { data: await redis.hgetall(keys.profile(account)) } });
      case '/trpc/user.updateMyInfo': {
        const patch = JSON.parse(await readBody(req)) as Record<string, string>;
        const fields = { ...patch, updateTime: String(Date.now()) };
        await redis
          .pipeline()
          .hset(keys.profile(account), fields)
          .publish(keys.channel(account), JSON.stringify({ account, fields }))
          .exec();
        return send(res, 200, { result: { data: { account, ...fields } } });
      }
      case '/trpc/user.getUsers': {
        const { accounts } = input(url) as { accounts: string[] };
        const p = redis.pipeline();
        for (const a of accounts) p.hgetall(keys.profile(a)).sismember(keys.friends(a), account);
        const replies = (await p.exec()) ?? [];
        const users = [];
        for (let i = 0; i < accounts.length; i++) {
          const profile = replies[2 * i]![1] as Record<string, string>;
          if (!profile.createTime) continue;
          if (accounts[i] !== account && replies[2 * i + 1]![1] !== 1) {
            for (const f of PRIVATE_FIELDS) delete profile[f];
          }
          users.push({ account: accounts[i], ...profile });
        }
        return send(res, 200, { result: { data: users } });
      }
      case '/trpc/user.search': {
        const { query, limit = 20 } = input(url) as { query: string; limit?: number };
        const hex = Buffer.from(normalizeForSearch(query)).toString('hex');
        // The directory is split into PARTITIONS sorted sets: the first `limit` of each, merged.
        const lists = await redis
          .pipeline(
            ALL_PARTITIONS.map((part) => [
              'zrangebylex',
              keys.directory(part),
              `[${hex}`,
              `(${hex}g`,
              'LIMIT',
              '0',
              String(limit),
            ]),
          )
          .exec();
        const members = (lists ?? [])
          .flatMap(([, list]) => list as string[])
          .sort()
          .slice(0, limit);
        const found = members.map((m) => m.slice(m.indexOf('.', 0) + 3));
        const p = redis.pipeline();
        for (const a of found) p.hgetall(keys.profile(a));
        const replies = (await p.exec()) ?? [];
        const users = replies.map(([, profile], i) => {
          const fields = profile as Record<string, string>;
          for (const f of PRIVATE_FIELDS) delete fields[f];
          return { account: found[i], ...fields };
        });
        return send(res, 200, { result: { data: { users } } });
      }
      default:
        return send(res, 404, { error: 'not found' });
    }
  };
  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: String(error) }));
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes: a server (Namecard or bare) and the load generator.

type Role = 'namecard' | 'bare' | 'load';

/** Starts this file as a child in `role`; resolves once it says `ready` (with its port). */
async function spawnChild(
  role: Role,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; port: number; spawnedAt: number }> {
  const spawnedAt = performance.now();
  const child = fork(SELF, [role], {
    env: { ...process.env, ...env },
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  // The server's log lines go to a pipe that is read (as a log shipper would), not to a terminal.
  child.stdout!.on('data', () => undefined);
  const [message] = (await once(child, 'message')) as [{ ready: number }];
  return { child, port: message.ready, spawnedAt };
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

async function childMain(role: Role) {
  const send = (message: unknown) => process.send!(message);
  if (role === 'load') {
    const { default: autocannon } = await import('autocannon');
    send({ ready: 0 });
    process.on('message', (job: LoadJob) => {
      let n = 0;
      const instance = autocannon(
        {
          url: job.url,
          connections: job.connections,
          duration: job.seconds,
          requests: [
            {
              method: job.method,
              setupRequest: (request) => {
                const i = n++;
                const token = job.tokens[i % job.tokens.length]!;
                const headers = { ...request.headers, authorization: `Bearer ${token}` };
                if (job.method === 'POST') {
                  return {
                    ...request,
                    path: job.paths[0]!,
                    headers: { ...headers, 'content-type': 'application/json' },
                    body: JSON.stringify({ sign: `bench ${i}` }),
                  };
                }
                return { ...request, path: job.paths[i % job.paths.length]!, headers };
              },
            },
          ],
        },
        (error, result) => {
          if (error) send({ error: String(error) });
          else {
            send({
              rps: result.requests.total / job.seconds,
              p50: result.latency.p50,
              p99: result.latency.p99,
              non2xx: result.non2xx,
              errors: result.errors + result.timeouts,
            } satisfies LoadResult);
          }
        },
      );
      void instance;
    });
    return;
  }
  const redisUrl = process.env.BENCH_REDIS_URL;
  if (role === 'bare') {
    const server = bareServer(redisUrl!);
    server.listen(0, '127.0.0.1', () => send({ ready: (server.address() as AddressInfo).port }));
    process.on('SIGTERM', () => process.exit(0));
    return;
  }
  const running = await startServer({
    port: 0,
    host: '127.0.0.1',
    redisUrl: redisUrl || undefined,
    adminSecret: ADMIN,
    seedUsers: Number(process.env.BENCH_SEED_USERS ?? 0),
    logger: createLogger('info'),
  });
  void running.seeding.then(() => send({ seeded: true }));
  send({ ready: running.port });
  process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
}

interface LoadJob {
  url: string;
  connections: number;
  seconds: number;
  method: 'GET' | 'POST';
  paths: string[];
  tokens: string[];
}
interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

// ---------------------------------------------------------------------------------------------
// The driver.

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const msFmt = (n: number) => (n >= 10 ? n.toFixed(0) : n.toFixed(1));

async function main() {
  const redis = await benchRedis(7);
  const db = createDb({ url: redis.url });
  await db.redis.flushdb();
  const load = await spawnChild('load', {});
  const runLoad = async (job: LoadJob): Promise<LoadResult> => {
    load.child.send(job);
    const [result] = (await once(load.child, 'message')) as [LoadResult | { error: string }];
    if ('error' in result) throw new Error(result.error);
    if (result.non2xx > 0 || result.errors > 0) {
      throw new Error(`${job.paths[0]}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    }
    return result;
  };

  // Data: TOKENS accounts to call as, 150 more for getUsers, and SEARCH_USERS for the directory.
  const started = performance.now();
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    const made = await createAccount(db, {
      account: `caller${i}`,
      profile: { nick: `Caller ${i}`, email: `c${i}@example.com`, sign: 'hello' },
    });
    tokens.push(made.token);
  }
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < SEARCH_USERS; i++) {
    batch.push(
      createAccount(db, {
        account: `u${i}`,
        profile: {
          nick: `User ${i}`,
          sign: 'Hello from the directory',
          email: `u${i}@example.com`,
          avatar: `https://example.com/avatars/${i}.png`,
        },
      }),
    );
    if (batch.length === 500) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  console.log(`seeded ${SEARCH_USERS + TOKENS} accounts in ${fmt(performance.now() - started)} ms`);

  const prof = process.env.NAMECARD_BENCH_PROF;
  const profile = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const namecard = await spawnChild('namecard', { BENCH_REDIS_URL: redis.url }, profile);
  const bare = await spawnChild('bare', { BENCH_REDIS_URL: redis.url });
  const memory = await spawnChild('namecard', { BENCH_REDIS_URL: '' }, profile);

  // Memory mode: as many accounts to write as as in Redis mode, made through the admin API (its
  // data lives in that process).
  const memoryUrl = `http://127.0.0.1:${memory.port}`;
  const memoryTokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    const created = await fetch(`${memoryUrl}/trpc/admin.createAccount`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namecard-admin': ADMIN },
      body: JSON.stringify({ account: `memwriter${i}` }),
    });
    const made = (await created.json()) as { result: { data: { token: string } } };
    memoryTokens.push(made.result.data.token);
  }

  const getUsersPath = `/trpc/user.getUsers?input=${encodeURIComponent(
    JSON.stringify({ accounts: Array.from({ length: 150 }, (_, i) => `u${i * 7}`) }),
  )}`;
  const searchPaths = Array.from(
    { length: 200 },
    (_, i) =>
      `/trpc/user.search?input=${encodeURIComponent(JSON.stringify({ query: `user ${(i * 37) % 1000}` }))}`,
  );
  interface Case {
    name: string;
    connections: number;
    method: 'GET' | 'POST';
    paths: string[];
    /** What the bare side is: the bare server, or Namecard in Redis mode (for memory mode). */
    sides: [{ url: string; tokens: string[] }, { url: string; tokens: string[] }];
    unit: 'req/s' | 'writes/s';
    /** Compare p99 (lower is better) rather than throughput. */
    byLatency?: boolean;
    bareLabel?: string;
    notes?: string;
  }
  const nc = { url: `http://127.0.0.1:${namecard.port}`, tokens };
  const bareSide = { url: `http://127.0.0.1:${bare.port}`, tokens };
  const cases: Case[] = [
    {
      name: 'user.getMyInfo @32 connections',
      connections: 32,
      method: 'GET',
      paths: ['/trpc/user.getMyInfo'],
      sides: [nc, bareSide],
      unit: 'req/s',
    },
    {
      name: 'user.updateMyInfo @16 connections',
      connections: 16,
      method: 'POST',
      paths: ['/trpc/user.updateMyInfo'],
      sides: [nc, bareSide],
      unit: 'writes/s',
      notes:
        'bare: HSET + PUBLISH; Namecard also keeps the write id, directory entry, event id and both change logs (one Lua step)',
    },
    {
      name: 'user.getUsers(150) @32 connections',
      connections: 32,
      method: 'GET',
      paths: [getUsersPath],
      sides: [nc, bareSide],
      unit: 'req/s',
    },
    {
      name: `user.search page of 20 over ${fmt(SEARCH_USERS)} users @8`,
      connections: 8,
      method: 'GET',
      paths: searchPaths,
      sides: [nc, bareSide],
      unit: 'req/s',
      byLatency: true,
      notes: 'bare: ZRANGEBYLEX + 20 HGETALL in one pipeline',
    },
    {
      name: 'memory mode user.updateMyInfo @16 (target >= 1,000 writes/s)',
      connections: 16,
      method: 'POST',
      paths: ['/trpc/user.updateMyInfo'],
      sides: [{ url: memoryUrl, tokens: memoryTokens }, nc],
      unit: 'writes/s',
      bareLabel: 'Namecard, Redis mode',
    },
  ];

  const rows: BenchRow[] = [];
  const printed: Record<string, string | number>[] = [];
  // NAMECARD_BENCH_CASES=0,2 runs only those (by position), e.g. while profiling one.
  const only = process.env.NAMECARD_BENCH_CASES?.split(',').map(Number);
  for (const [index, c] of cases.entries()) {
    if (only && !only.includes(index)) continue;
    const runs: [LoadResult[], LoadResult[]] = [[], []];
    const job = (side: number, seconds: number): LoadJob => ({
      url: c.sides[side]!.url,
      connections: c.connections,
      seconds,
      method: c.method,
      paths: c.paths,
      tokens: c.sides[side]!.tokens,
    });
    // Warm both up (JIT, connections, script cache), then alternate rounds.
    await runLoad(job(0, 1));
    await runLoad(job(1, 1));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const side of order) runs[side]!.push(await runLoad(job(side, SECONDS)));
    }
    const sum = (rs: LoadResult[]) => ({
      rps: rs.reduce((s, r) => s + r.rps, 0) / rs.length,
      p50: Math.max(...rs.map((r) => r.p50)),
      p99: Math.max(...rs.map((r) => r.p99)),
    });
    const [a, b] = [sum(runs[0]), sum(runs[1])];
    const figure = (s: typeof a) =>
      `${fmt(s.rps)} ${c.unit}, p50 ${msFmt(s.p50)} ms, p99 ${msFmt(s.p99)} ms`;
    const ratio = c.byLatency ? a.p99 / b.p99 : a.rps / b.rps;
    rows.push({
      suite: 'requests',
      case: c.name,
      namecard: figure(a),
      bare: `${figure(b)}${c.bareLabel ? ` (${c.bareLabel})` : ''}`,
      ratio: Number(ratio.toFixed(2)),
      better: c.byLatency ? 'lower' : 'higher',
      values: {
        namecardRps: a.rps,
        namecardP50: a.p50,
        namecardP99: a.p99,
        bareRps: b.rps,
        bareP50: b.p50,
        bareP99: b.p99,
      },
      ...(c.notes ? { notes: c.notes } : {}),
    });
    printed.push({
      case: c.name,
      namecard: figure(a),
      bare: figure(b),
      ratio: `${ratio.toFixed(2)}${c.byLatency ? ' (p99, lower is better)' : ''}`,
    });
  }
  await stopChild(namecard.child);
  await stopChild(bare.child);
  await stopChild(memory.child);

  // Start-up in memory mode: /healthz from the moment the process is spawned, and its latency
  // while the 2,000 demo users are seeded, next to the bare server started the same way.
  if (!only || only.includes(cases.length)) {
    const health = await startupCase();
    rows.push(...health.rows);
    printed.push(...health.printed);
  }

  await stopChild(load.child);
  db.redis.disconnect();
  await redis.release();

  console.log(
    `\nPer-request overhead: Namecard vs a bare node:http + ioredis server, same run (${ROUNDS} alternating rounds of ${SECONDS} s, load from autocannon in a child process)`,
  );
  console.table(printed);
  reportRows(rows);
}

/** Polls /healthz one request at a time from spawn until `done` resolves. */
async function pollHealth(port: number, spawnedAt: number, done: Promise<unknown>) {
  let firstOk = NaN;
  let stop = false;
  void done.then(() => (stop = true));
  const latencies: number[] = [];
  while (!stop) {
    const t0 = performance.now();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.arrayBuffer();
      if (res.ok) {
        if (Number.isNaN(firstOk)) firstOk = t0 - spawnedAt;
        latencies.push(performance.now() - t0);
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  latencies.sort((x, y) => x - y);
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return {
    firstOk,
    p50: at(0.5),
    p99: at(0.99),
    max: latencies[latencies.length - 1]!,
    n: latencies.length,
  };
}

async function startupCase() {
  // Namecard: ready is sent once it listens; polling starts at spawn in the driver, which waits
  // for the port, so the time to the first answer is spawn -> listening -> first 200.
  const namecardStart = performance.now();
  const namecardChild = spawnChild('namecard', { BENCH_REDIS_URL: '', BENCH_SEED_USERS: '2000' });
  const nc = await namecardChild;
  const seeded = new Promise((resolve) =>
    nc.child.on('message', (m: { seeded?: boolean }) => m.seeded && resolve(true)),
  );
  const ncHealth = await pollHealth(nc.port, namecardStart, seeded);
  const seedMs = performance.now() - namecardStart;
  await stopChild(nc.child);

  const redis = await benchRedis(8);
  const bareStart = performance.now();
  const bare = await spawnChild('bare', { BENCH_REDIS_URL: redis.url });
  const bareHealth = await pollHealth(
    bare.port,
    bareStart,
    new Promise((resolve) => setTimeout(resolve, Math.min(seedMs, 5000))),
  );
  await stopChild(bare.child);
  await redis.release();

  const rows: BenchRow[] = [
    {
      suite: 'requests',
      case: 'memory mode start: spawn -> first /healthz 200 (target <= 2 s)',
      namecard: `${fmt(ncHealth.firstOk)} ms`,
      bare: `${fmt(bareHealth.firstOk)} ms`,
      ratio: Number((ncHealth.firstOk / bareHealth.firstOk).toFixed(2)),
      better: 'lower',
      values: { namecardMs: ncHealth.firstOk, bareMs: bareHealth.firstOk },
      notes: 'both started the same way (node --import tsx, this file)',
    },
    {
      suite: 'requests',
      case: '/healthz while seeding 2,000 demo users in memory mode (target p99 < 50 ms)',
      namecard: `p50 ${msFmt(ncHealth.p50)} ms, p99 ${msFmt(ncHealth.p99)} ms, max ${msFmt(ncHealth.max)} ms (${ncHealth.n} polls, seeded ${fmt(seedMs)} ms after spawn)`,
      bare: `p50 ${msFmt(bareHealth.p50)} ms, p99 ${msFmt(bareHealth.p99)} ms`,
      ratio: Number((ncHealth.p99 / bareHealth.p99).toFixed(2)),
      better: 'lower',
      values: {
        namecardP50: ncHealth.p50,
        namecardP99: ncHealth.p99,
        namecardMax: ncHealth.max,
        bareP50: bareHealth.p50,
        bareP99: bareHealth.p99,
        seededMs: seedMs,
      },
    },
  ];
  return {
    rows,
    printed: rows.map((r) => ({
      case: r.case,
      namecard: r.namecard,
      bare: r.bare,
      ratio: `${r.ratio} (lower is better)`,
    })),
  };
}

const role = process.argv[2] as Role | undefined;
if (role) await childMain(role);
else await main();
