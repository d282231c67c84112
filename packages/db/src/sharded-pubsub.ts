/**
 * Sharded pub/sub on a Redis Cluster, for the change feed: one connection per master that owns a
 * watched channel's slot, SSUBSCRIBE per slot, and the same events the feed hears from a plain
 * subscriber connection (`message`, `close`, `ready`).
 *
 * A shard that fails over or gives a slot away ends its subscriptions: its connection closes (a
 * master that died), or it sends `sunsubscribe` on its own (a slot that moved, a master demoted
 * to replica). ioredis does not resubscribe a plain connection's sharded channels elsewhere, and
 * reports such an unasked `sunsubscribe` only as a "Command queue state error". Either way the
 * subscriber says `close` (the feed's listeners forget what they must), asks the cluster where
 * the slots live now, subscribes every channel again there, proves it with a PING on each
 * connection and says `ready`: the feed's subscriptions then catch up from the change logs, so
 * what was published meanwhile still arrives, once.
 */
import { EventEmitter } from 'node:events';
import { Redis, type Cluster } from 'ioredis';
import { type Db } from './db';
import { duplicateRedis } from './redis';
import { slotOf } from './slots';

/**
 * A pub/sub connection for the Db's channels (full names, with the Db's key prefix): sharded on
 * a cluster (PUBLISH's counterpart there is SPUBLISH), a second connection elsewhere.
 */
export function feedSubscriber(db: Db): FeedSubscriber {
  return db.cluster
    ? new ShardedSubscriber(db.redis as unknown as Cluster)
    : duplicateRedis(db.redis, db.onRedisError ? { onError: db.onRedisError } : {});
}

/** What the change feed needs of its pub/sub connection (a `Redis` has all of it). */
export interface FeedSubscriber {
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'close' | 'ready', listener: () => void): unknown;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ping(): Promise<unknown>;
  disconnect(): void;
}

interface ClusterInternals {
  slots: string[][];
  refreshSlotsCache(callback?: (error?: Error) => void): void;
}

export class ShardedSubscriber extends EventEmitter implements FeedSubscriber {
  /** Node ("host:port") -> its connection. */
  private readonly connections = new Map<string, Redis>();
  /** Channel -> the node it is subscribed on ('' while it waits to be subscribed again). */
  private readonly channels = new Map<string, string>();
  private recovering: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly cluster: Cluster) {
    super();
    // The feed treats its connection's first `ready` as the start (nothing to catch up).
    setImmediate(() => this.emit('ready'));
  }

  private get internals(): ClusterInternals {
    return this.cluster as unknown as ClusterInternals;
  }

  private async nodeOf(channel: string): Promise<string> {
    const slot = slotOf(channel);
    if (!this.internals.slots[slot]?.[0]) await this.refreshSlots();
    const node = this.internals.slots[slot]?.[0];
    if (!node) throw new Error(`no cluster node serves slot ${slot}`);
    return node;
  }

  private refreshSlots(): Promise<void> {
    if (this.cluster.status !== 'ready') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the cluster is not ready')), 5000);
        this.cluster.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return new Promise((resolve, reject) =>
      this.internals.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
    );
  }

  private connection(node: string): Redis {
    let redis = this.connections.get(node);
    if (redis) return redis;
    const [host, port] = node.split(':');
    const base = this.cluster.options.redisOptions ?? {};
    redis = new Redis({
      host: host!,
      port: Number(port),
      ...(base.username ? { username: base.username } : {}),
      ...(base.password ? { password: base.password } : {}),
      connectionName: 'namecard-feed',
      // This connection is not reconnected: its channels are subscribed again wherever their
      // slots live by then (a dead master's are on its replica).
      retryStrategy: () => null,
      maxRetriesPerRequest: null,
    });
    const own = redis;
    redis.on('smessage', (channel: string, message: string) => {
      if (this.channels.get(channel) === node) this.emit('message', channel, message);
    });
    redis.on('close', () => this.lose(node, own));
    redis.on('error', (error: Error) => {
      // An unasked `sunsubscribe`: the node no longer serves (some of) our slots.
      if (/sunsubscribe/.test(error.message)) this.lose(node, own);
    });
    this.connections.set(node, redis);
    return redis;
  }

  /** Every channel of a node waits to be subscribed again; the feed hears `close`, then `ready`. */
  private lose(node: string, redis: Redis) {
    if (this.closed || this.connections.get(node) !== redis) return;
    this.connections.delete(node);
    redis.disconnect();
    let held = false;
    for (const [channel, at] of this.channels) {
      if (at !== node) continue;
      this.channels.set(channel, '');
      held = true;
    }
    // A connection that held no channel (yet) loses nothing: a subscribe on it fails and retries.
    if (!held && !this.recovering) return;
    this.emit('close');
    this.recovering ??= this.recover().finally(() => {
      this.recovering = null;
    });
  }

  private async recover(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.refreshSlots();
        const waiting = [...this.channels].filter(([, node]) => node === '').map(([c]) => c);
        await this.subscribeOn(waiting);
        await this.ping();
        if ([...this.channels.values()].some((node) => node === '')) continue;
        this.emit('ready');
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
      }
    }
  }

  private async subscribeOn(channels: readonly string[]): Promise<void> {
    const bySlot = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = slotOf(channel);
      const list = bySlot.get(slot);
      if (list) list.push(channel);
      else bySlot.set(slot, [channel]);
    }
    const placed = await Promise.all(
      [...bySlot.values()].map(async (list) => {
        const node = await this.nodeOf(list[0]!);
        const redis = this.connection(node);
        await redis.ssubscribe(...list);
        return { node, redis, list };
      }),
    );
    // A replica takes SSUBSCRIBE too, but it hears a shard's messages only once its master knows
    // it as a replica: a master just demoted by a failover (where a slot map from before it still
    // points) is not known as one by the new master until gossip says so, and meanwhile hears
    // nothing, without a `sunsubscribe`. Its subscriptions would look in effect (a PING answers,
    // the catch-up runs), and the messages of that window would be lost while later ones arrive.
    // So a subscription counts only on a node that is a master once it is made (one that stops
    // being one later sends `sunsubscribe`); elsewhere the node is dropped and the caller tries
    // again (the recovery, after asking the cluster where the slots live).
    const nodes = new Map(placed.map(({ node, redis }) => [node, redis]));
    const masters = await Promise.all([...nodes.keys()].map((node) => this.isMaster(node)));
    const notMaster = [...nodes].find((_, i) => !masters[i]);
    if (notMaster) {
      this.lose(...notMaster);
      throw new Error(`${notMaster[0]} is not a master`);
    }
    for (const { node, list } of placed) {
      for (const channel of list) if (this.channels.has(channel)) this.channels.set(channel, node);
    }
  }

  /** Whether a node says it is a master (ROLE on the cluster client's own connection to it). */
  private async isMaster(node: string): Promise<boolean> {
    const redis = this.cluster
      .nodes('all')
      .find(({ options }) => `${options.host}:${options.port}` === node);
    if (!redis) return false;
    const [role] = (await redis.role()) as [string, ...unknown[]];
    return role === 'master';
  }

  async subscribe(...channels: string[]): Promise<void> {
    for (const channel of channels) this.channels.set(channel, '');
    // While recovering, the recovery subscribes them too (once it has found the slots' owners).
    await this.subscribeOn(channels);
  }

  async unsubscribe(...channels: string[]): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const channel of channels) {
      const node = this.channels.get(channel);
      this.channels.delete(channel);
      if (!node) continue;
      const list = byNode.get(node);
      if (list) list.push(channel);
      else byNode.set(node, [channel]);
    }
    await Promise.all(
      [...byNode].flatMap(([node, list]) => {
        const redis = this.connections.get(node);
        if (!redis) return [];
        // One SUNSUBSCRIBE per slot (a cluster refuses channels of several slots in one).
        const bySlot = new Map<number, string[]>();
        for (const c of list) bySlot.set(slotOf(c), [...(bySlot.get(slotOf(c)) ?? []), c]);
        return [...bySlot.values()].map((l) => redis.sunsubscribe(...l).catch(() => undefined));
      }),
    );
  }

  /** Answered once every connection holding channels has delivered what was published before. */
  async ping(): Promise<string> {
    const holding = new Set(this.channels.values());
    await Promise.all(
      [...this.connections].filter(([node]) => holding.has(node)).map(([, redis]) => redis.ping()),
    );
    return 'PONG';
  }

  disconnect(): void {
    this.closed = true;
    for (const redis of this.connections.values()) redis.disconnect();
    this.connections.clear();
    this.channels.clear();
  }
}
