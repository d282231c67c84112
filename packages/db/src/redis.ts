/**
 * createRedis(): an ioredis `Cluster` client when cluster nodes are given (REDIS_CLUSTER_NODES),
 * a real ioredis client when REDIS_URL is set (Redis mode), or an ioredis-mock one (memory mode).
 * All are `Redis` from ioredis as far as the store is concerned (a `Cluster` has the same command
 * methods); the store only uses what behaves the same on all three (see DESIGN.md, "Modes"; the
 * one read that differs by mode is getProfilesAs in visibility.ts).
 *
 * Memory mode guards slots: ioredis-mock has no cluster, so a command whose keys do not all hash
 * to one slot (a multi-key command, a script's KEYS, the commands of one MULTI) is refused there
 * with the CROSSSLOT error a cluster would give, and a cross-slot bug shows without a cluster.
 */
import { getKeyIndexes, list as commandList } from '@ioredis/commands';
import { defineScripts } from './scripts';
import { commonSlot, slotOf } from './slots';
import { Cluster, Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';

export type { Redis } from 'ioredis';

export type RedisMode = 'memory' | 'redis';

export interface CreateRedisOptions {
  /** `redis://...`; unset (and no clusterNodes) means memory mode. */
  url?: string | undefined;
  /**
   * Redis Cluster: seed nodes (`host:port`), any of the cluster's. Takes precedence over `url`
   * (whose user name and password, if any, are used for every node).
   */
  clusterNodes?: readonly string[] | undefined;
  /**
   * Prepended to every key (ioredis `keyPrefix`): test suites sharing one Redis or cluster keep
   * apart this way (a cluster has only database 0). Channel names get it from the store.
   */
  keyPrefix?: string | undefined;
  /**
   * Memory mode only: clients made with the same name share one in-memory data set (and
   * pub/sub), as clients of one Redis server do. Defaults to one shared set per process.
   */
  memoryName?: string;
  /**
   * Connection errors (Redis away, refused, reset). ioredis retries by itself; this hears of it
   * at most once per `errorIntervalMs` (10 s). Defaults to a one-line warning on stderr.
   */
  onError?: (error: Error) => void;
  errorIntervalMs?: number;
  /**
   * Redis mode: a command with no reply after this long fails (default 1500 ms), so a request
   * fails fast (503) while Redis does not answer instead of waiting for it.
   */
  commandTimeoutMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 1500;

/**
 * Whether an error means Redis is not answering (timed out, connection closed or refused,
 * reconnecting; on a cluster also a shard failing over or a slot moving: CLUSTERDOWN, TRYAGAIN,
 * MASTERDOWN, no node reachable), as opposed to a bug or a refused command: such a request is
 * answered 503, and a live subscription's catch-up tries again.
 */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') {
    return true;
  }
  return /^(Command timed out|Connection is closed|Stream isn't writeable|connect E|read E|write E|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|Failed to refresh slots cache|None of startup nodes)/.test(
    error.message,
  );
}

let memoryNames = 0;
/** A fresh in-memory data set name: for tests that each want their own "server". */
export const newMemoryName = () => `namecard-memory-${process.pid}-${++memoryNames}`;

const memoryPorts = new Map<string, number>();
// ioredis-mock shares data between clients with the same host and port; a name maps to a port
// that no real server is asked for.
function memoryPort(name: string): number {
  let port = memoryPorts.get(name);
  if (port === undefined) {
    port = 40000 + memoryPorts.size;
    memoryPorts.set(name, port);
  }
  return port;
}

export function redisMode(url: string | undefined, clusterNodes?: readonly string[]): RedisMode {
  return url || clusterNodes?.length ? 'redis' : 'memory';
}

/** `host:port,host:port` (REDIS_CLUSTER_NODES) as a list; empty when unset. */
export function parseClusterNodes(text: string | undefined): string[] {
  if (!text?.trim()) return [];
  return text.split(',').map((node) => {
    const trimmed = node.trim();
    if (!/^[A-Za-z0-9_.-]+:\d{1,5}$/.test(trimmed)) {
      throw new Error(`a cluster node must be host:port (got "${trimmed}")`);
    }
    return trimmed;
  });
}

/** Whether a client talks to a Redis Cluster. */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

/** With no options: Redis mode when REDIS_URL is set, memory mode otherwise. */
export function createRedis(options: CreateRedisOptions = { url: process.env.REDIS_URL }): Redis {
  if (options.clusterNodes?.length) {
    const auth = options.url ? new URL(options.url) : null;
    const cluster = new Cluster(
      options.clusterNodes.map((node) => {
        const [host, port] = node.split(':');
        return { host: host!, port: Number(port) };
      }),
      {
        keyPrefix: options.keyPrefix ?? '',
        // Reads go to masters: a replica may lag behind, and resuming must see every write.
        scaleReads: 'master',
        clusterRetryStrategy: (times) => Math.min(50 * times, 2000),
        // A slot that moved answers MOVED/ASK: ioredis follows it (and refreshes its map).
        maxRedirections: 16,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        redisOptions: {
          commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
          maxRetriesPerRequest: 2,
          connectionName: 'namecard',
          ...(auth?.username ? { username: decodeURIComponent(auth.username) } : {}),
          ...(auth?.password ? { password: decodeURIComponent(auth.password) } : {}),
        },
      },
    );
    reportErrors(cluster as unknown as Redis, options);
    defineScripts(cluster as unknown as Redis);
    return cluster as unknown as Redis;
  }
  if (options.url) {
    const redis = new Redis(options.url, {
      ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
      // Fail fast while Redis does not answer: a command without a reply within commandTimeout
      // is rejected (the request answers 503), and commands waiting in the offline queue while
      // disconnected are rejected after 2 reconnection attempts (about 150 ms) instead of piling
      // up. A short blip still goes unnoticed: queued commands go out on reconnect. Reconnecting
      // goes on by itself, so requests succeed again as soon as Redis answers.
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(50 * times, 2000),
      connectionName: 'namecard',
      // Commands issued in the same event-loop turn (by concurrent requests) leave in one
      // socket write, as a pipeline: one system call instead of one per command, the same order
      // and replies. Safe with scripts because they are all defined before the first command.
      enableAutoPipelining: true,
    });
    reportErrors(redis, options);
    defineScripts(redis);
    return redis;
  }
  const name = options.memoryName ?? 'namecard-memory';
  const memory = guardSlots(
    new RedisMock({
      host: 'namecard.memory',
      port: memoryPort(name),
      lazyConnect: false,
      ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    }),
  );
  defineScripts(memory);
  return memory;
}

/** The error a command gets (in memory mode) when its keys would be in more than one slot. */
export class CrossSlotError extends Error {
  constructor(what: string, keys: readonly unknown[]) {
    super(`CROSSSLOT Keys in request don't hash to the same slot (${what}: ${keys.join(' ')})`);
    this.name = 'CrossSlotError';
  }
}

const COMMANDS = new Set(commandList);
const crossSlot = (keys: (string | Buffer)[]) => keys.length > 1 && commonSlot(keys) < 0;

type Args = unknown[];
const flatArgs = (args: Args): (string | Buffer | number)[] =>
  args
    .flat()
    .filter((a) => typeof a !== 'function' && a != null)
    .map((a) => (Buffer.isBuffer(a) || typeof a === 'number' ? a : String(a)));

/** The keys a command names: known Redis commands by their key specs, our scripts by numberOfKeys. */
function keysOf(name: string, args: Args, scripts: Map<string, number>): (string | Buffer)[] {
  const flat = flatArgs(args);
  const scriptKeys = scripts.get(name);
  if (scriptKeys !== undefined) return flat.slice(0, scriptKeys).map(String);
  const bare = name.replace(/Buffer$/, '').toLowerCase();
  if (!COMMANDS.has(bare)) return [];
  try {
    return getKeyIndexes(bare, flat).map((i) => flat[i] as string | Buffer);
  } catch {
    return [];
  }
}

/**
 * Makes an ioredis-mock client refuse what a cluster refuses: a command (or script) whose keys
 * span slots, and a MULTI whose commands do. Pipelines are checked per command (a cluster client
 * sends one per node; see pipelineByNode).
 */
export function guardSlots(redis: Redis): Redis {
  const target = redis as unknown as Record<string, unknown>;
  const scripts = new Map<string, number>();
  const wrap = (name: string) => {
    const original = target[name];
    if (typeof original !== 'function') return;
    target[name] = (...args: Args) => {
      const keys = keysOf(name, args, scripts);
      if (crossSlot(keys)) return Promise.reject(new CrossSlotError(name, keys));
      return (original as (...a: Args) => unknown).apply(redis, args);
    };
  };
  for (const name of COMMANDS) if (name !== 'multi' && name !== 'exec') wrap(name);
  const define = target.defineCommand as (name: string, def: { numberOfKeys: number }) => void;
  target.defineCommand = (name: string, def: { numberOfKeys: number; lua: string }) => {
    define.call(redis, name, def);
    scripts.set(name, def.numberOfKeys);
    wrap(name);
  };
  for (const kind of ['multi', 'pipeline'] as const) {
    const open = target[kind] as (...a: Args) => object;
    target[kind] = (...args: Args) => guardBatch(open.apply(redis, args), kind, scripts);
  }
  const duplicate = target.duplicate as (...a: Args) => Redis;
  target.duplicate = (...args: Args) => guardSlots(duplicate.apply(redis, args));
  return redis;
}

function guardBatch(batch: object, kind: 'multi' | 'pipeline', scripts: Map<string, number>) {
  const seen: (string | Buffer)[] = [];
  let refused: CrossSlotError | null = null;
  const proxy: object = new Proxy(batch, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      if (prop === 'exec') {
        return (...args: Args) =>
          refused
            ? Promise.reject(refused)
            : (value as (...a: Args) => unknown).apply(target, args);
      }
      if (!COMMANDS.has(prop.replace(/Buffer$/, '')) && !scripts.has(prop)) return value;
      return (...args: Args) => {
        const keys = keysOf(prop, args, scripts);
        if (kind === 'multi') seen.push(...keys);
        if (!refused && crossSlot(kind === 'multi' ? seen : keys)) {
          refused = new CrossSlotError(`${kind} ${prop}`, kind === 'multi' ? seen : keys);
        }
        (value as (...a: Args) => unknown).apply(target, args);
        return proxy;
      };
    },
  });
  return proxy;
}

export type BatchCommand = [name: string, ...args: (string | number)[]];
export type BatchReply = [error: Error | null, result: unknown];

/**
 * Sends single-key commands as pipelines, one per node on a cluster (an ioredis Cluster
 * pipeline must target one node), all at once; replies come back in the order of `commands`.
 * On one Redis (or in memory) it is one pipeline. A group whose slots moved meanwhile is sent
 * again, regrouped.
 */
export async function pipelineByNode(
  redis: Redis,
  commands: BatchCommand[],
): Promise<BatchReply[]> {
  if (commands.length === 0) return [];
  if (!isCluster(redis)) return (await redis.pipeline(commands).exec()) ?? [];
  const cluster = redis as unknown as Cluster;
  const prefix = cluster.options.keyPrefix ?? '';
  const replies: BatchReply[] = new Array<BatchReply>(commands.length);
  const send = async (indexes: number[], attempt: number): Promise<void> => {
    const groups = new Map<string, number[]>();
    for (const i of indexes) {
      const slot = slotOf(`${prefix}${String(commands[i]![1])}`);
      const group = cluster._groupsBySlot[slot];
      const id = group === undefined ? `slot ${slot}` : `group ${group}`;
      const list = groups.get(id);
      if (list) list.push(i);
      else groups.set(id, [i]);
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        try {
          const results = (await cluster.pipeline(group.map((i) => commands[i]!)).exec()) ?? [];
          group.forEach((i, k) => (replies[i] = results[k] as BatchReply));
          // A slot that moved meanwhile (a reshard, a failover) answers MOVED/ASK for its
          // commands only; ioredis follows that for a whole pipeline, not for part of one. Those
          // are sent again one by one (a single command follows the redirection).
          await Promise.all(
            group.map(async (i) => {
              const [error] = replies[i]!;
              if (!error || !/^(MOVED|ASK) /.test(error.message)) return;
              const [name, ...args] = commands[i]!;
              replies[i] = await cluster.call(name, ...args).then(
                (result): BatchReply => [null, result],
                (retryError: Error): BatchReply => [retryError, null],
              );
            }),
          );
        } catch (error) {
          if (attempt < 2 && /slots allocation group/.test(String(error))) {
            return send(group, attempt + 1);
          }
          throw error;
        }
      }),
    );
  };
  await send(
    commands.map((_, i) => i),
    0,
  );
  return replies;
}

/** The result of each reply, throwing the first error. */
export function repliesOrThrow(replies: BatchReply[]): unknown[] {
  return replies.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}

/** Listens for connection errors (an unheard 'error' event floods stderr), rate-limited. */
export function reportErrors(
  redis: Redis,
  options: Pick<CreateRedisOptions, 'onError' | 'errorIntervalMs'>,
) {
  const report =
    options.onError ??
    ((error: Error) => console.warn(`namecard: Redis connection error: ${error.message}`));
  const interval = options.errorIntervalMs ?? 10_000;
  let last = -Infinity;
  redis.on('error', (error: Error) => {
    const now = Date.now();
    if (now - last < interval) return;
    last = now;
    report(error);
  });
}

/** A second connection to the same server or in-memory set (for SUBSCRIBE), reporting errors alike. */
export function duplicateRedis(
  redis: Redis,
  options: Pick<CreateRedisOptions, 'onError' | 'errorIntervalMs'> = {},
): Redis {
  // Not for the subscriber connection: a SUBSCRIBE waiting for a reconnect must not time out
  // (ioredis resubscribes by itself), and its reconnect attempts must not flush anything.
  const copy = redis.duplicate({
    commandTimeout: undefined,
    maxRetriesPerRequest: null,
    enableAutoPipelining: false,
  });
  reportErrors(copy, options);
  return copy;
}
