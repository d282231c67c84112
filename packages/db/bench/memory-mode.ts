/**
 * Memory-mode benchmark: the store on ioredis-mock as installed (patched by
 * patches/ioredis-mock+8.13.1.patch) next to the same ioredis-mock with that patch reversed, in
 * the same run, rounds alternating. The unpatched copy is made under
 * node_modules/.cache/namecard-unpatched-ioredis-mock (`patch -R` of the patch file).
 *
 * Per variant: seeding 2,000 users as the server does at start (seedGeneratedUsers: one account at
 * a time, yielding between them, then the friendships in one pipeline) with the event loop's delay
 * meanwhile (what a /healthz request waits at most), then updateProfile at concurrency 16
 * (writes/s, and CPU time per write, which the shared machine's noise disturbs less), and a
 * directory page.
 *
 *   npm run bench:memory -w @namecard/db        (NAMECARD_BENCH_OPS writes per round, 1500)
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  createDb,
  MEMORY_LOG_MAXLEN,
  newMemoryName,
  searchDirectory,
  seedGeneratedUsers,
  updateProfile,
  type Db,
  type Redis,
} from '../src/index';
import { reportRows } from './report';
import { printTable, timeOps } from './table';

const USERS = 2000;
const OPS = Number(process.env.NAMECARD_BENCH_OPS ?? 1500);
const CONCURRENCY = 16;
const ROUNDS = 2;

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const patchFile = join(root, 'patches/ioredis-mock+8.13.1.patch');

type MockClass = new (options: object) => Redis;

/** ioredis-mock with our patch reversed, loaded from a copy (its requires resolve to ours). */
function loadUnpatchedMock(): MockClass {
  const installed = dirname(require.resolve('ioredis-mock/package.json'));
  const cache = join(root, 'node_modules/.cache/namecard-unpatched-ioredis-mock');
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(join(cache, 'node_modules'), { recursive: true });
  cpSync(installed, join(cache, 'node_modules/ioredis-mock'), { recursive: true });
  // GNU patch rather than git apply: inside this repository git apply skips node_modules paths.
  execFileSync('patch', ['-R', '-p1', '-s', '-d', cache, '-i', patchFile], { stdio: 'inherit' });
  return require(join(cache, 'node_modules/ioredis-mock')) as MockClass;
}

const isPatched = (redis: Redis) =>
  (redis as unknown as { _scriptVm?: object })._scriptVm !== undefined;

let port = 47000;
const raws: {
  variant: 'patched' | 'unpatched';
  seedMs: number;
  loopP99Ms: number;
  writesPerSecond: number;
  cpuUsPerWrite: number;
  searchMs: number;
}[] = [];
function openDb(variant: 'patched' | 'unpatched', Unpatched: MockClass): Db {
  if (variant === 'patched') return createDb({ memoryName: newMemoryName() });
  const redis = new Unpatched({ host: 'namecard.bench', port: port++, lazyConnect: false });
  return { redis, mode: 'memory', logMaxLen: MEMORY_LOG_MAXLEN };
}

/** The server's memory-mode seeding (seedGeneratedUsers), and how long the event loop stalled. */
async function seed(db: Db) {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const started = performance.now();
  await seedGeneratedUsers(db, USERS);
  const ms = performance.now() - started;
  await setTimeout(5); // lets the histogram take the sample that ends the last stall
  loop.disable();
  return { ms, p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 };
}

async function round(variant: 'patched' | 'unpatched', Unpatched: MockClass) {
  const db = openDb(variant, Unpatched);
  const seeded = await seed(db);
  const account = (i: number) => `user${String((i % USERS) + 1).padStart(4, '0')}`;
  await timeOps(100, CONCURRENCY, (i) => updateProfile(db, account(i), { sign: `w${i}` }));
  const cpu = process.cpuUsage();
  const ms = await timeOps(OPS, CONCURRENCY, (i) =>
    updateProfile(db, account(i), { sign: `s${i}`, nick: `Bench User ${i}` }),
  );
  const used = process.cpuUsage(cpu);
  const searches = 50;
  const searchMs = await timeOps(searches, 4, (i) =>
    searchDirectory(db, `bench user ${i % 10}`, 20),
  );
  const patched = isPatched(db.redis);
  db.redis.disconnect();
  if (patched !== (variant === 'patched')) {
    throw new Error(`the ${variant} run's ioredis-mock is ${patched ? '' : 'not '}patched`);
  }
  const raw = {
    seedMs: seeded.ms,
    loopP99Ms: seeded.p99Ms,
    writesPerSecond: (OPS / ms) * 1000,
    cpuUsPerWrite: (used.user + used.system) / OPS,
    searchMs: searchMs / searches,
  };
  raws.push({ variant, ...raw });
  return {
    variant,
    'seed 2,000 users (s)': Number((seeded.ms / 1000).toFixed(2)),
    'loop delay while seeding p99 / max (ms)': `${seeded.p99Ms.toFixed(1)} / ${seeded.maxMs.toFixed(0)}`,
    'updateProfile writes/s': Math.round((OPS / ms) * 1000),
    'CPU µs/write': Math.round((used.user + used.system) / OPS),
    'searchDirectory page (ms)': Number((searchMs / searches).toFixed(2)),
  };
}

async function main() {
  if (!existsSync(patchFile)) throw new Error(`${patchFile} is missing`);
  const Unpatched = loadUnpatchedMock();
  const rows: Awaited<ReturnType<typeof round>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order, so drift in the machine's load hits both alike.
    const order =
      r % 2 === 0 ? (['unpatched', 'patched'] as const) : (['patched', 'unpatched'] as const);
    for (const variant of order) rows.push(await round(variant, Unpatched));
  }
  printTable(
    `Memory mode (ioredis-mock 8.13.1, unpatched vs patched): ${USERS} users, ${OPS} writes per round at concurrency ${CONCURRENCY}`,
    rows,
  );
  const mean = (variant: string, field: 'updateProfile writes/s' | 'CPU µs/write') => {
    const of = rows.filter((row) => row.variant === variant);
    return of.reduce((sum, row) => sum + row[field], 0) / of.length;
  };
  const avg = (variant: string, field: Exclude<keyof (typeof raws)[number], 'variant'>) => {
    const of = raws.filter((r) => r.variant === variant);
    return of.reduce((sum, r) => sum + r[field], 0) / of.length;
  };
  const row = (
    what: string,
    field: Exclude<keyof (typeof raws)[number], 'variant'>,
    format: (n: number) => string,
    better: 'higher' | 'lower',
  ) => {
    const [patched, unpatched] = [avg('patched', field), avg('unpatched', field)];
    return {
      suite: 'memory-mode',
      case: `ioredis-mock patched: ${what}`,
      namecard: format(patched),
      bare: `${format(unpatched)} (unpatched)`,
      ratio: Number((patched / unpatched).toFixed(2)),
      better,
      values: { namecard: patched, bare: unpatched },
    };
  };
  reportRows([
    row('seed 2,000 users', 'seedMs', (n) => `${(n / 1000).toFixed(1)} s`, 'lower'),
    row('event-loop delay p99 while seeding', 'loopP99Ms', (n) => `${n.toFixed(1)} ms`, 'lower'),
    row(
      `updateProfile @${CONCURRENCY}`,
      'writesPerSecond',
      (n) => `${Math.round(n)} writes/s`,
      'higher',
    ),
    row('CPU per write', 'cpuUsPerWrite', (n) => `${Math.round(n)} µs`, 'lower'),
    row('directory page of 20', 'searchMs', (n) => `${n.toFixed(2)} ms`, 'lower'),
  ]);
  console.log(
    `patched / unpatched: ${(mean('patched', 'updateProfile writes/s') / mean('unpatched', 'updateProfile writes/s')).toFixed(1)}x writes/s, ` +
      `${(mean('unpatched', 'CPU µs/write') / mean('patched', 'CPU µs/write')).toFixed(1)}x less CPU per write`,
  );
}

await main();
