/**
 * Per-request overhead benchmark: Namecard's API next to a bare `node:http` + ioredis server
 * (bench/requests-server.ts) doing the Redis work a minimal implementation of the same call
 * needs, measured in the same run against the same redis-server, rounds alternating. Both
 * servers run in child processes, bundled as the production server is (build.mjs: esbuild; not
 * under tsx, whose name helper costs every closure a property store); the load comes from a
 * third one (autocannon, a load generator made for this), so the servers' figures do not include
 * the client's work. Each figure comes with the CPU time per call of the server and of Redis
 * over its rounds (the server's process.cpuUsage, Redis's INFO cpu).
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
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createAccount, createDb } from '@namecard/db';
import { benchRedis } from '@namecard/db/testing';
import { reportRows, type BenchRow } from '@namecard/db/bench-report';

const SELF = fileURLToPath(import.meta.url);
const serverDir = fileURLToPath(new URL('..', import.meta.url));
const serverScript = 'dist/bench/requests-server.js';
const ADMIN = 'bench-admin-secret-0123456789';
const SECONDS = Number(process.env.NAMECARD_BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.NAMECARD_BENCH_ROUNDS ?? 2);
const SEARCH_USERS = Number(process.env.NAMECARD_BENCH_SEARCH_USERS ?? 100_000);
const TOKENS = 16;

// ---------------------------------------------------------------------------------------------
// Child processes: a server (Namecard or bare) and the load generator.

type Role = 'namecard' | 'bare' | 'load';

/**
 * Starts a child in `role` (a server: the bundled requests-server.js; the load generator: this
 * file under tsx); resolves once it says `ready` (with its port).
 */
async function spawnChild(
  role: Role,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; port: number; spawnedAt: number }> {
  const spawnedAt = performance.now();
  const server = role !== 'load';
  const child = fork(server ? serverScript : SELF, [role], {
    cwd: serverDir,
    env: { ...process.env, BENCH_ADMIN_SECRET: ADMIN, ...env },
    execArgv: server ? execArgv : ['--import', 'tsx', ...execArgv],
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

/** The load generator's side (the servers' is bench/requests-server.ts). */
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
  execFileSync(process.execPath, ['build.mjs', 'bench/requests-server.ts', serverScript], {
    cwd: serverDir,
    stdio: 'ignore',
  });
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

  /** A server child's CPU time so far (user + system), in µs. */
  const cpuOf = async (child: ChildProcess): Promise<number> => {
    child.send('cpu');
    for (;;) {
      const [m] = (await once(child, 'message')) as [{ cpu?: NodeJS.CpuUsage }];
      if (m.cpu) return m.cpu.user + m.cpu.system;
    }
  };
  /** Redis's CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys), in µs. */
  const redisCpu = async (): Promise<number> => {
    const info = await db.redis.info('cpu');
    const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
    return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
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
    sides: [Side, Side];
    unit: 'req/s' | 'writes/s';
    /** Compare p99 (lower is better) rather than throughput. */
    byLatency?: boolean;
    bareLabel?: string;
    notes?: string;
  }
  interface Side {
    url: string;
    tokens: string[];
    child: ChildProcess;
  }
  const nc: Side = { url: `http://127.0.0.1:${namecard.port}`, tokens, child: namecard.child };
  const bareSide: Side = { url: `http://127.0.0.1:${bare.port}`, tokens, child: bare.child };
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
      sides: [{ url: memoryUrl, tokens: memoryTokens, child: memory.child }, nc],
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
    // CPU time of each side's server and of Redis over its rounds, and the requests served.
    const cpu = [0, 1].map(() => ({ serverUs: 0, redisUs: 0, requests: 0 }));
    const measuredRound = async (side: number) => {
      const [server0, redis0] = [await cpuOf(c.sides[side]!.child), await redisCpu()];
      const result = await runLoad(job(side, SECONDS));
      const [server1, redis1] = [await cpuOf(c.sides[side]!.child), await redisCpu()];
      cpu[side]!.serverUs += server1 - server0;
      cpu[side]!.redisUs += redis1 - redis0;
      cpu[side]!.requests += result.rps * SECONDS;
      runs[side]!.push(result);
    };
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
      for (const side of order) await measuredRound(side);
    }
    const sum = (rs: LoadResult[]) => ({
      rps: rs.reduce((s, r) => s + r.rps, 0) / rs.length,
      p50: Math.max(...rs.map((r) => r.p50)),
      p99: Math.max(...rs.map((r) => r.p99)),
    });
    const [a, b] = [sum(runs[0]), sum(runs[1])];
    const perRequest = cpu.map((x) => ({
      serverUs: x.serverUs / x.requests,
      redisUs: x.redisUs / x.requests,
    }));
    const figure = (s: typeof a, side: number) =>
      `${fmt(s.rps)} ${c.unit}, p50 ${msFmt(s.p50)} ms, p99 ${msFmt(s.p99)} ms; CPU per call: server ${fmt(perRequest[side]!.serverUs)} µs, Redis ${fmt(perRequest[side]!.redisUs)} µs`;
    const ratio = c.byLatency ? a.p99 / b.p99 : a.rps / b.rps;
    rows.push({
      suite: 'requests',
      case: c.name,
      namecard: figure(a, 0),
      bare: `${figure(b, 1)}${c.bareLabel ? ` (${c.bareLabel})` : ''}`,
      ratio: Number(ratio.toFixed(2)),
      better: c.byLatency ? 'lower' : 'higher',
      values: {
        namecardRps: a.rps,
        namecardP50: a.p50,
        namecardP99: a.p99,
        bareRps: b.rps,
        bareP50: b.p50,
        bareP99: b.p99,
        namecardServerCpuUs: perRequest[0]!.serverUs,
        namecardRedisCpuUs: perRequest[0]!.redisUs,
        bareServerCpuUs: perRequest[1]!.serverUs,
        bareRedisCpuUs: perRequest[1]!.redisUs,
      },
      ...(c.notes ? { notes: c.notes } : {}),
    });
    printed.push({
      case: c.name,
      namecard: figure(a, 0),
      bare: figure(b, 1),
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
      notes: 'both started the same way (node, bundled as production runs it)',
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
