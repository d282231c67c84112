/**
 * Helpers for test suites that need a real Redis (`@namecard/db/testing`; not part of the main
 * entry point): the guard that keeps tests off database 0, a one-shot reachability probe, and a
 * `redis-server` of the suite's own on a spare port (so `npm test` never flushes a developer's
 * Redis unless NAMECARD_TEST_REDIS_URL points at it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RealRedisProbe {
  url: string;
  reachable: boolean;
  /** Why it is not reachable ('' when it is). */
  reason: string;
}

/**
 * The database number a Redis URL selects. Test suites FLUSHDB it, so this refuses a URL that
 * does not name a database explicitly, or names database 0.
 */
export function testDbNumber(url: string): number {
  const parsed = new URL(url);
  const text = parsed.pathname.replace(/^\//, '') || (parsed.searchParams.get('db') ?? '');
  if (!/^\d+$/.test(text) || Number(text) === 0) {
    throw new Error(`the test Redis URL must name a database other than 0 (got ${url})`);
  }
  return Number(text);
}

/** Connects once with a short timeout and no retries; never throws. */
export async function probeRealRedis(url: string, timeoutMs = 1500): Promise<RealRedisProbe> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let socketError = ''; // the underlying cause (ECONNREFUSED...), which connect() does not name
  redis.on('error', (error: Error) => {
    socketError ||= error.message;
  });
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== 'PONG') return { url, reachable: false, reason: 'PING got an unexpected reply' };
    return { url, reachable: true, reason: '' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { url, reachable: false, reason: socketError ? `${socketError}; ${message}` : message };
  } finally {
    redis.disconnect();
  }
}

/** A `redis-server` process a test run started and owns (no persistence, spare port). */
export interface OwnedRedis {
  /** `redis://127.0.0.1:<port>` (no database: callers add theirs). */
  baseUrl: string;
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process exited. */
  stop(timeoutMs?: number): Promise<void>;
}

/** A TCP port nobody listens on right now (the OS picks it; bound and released at once). */
export async function spareTcpPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether a `redis-server` binary is on PATH (with its version line, or why not). */
export function redisServerAvailable(): { available: boolean; detail: string } {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (result.error) return { available: false, detail: result.error.message };
  if (result.status !== 0) return { available: false, detail: result.stderr.trim() };
  return { available: true, detail: result.stdout.trim() };
}

/**
 * Starts a `redis-server` of the caller's own on a spare port (no RDB, no AOF, bound to
 * 127.0.0.1) and waits until it answers PING. A port taken between picking and binding is
 * retried with another one.
 */
export async function startOwnedRedis(timeoutMs = 10_000): Promise<OwnedRedis> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await spareTcpPort();
    try {
      return await spawnRedis(port, timeoutMs);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** Starts a `redis-server` of the caller's own on this port (e.g. again, after `stop()`). */
export function startOwnedRedisOn(port: number, timeoutMs = 10_000): Promise<OwnedRedis> {
  return spawnRedis(port, timeoutMs);
}

async function spawnRedis(
  port: number,
  timeoutMs: number,
  extra: readonly string[] = [],
): Promise<OwnedRedis> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitedAt: number | null = null;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedAt = Date.now();
      resolve();
    }),
  );
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  const answered = (async () => {
    for (;;) {
      if (exitedAt !== null) throw new Error(`redis-server on port ${port} exited: ${output}`);
      // (Database 0: a cluster node has no other.)
      if ((await probeRealRedis(`${url}/0`, 300)).reachable) return;
      if (Date.now() > deadline) {
        throw new Error(`redis-server on port ${port} did not answer PING: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const stop = async (stopTimeoutMs = 5000) => {
    if (exitedAt !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    await Promise.race([answered, spawnFailed]);
  } catch (error) {
    await stop(1000);
    throw error;
  }
  return { baseUrl: url, port, pid: child.pid!, stop };
}

/** The same Redis URL with database `db` (never 0). */
export function urlWithDb(redisUrl: string, db: number): string {
  const url = new URL(redisUrl);
  url.pathname = `/${db}`;
  url.search = '';
  testDbNumber(url.toString());
  return url.toString();
}

// Port 0: a parseable URL that names no server (so helpers deriving other databases still work).
const NO_REDIS_URL = (db: number) => `redis://127.0.0.1:0/${db}`;

/** Where a test suite's real Redis comes from, and the process to stop at teardown (if owned). */
export interface TestRedis {
  probe: RealRedisProbe;
  /** Set when the suite started its own redis-server. */
  owned: OwnedRedis | null;
}

/**
 * The real Redis of a test suite (called by the vitest global setups):
 *
 * - `NAMECARD_TEST_REDIS_URL` set: that server and database, explicitly chosen (probed once);
 * - otherwise a `redis-server` of the suite's own on a spare port, database `defaultDb`, stopped
 *   at teardown. The developer's own Redis is never touched.
 *
 * Never throws: `probe.reachable` is false (with a reason) when neither works.
 */
export async function resolveTestRedis(defaultDb: number): Promise<TestRedis> {
  const explicit = process.env.NAMECARD_TEST_REDIS_URL;
  if (explicit) {
    testDbNumber(explicit);
    return { probe: await probeRealRedis(explicit), owned: null };
  }
  const binary = redisServerAvailable();
  if (!binary.available) {
    return {
      probe: {
        url: NO_REDIS_URL(defaultDb),
        reachable: false,
        reason: `no redis-server on PATH (${binary.detail})`,
      },
      owned: null,
    };
  }
  try {
    const owned = await startOwnedRedis();
    const url = urlWithDb(owned.baseUrl, defaultDb);
    return { probe: { url, reachable: true, reason: '' }, owned };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { probe: { url: NO_REDIS_URL(defaultDb), reachable: false, reason }, owned: null };
  }
}

/** The Redis a benchmark runs on, and how to let go of it. */
export interface BenchRedis {
  url: string;
  /** Stops the redis-server the benchmark started (nothing when it was given one). */
  release(): Promise<void>;
}

/**
 * The Redis for a benchmark: `NAMECARD_BENCH_REDIS_URL` when set (the developer chose it; its
 * database is FLUSHed), otherwise a `redis-server` of the benchmark's own on a spare port, so a
 * benchmark never empties a database of the developer's Redis that nobody pointed it at.
 */
export async function benchRedis(defaultDb: number): Promise<BenchRedis> {
  const explicit = process.env.NAMECARD_BENCH_REDIS_URL;
  if (explicit) {
    testDbNumber(explicit);
    return { url: explicit, release: () => Promise.resolve() };
  }
  const owned = await startOwnedRedis();
  return { url: `${owned.baseUrl}/${defaultDb}`, release: () => owned.stop() };
}

/** A Redis Cluster a test run started and owns: masters with a replica each, on spare ports. */
export interface OwnedCluster {
  /** `host:port` of every node (masters first, as created). */
  nodes: string[];
  /** The redis-server of each node, by `host:port`. */
  processes: Map<string, OwnedRedis>;
  /** Stops every node (by PID) and removes the cluster's files. */
  stop(): Promise<void>;
}

/** Whether `redis-server` and `redis-cli` are on PATH (a cluster needs both). */
export function redisClusterToolsAvailable(): { available: boolean; detail: string } {
  const server = redisServerAvailable();
  if (!server.available) return server;
  const cli = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
  if (cli.error) return { available: false, detail: `redis-cli: ${cli.error.message}` };
  return { available: true, detail: server.detail };
}

/** Asks one node something once (false when it does not answer). */
async function nodeSays(port: number, check: (redis: Redis) => Promise<boolean>): Promise<boolean> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await check(redis);
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A master with a replica, or a replica whose link to its master is up and synced. */
const replicaLinked = (port: number) =>
  nodeSays(port, async (redis) => {
    const info = await redis.info('replication');
    if (/role:master/.test(info)) return /connected_slaves:[1-9]/.test(info);
    return /master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info);
  });

const clusterStateOk = (port: number) =>
  nodeSays(port, async (redis) => {
    const info = String(await redis.cluster('INFO'));
    return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info);
  });

/**
 * Starts a Redis Cluster of `masters` masters with `replicas` replicas each (3 + 3 by default):
 * `redis-server --cluster-enabled yes` on spare ports (with their own cluster bus ports), joined
 * by `redis-cli --cluster create ... --cluster-replicas <replicas> --cluster-yes`, and waits until
 * every node says `cluster_state:ok`. Node timeout 2 s, so a failover takes a few seconds.
 */
export async function startOwnedCluster(
  options: { masters?: number; replicas?: number; timeoutMs?: number } = {},
): Promise<OwnedCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dir = await mkdtemp(join(tmpdir(), 'namecard-cluster-'));
  const processes = new Map<string, OwnedRedis>();
  const stop = async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const count = masters * (1 + replicas);
    const started = await Promise.all(
      Array.from({ length: count }, async () => {
        const [port, busPort] = [await spareTcpPort(), await spareTcpPort()];
        return spawnRedis(port, 10_000, [
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
        ]);
      }),
    );
    for (const node of started) processes.set(`127.0.0.1:${node.port}`, node);
    const nodes = [...processes.keys()];
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: timeoutMs },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout}`);
    }
    const deadline = Date.now() + timeoutMs;
    for (const node of started) {
      while (!(await clusterStateOk(node.port))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${node.port} never said ok`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    // Replicas attach after the cluster says ok: wait until each is linked to its master (a
    // failover test needs them).
    for (const node of started) {
      while (!(await replicaLinked(node.port))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${node.port}: no replication`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { nodes, processes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The Redis Cluster of a test suite (called by the vitest global setups): the nodes of
 * `NAMECARD_TEST_CLUSTER_NODES` when set (`host:port,...`; suites keep apart by key prefix, so
 * nothing is flushed), otherwise a cluster of the suite's own (3 masters + 3 replicas), stopped
 * at teardown. Never throws: `nodes` is empty (with a reason) when neither works.
 */
export async function resolveTestCluster(): Promise<{
  nodes: string[];
  reason: string;
  owned: OwnedCluster | null;
}> {
  const explicit = process.env.NAMECARD_TEST_CLUSTER_NODES;
  if (explicit) return { nodes: explicit.split(',').map((n) => n.trim()), reason: '', owned: null };
  const tools = redisClusterToolsAvailable();
  if (!tools.available) return { nodes: [], reason: tools.detail, owned: null };
  try {
    const owned = await startOwnedCluster();
    return { nodes: owned.nodes, reason: '', owned };
  } catch (error) {
    return {
      nodes: [],
      reason: error instanceof Error ? error.message : String(error),
      owned: null,
    };
  }
}
