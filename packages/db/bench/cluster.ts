/**
 * Cluster benchmark: the same store code on one Redis (1 shard) and on a Redis Cluster of 3
 * masters + 3 replicas, both of this run's own, measured in the same run:
 *
 * - profile writes/s and Redis CPU µs per write (used_cpu_user + used_cpu_sys of every master,
 *   before and after, divided by the writes);
 * - how evenly the keys spread over the masters (each master's DBSIZE against the mean);
 * - getUsers(150) and a search page, p50/p99.
 *
 * This machine has 2 cores shared by the client, 3 masters and 3 replicas: a cluster cannot
 * outrun one Redis here (the client is the bottleneck); the CPU per write is what projects
 * (writes/s per shard ≈ 1e6 / µs per write at one full core, times the masters).
 *
 *   npx tsx packages/db/bench/cluster.ts
 */
import { type Cluster } from 'ioredis';
import {
  closeDb,
  createAccount,
  createDb,
  getProfilesAs,
  searchDirectory,
  updateProfile,
  type Db,
  type Redis,
} from '../src/index';
import { startOwnedCluster, startOwnedRedis } from '../src/testing';
import { reportRows, type BenchRow } from './report';
import { inBatches, percentile, printTable, timeOps } from './table';

const USERS = 3000;
const WRITES = Number(process.env.NAMECARD_BENCH_OPS ?? 6000);
const READS = 400;
const CONCURRENCY = 32;

async function seed(db: Db) {
  await inBatches(USERS, 200, (i) =>
    createAccount(db, {
      account: `cb${i}`,
      profile: { nick: `Cluster Bench ${i % 50} ${i}`, sign: 'hello' },
    }),
  );
}

/** The Redis servers behind a Db: the masters of a cluster, or the one client. */
const servers = (db: Db): Redis[] =>
  db.cluster ? (db.redis as unknown as Cluster).nodes('master') : [db.redis];

async function cpuSeconds(db: Db): Promise<number> {
  let total = 0;
  for (const redis of servers(db)) {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    total += field('used_cpu_user') + field('used_cpu_sys');
  }
  return total;
}

async function latencies(count: number, fn: (i: number) => Promise<unknown>) {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await fn(i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

interface Figures {
  writesPerSecond: number;
  cpuMicrosPerWrite: number;
  getUsers: { p50: number; p99: number };
  search: { p50: number; p99: number };
  spread: number[];
}

async function measure(db: Db): Promise<Figures> {
  await seed(db);
  const account = (i: number) => `cb${(i * 7919) % USERS}`;
  await timeOps(500, CONCURRENCY, (i) => updateProfile(db, account(i), { sign: `w${i}` }));
  const cpuBefore = await cpuSeconds(db);
  const ms = await timeOps(WRITES, CONCURRENCY, (i) =>
    updateProfile(db, account(i), { sign: `s${i}` }),
  );
  const cpu = (await cpuSeconds(db)) - cpuBefore;
  const batch = (i: number) => Array.from({ length: 150 }, (_, k) => account(i * 150 + k));
  await latencies(50, (i) => getProfilesAs(db, 'cb1', batch(i)));
  const getUsers = await latencies(READS, (i) => getProfilesAs(db, 'cb1', batch(i)));
  await latencies(50, (i) => searchDirectory(db, `cluster bench ${i % 50}`, 20));
  const search = await latencies(READS, (i) => searchDirectory(db, `cluster bench ${i % 50}`, 20));
  const spread = await Promise.all(servers(db).map((redis) => redis.dbsize()));
  return {
    writesPerSecond: (WRITES / ms) * 1000,
    cpuMicrosPerWrite: (cpu * 1e6) / WRITES,
    getUsers,
    search,
    spread,
  };
}

async function main() {
  const [single, cluster] = await Promise.all([startOwnedRedis(), startOwnedCluster()]);
  try {
    const one = createDb({ url: `${single.baseUrl}/0` });
    const three = createDb({ clusterNodes: cluster.nodes });
    let a: Figures;
    let b: Figures;
    try {
      a = await measure(one);
      b = await measure(three);
    } finally {
      await Promise.all([closeDb(one), closeDb(three)]);
    }
    const mean = b.spread.reduce((x, y) => x + y, 0) / b.spread.length;
    const worst = Math.max(...b.spread.map((n) => Math.abs(n - mean) / mean));
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    const rows: BenchRow[] = [
      {
        suite: 'cluster',
        case: 'updateProfile writes/s @32 in flight: 3-shard cluster vs 1 Redis',
        namecard: `${Math.round(b.writesPerSecond).toLocaleString('en')} writes/s`,
        bare: `${Math.round(a.writesPerSecond).toLocaleString('en')} writes/s`,
        ratio: b.writesPerSecond / a.writesPerSecond,
        better: 'higher',
        values: { cluster: b.writesPerSecond, single: a.writesPerSecond },
        notes: '2 shared cores run the client and all 6 nodes: the client bounds both',
      },
      {
        suite: 'cluster',
        case: 'Redis CPU per write (all masters): 3-shard cluster vs 1 Redis',
        namecard: `${b.cpuMicrosPerWrite.toFixed(1)} µs`,
        bare: `${a.cpuMicrosPerWrite.toFixed(1)} µs`,
        ratio: b.cpuMicrosPerWrite / a.cpuMicrosPerWrite,
        better: 'lower',
        values: { cluster: b.cpuMicrosPerWrite, single: a.cpuMicrosPerWrite },
        notes: `projects to about ${Math.round(3e6 / b.cpuMicrosPerWrite).toLocaleString('en')} writes/s on 3 masters at one core each (${Math.round(1e6 / a.cpuMicrosPerWrite).toLocaleString('en')} on one)`,
      },
      {
        suite: 'cluster',
        case: `key spread over 3 masters (${USERS} accounts): worst master vs mean`,
        namecard: `${(worst * 100).toFixed(1)} % off (${b.spread.join(' / ')} keys)`,
        bare: '0 % (even)',
        ratio: null,
        better: 'lower',
        values: { worstDeviation: worst },
      },
      {
        suite: 'cluster',
        case: 'getUsers(150) p50 / p99: cluster vs 1 Redis',
        namecard: `${ms(b.getUsers.p50)} / ${ms(b.getUsers.p99)}`,
        bare: `${ms(a.getUsers.p50)} / ${ms(a.getUsers.p99)}`,
        ratio: b.getUsers.p50 / a.getUsers.p50,
        better: 'lower',
        values: { ...prefixed('cluster', b.getUsers), ...prefixed('single', a.getUsers) },
      },
      {
        suite: 'cluster',
        case: 'search page of 20 p50 / p99: cluster vs 1 Redis',
        namecard: `${ms(b.search.p50)} / ${ms(b.search.p99)}`,
        bare: `${ms(a.search.p50)} / ${ms(a.search.p99)}`,
        ratio: b.search.p50 / a.search.p50,
        better: 'lower',
        values: { ...prefixed('cluster', b.search), ...prefixed('single', a.search) },
      },
    ];
    printTable(
      'Redis Cluster (3 masters + 3 replicas) against one Redis, same run',
      rows.map((r) => ({
        case: r.case,
        cluster: r.namecard,
        'one Redis': r.bare,
        notes: r.notes ?? '',
      })),
    );
    reportRows(rows);
  } finally {
    await Promise.all([single.stop(), cluster.stop()]);
  }
}

const prefixed = (name: string, figures: { p50: number; p99: number }) => ({
  [`${name}P50`]: figures.p50,
  [`${name}P99`]: figures.p99,
});

await main();
