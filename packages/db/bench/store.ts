/**
 * Store benchmark: each Namecard operation next to the bare Redis operation it is built on,
 * measured in the same run against the same server (the machine is shared and noisy, so only the
 * ratios travel). Runs on a real Redis (NAMECARD_BENCH_REDIS_URL, default db 6 of the local one,
 * flushed first) and on ioredis-mock (memory mode).
 *
 *   npm run bench -w @namecard/db
 */
import {
  createAccount,
  createDb,
  getProfiles,
  keys,
  newMemoryName,
  searchDirectory,
  updateProfile,
  type Db,
} from '../src/index';
import { printTable, timeOps } from './table';

const USERS = 2000;
const OPS = Number(process.env.NAMECARD_BENCH_OPS ?? 3000);
const CONCURRENCY = 16;

async function seed(db: Db) {
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < USERS; i++) {
    batch.push(
      createAccount(db, {
        account: `bench${i}`,
        profile: { nick: `Bench User ${i}`, sign: 'hello', email: `b${i}@example.com` },
      }),
    );
    if (batch.length === 100) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function measure(label: string, db: Db) {
  await seed(db);
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

  // Write: HSET of two fields vs the whole updateProfile script (fields + updateTime + seq + log + publish).
  const hset = await timeOps(OPS, CONCURRENCY, (i) =>
    db.redis.hset(keys.profile(account(i)), 'sign', `s${i}`, 'nick', `Bench User ${i}`),
  );
  add('write', 'bare HSET 2 fields', OPS, hset);
  const upd = await timeOps(OPS, CONCURRENCY, (i) =>
    updateProfile(db, account(i), { sign: `s${i}`, nick: `Bench User ${i}` }),
  );
  add('write', 'updateProfile (nick+sign)', OPS, upd, hset);

  // Batch read of 150: pipelined HGETALL vs getProfiles (same, plus parsing and dedup).
  const reads = Math.max(50, Math.round(OPS / 20));
  const batchOf = (i: number) => Array.from({ length: 150 }, (_, k) => account(i * 150 + k));
  const bare = await timeOps(reads, 4, async (i) => {
    const p = db.redis.pipeline();
    for (const a of batchOf(i)) p.hgetall(keys.profile(a));
    await p.exec();
  });
  add('read 150', 'bare pipelined HGETALL x150', reads, bare);
  const gp = await timeOps(reads, 4, (i) => getProfiles(db, batchOf(i)));
  add('read 150', 'getProfiles(150)', reads, gp, bare);

  // Search: one ZRANGEBYLEX vs a directory page (range + profiles + dedup).
  const zr = await timeOps(reads, 4, () =>
    db.redis.zrangebylex(keys.directory, '[', '+', 'LIMIT', 0, 20),
  );
  add('search', 'bare ZRANGEBYLEX 20', reads, zr);
  const sd = await timeOps(reads, 4, (i) => searchDirectory(db, `bench user ${i % 10}`, 20));
  add('search', 'searchDirectory page of 20', reads, sd, zr);

  printTable(`${label}: ${USERS} users, ${OPS} writes, concurrency ${CONCURRENCY}`, rows);
}

async function main() {
  const url = process.env.NAMECARD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/6';
  const real = createDb({ url });
  try {
    await real.redis.flushdb();
    await measure(`Redis (${url})`, real);
    await real.redis.flushdb();
  } catch (error) {
    console.warn(`Skipping the real-Redis run: ${(error as Error).message}`);
  } finally {
    real.redis.disconnect();
  }
  const memory = createDb({ memoryName: newMemoryName() });
  await measure('Memory mode (ioredis-mock)', memory);
  memory.redis.disconnect();
}

await main();
