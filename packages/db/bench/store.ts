/**
 * Store benchmark: each Namecard operation next to the bare Redis operation it is built on,
 * measured in the same run against the same server (the machine is shared and noisy, so only the
 * ratios travel). Runs on a real Redis (a redis-server of its own on a spare port, or
 * NAMECARD_BENCH_REDIS_URL, whose database is flushed) and on ioredis-mock (memory mode).
 *
 *   npm run bench -w @namecard/db
 */
import {
  createAccount,
  createDb,
  getProfiles,
  getProfilesAs,
  keys,
  PARTITIONS,
  newMemoryName,
  normalizeForSearch,
  searchDirectory,
  updateProfile,
  viewProfiles,
  type Db,
} from '../src/index';
import { benchRedis, type BenchRedis } from '../src/testing';
import { reportRows, type BenchRow } from './report';
import { inBatches, printTable, timeOps } from './table';

const USERS = 2000;
const OPS = Number(process.env.NAMECARD_BENCH_OPS ?? 3000);
const CONCURRENCY = 16;

async function seed(db: Db) {
  await inBatches(USERS, 100, (i) =>
    createAccount(db, {
      account: `bench${i}`,
      profile: { nick: `Bench User ${i}`, sign: 'hello', email: `b${i}@example.com` },
    }),
  );
}

async function measure(label: string, db: Db) {
  await seed(db);
  const report: BenchRow[] = [];
  const mode = db.mode === 'memory' ? 'memory mode' : 'Redis';
  const rows: Record<string, string | number>[] = [];
  const add = (group: string, name: string, ops: number, ms: number, baselineMs?: number) => {
    const perOp = (ms * 1000) / ops;
    rows.push({
      group,
      operation: name,
      ops,
      'ops/s': Math.round((ops / ms) * 1000),
      'µs/op': Number(perOp.toFixed(1)),
      'x baseline': baselineMs === undefined ? 'baseline' : (ms / baselineMs).toFixed(2),
    });
    return ms;
  };
  const account = (i: number) => `bench${i % USERS}`;
  // Warm up both paths (script cache, JIT, connection) before anything is timed.
  await timeOps(300, CONCURRENCY, (i) => updateProfile(db, account(i), { sign: `w${i}` }));
  await timeOps(300, CONCURRENCY, (i) => db.redis.hset(keys.profile(account(i)), 'sign', `w${i}`));

  /** Baseline and operation alternate over two rounds each, so drift hits both alike. */
  const pair = async (
    group: string,
    ops: number,
    concurrency: number,
    baseline: [string, (i: number) => Promise<unknown>],
    operation: [string, (i: number) => Promise<unknown>],
  ) => {
    const half = Math.ceil(ops / 2);
    let baseMs = 0;
    let opMs = 0;
    for (let round = 0; round < 2; round++) {
      baseMs += await timeOps(half, concurrency, (i) => baseline[1](round * half + i));
      opMs += await timeOps(half, concurrency, (i) => operation[1](round * half + i));
    }
    add(group, baseline[0], half * 2, baseMs);
    add(group, operation[0], half * 2, opMs, baseMs);
    const perOp = (ms: number) => {
      const us = (ms * 1000) / (half * 2);
      return us >= 1000 ? `${(us / 1000).toFixed(2)} ms/op` : `${us.toFixed(0)} µs/op`;
    };
    report.push({
      suite: 'store',
      case: `${mode}: ${operation[0]} @${concurrency}`,
      namecard: perOp(opMs),
      bare: `${perOp(baseMs)} (${baseline[0]})`,
      ratio: Number((opMs / baseMs).toFixed(2)),
      better: 'lower',
      values: {
        namecardUsPerOp: (opMs * 1000) / (half * 2),
        bareUsPerOp: (baseMs * 1000) / (half * 2),
      },
    });
  };

  // Write: HSET of two fields vs updateProfile (fields + updateTime + seq + log + publish + index).
  await pair(
    'write',
    OPS,
    CONCURRENCY,
    [
      'bare HSET 2 fields',
      (i) => db.redis.hset(keys.profile(account(i)), 'sign', `s${i}`, 'nick', `Bench User ${i}`),
    ],
    [
      'updateProfile (nick+sign)',
      (i) => updateProfile(db, account(i), { sign: `s${i}`, nick: `Bench User ${i}` }),
    ],
  );

  // Batch read of 150: pipelined HGETALL vs getProfiles (same, plus parsing and dedup).
  const reads = Math.max(50, Math.round(OPS / 20));
  const batchOf = (i: number) => Array.from({ length: 150 }, (_, k) => account(i * 150 + k));
  await pair(
    'read 150',
    reads,
    4,
    [
      'bare pipelined HGETALL x150',
      async (i) => {
        const p = db.redis.pipeline();
        for (const a of batchOf(i)) p.hgetall(keys.profile(a));
        await p.exec();
      },
    ],
    ['getProfiles(150)', (i) => getProfiles(db, batchOf(i))],
  );

  // A viewer's batch read of 150 (user.getUsers): profiles plus "did the owner add me" in one
  // pipeline, vs the same done as two (profiles, then the friendship checks), as it was.
  const viewer = 'bench-viewer';
  const bareView = async (i: number) => {
    const p = db.redis.pipeline();
    for (const a of batchOf(i)) p.hgetall(keys.profile(a)).sismember(keys.friends(a), viewer);
    await p.exec();
  };
  await pair(
    'view 150',
    reads,
    4,
    ['bare pipelined HGETALL+SISMEMBER x150', bareView],
    ['getProfilesAs(150), one round trip', (i) => getProfilesAs(db, viewer, batchOf(i))],
  );
  await pair(
    'view 150',
    reads,
    4,
    ['bare pipelined HGETALL+SISMEMBER x150', bareView],
    [
      'viewProfiles(getProfiles(150)), two',
      async (i) => viewProfiles(db, viewer, await getProfiles(db, batchOf(i))),
    ],
  );

  // Search: one ZRANGEBYLEX vs a directory page (range + the profiles + dedup of nick/id matches).
  await pair(
    'search',
    reads,
    4,
    [
      'bare ZRANGEBYLEX 20 (same range, one partition)',
      (i) => {
        const hex = Buffer.from(normalizeForSearch(`bench user ${i % 10}`)).toString('hex');
        return db.redis.zrangebylex(
          keys.directory(i % PARTITIONS),
          `[${hex}`,
          `(${hex}g`,
          'LIMIT',
          0,
          20,
        );
      },
    ],
    ['searchDirectory page of 20', (i) => searchDirectory(db, `bench user ${i % 10}`, 20)],
  );

  printTable(`${label}: ${USERS} users, ${OPS} writes, concurrency ${CONCURRENCY}`, rows);
  reportRows(report);
}

async function main() {
  let redis: BenchRedis | null = null;
  try {
    redis = await benchRedis(6);
    const real = createDb({ url: redis.url });
    try {
      await real.redis.flushdb();
      await measure(`Redis (${redis.url})`, real);
      await real.redis.flushdb();
    } finally {
      real.redis.disconnect();
    }
  } catch (error) {
    console.warn(`Skipping the real-Redis run: ${(error as Error).message}`);
  } finally {
    await redis?.release();
  }
  const memory = createDb({ memoryName: newMemoryName() });
  await measure('Memory mode (ioredis-mock)', memory);
  memory.redis.disconnect();
}

await main();
