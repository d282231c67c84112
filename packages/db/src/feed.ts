/**
 * The change feed: one Redis pub/sub connection per process, shared by every live subscription
 * in it. Each account has its own channel (`nc:{<partition tag>}:<account>:changes`); a channel is subscribed while
 * at least one watcher wants it (reference-counted) and events are fanned out in process.
 *
 * Pub/sub is at-most-once: when the connection comes back after a drop, ioredis resubscribes and
 * the feed tells every watcher to catch up from the change logs (see live.ts), after a PING has
 * proved the resubscription done, so nothing published in between is missed. On a Redis Cluster
 * the same holds per shard: see sharded-pubsub.ts.
 *
 * A message for thousands of listeners is handed out in slices of DELIVERY_SLICE listener calls
 * (about a millisecond each), starting after the I/O that came with it and with the event loop
 * getting a turn between slices, so a fan-out does not hold up other requests (the writer's own
 * among them); every listener still gets the messages in the order they came.
 */
import { parseEvent, type ProfileChangeEvent } from './changes';
import { type Db } from './db';
import { accountOfChannel, keys } from './keys';
import { feedSubscriber, type FeedSubscriber } from './sharded-pubsub';

export interface FeedListener {
  /** A profile change of a watched account. */
  onEvent(event: ProfileChangeEvent): void;
  /** A watched account's friend list changed. */
  onFriendsChanged?(account: string): void;
  /**
   * The pub/sub connection dropped: events and friends notices published until it is back are
   * lost (forget what they would have changed).
   */
  onDisconnect?(): void;
  /** The pub/sub connection came back: events may have been missed; read the store. */
  onReconnect?(): void;
  /** The feed is shutting down. */
  onClose?(): void;
}

export interface FeedWatch {
  /** Starts watching more accounts; resolves once Redis confirmed the subscriptions. */
  add(accounts: Iterable<string>): Promise<void>;
  remove(accounts: Iterable<string>): Promise<void>;
  close(): Promise<void>;
}

interface Channel {
  listeners: Set<FeedListener>;
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  subscribed: Promise<unknown>;
}

/** Publishes that an account's friend list changed (not logged: it is not a profile change). */
export function friendsNotice(account: string): string {
  return JSON.stringify({ type: 'friends', account });
}

/** Listener calls made in one go before other work gets a turn (see the module comment). */
export const DELIVERY_SLICE = 64;

/** One message still being handed out: its listeners, in order, and how far it got. */
interface Delivery {
  listeners: FeedListener[];
  call: (listener: FeedListener) => void;
  next: number;
}

export class ChangeFeed {
  private readonly channels = new Map<string, Channel>();
  private readonly listeners = new Set<FeedListener>();
  private readyOnce = false;
  private closed = false;
  /** Messages being handed out, oldest first (empty unless a fan-out is under way). */
  private readonly deliveries: Delivery[] = [];
  private pumping: NodeJS.Immediate | null = null;
  private drained: (() => void)[] = [];

  constructor(
    private readonly subscriber: FeedSubscriber,
    /** The Db's key prefix, which channel names carry too. */
    private readonly prefix = '',
  ) {
    subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    subscriber.on('close', () => {
      // Before the first 'ready' there is nothing to resume (and no onReconnect would follow).
      if (!this.readyOnce) return;
      this.deliver([...this.listeners], (listener) => listener.onDisconnect?.());
    });
    subscriber.on('ready', () => {
      if (!this.readyOnce) {
        this.readyOnce = true;
        return;
      }
      // ioredis has re-sent SUBSCRIBE for every channel before 'ready' reaches us; a PING
      // answered after them proves they are in effect. A PING that fails (the connection went
      // again meanwhile) is tried again: listeners wait for onReconnect.
      const confirm = (attempt: number) => {
        subscriber.ping().then(
          () => this.deliver([...this.listeners], (listener) => listener.onReconnect?.()),
          () => {
            if (this.closed || attempt >= 50) return;
            setTimeout(() => confirm(attempt + 1), Math.min(100 * (attempt + 1), 1000)).unref();
          },
        );
      };
      confirm(0);
    });
  }

  /**
   * A feed on its own connection to the Db's Redis (or in-memory data set); on a cluster, on
   * sharded subscriptions to the masters that own the watched channels (sharded-pubsub.ts).
   */
  static forDb(db: Db): ChangeFeed {
    return new ChangeFeed(feedSubscriber(db), db.keyPrefix ?? '');
  }

  /**
   * Resolves once every message Redis published before this call has reached the listeners (a
   * PING on the pub/sub connection is answered after them). False when it could not be proved.
   */
  async flush(): Promise<boolean> {
    if (this.closed) return false;
    const answered = await this.subscriber.ping().then(
      () => true,
      () => false,
    );
    // Messages that came before the answer may still be being handed out in slices.
    if (this.deliveries.length > 0)
      await new Promise<void>((resolve) => this.drained.push(resolve));
    return answered && !this.closed;
  }

  /** Calls `call` for each of `listeners`, after every message before it, in slices. */
  private deliver(listeners: FeedListener[], call: (listener: FeedListener) => void) {
    if (listeners.length === 0) return;
    this.deliveries.push({ listeners, call, next: 0 });
    if (this.pumping || this.deliveries.length > 1) return;
    // A fan-out to more than a slice starts once the I/O that came with it has been handled
    // (the reply to the very write that published it, typically); a small one at once.
    if (listeners.length > DELIVERY_SLICE) this.pumping = setImmediate(() => this.pump());
    else this.pump();
  }

  private pump() {
    this.pumping = null;
    let budget = DELIVERY_SLICE;
    while (budget > 0 && this.deliveries.length > 0) {
      const delivery = this.deliveries[0]!;
      const end = Math.min(delivery.listeners.length, delivery.next + budget);
      budget -= end - delivery.next;
      while (delivery.next < end) delivery.call(delivery.listeners[delivery.next++]!);
      if (delivery.next === delivery.listeners.length) this.deliveries.shift();
    }
    if (this.deliveries.length > 0) {
      this.pumping = setImmediate(() => this.pump());
      return;
    }
    const drained = this.drained;
    this.drained = [];
    for (const resolve of drained) resolve();
  }

  get stats() {
    return { channels: this.channels.size, listeners: this.listeners.size };
  }

  private dispatch(channel: string, message: string) {
    const account = accountOfChannel(channel, this.prefix);
    const entry = this.channels.get(channel);
    if (!account || !entry) return;
    let type: unknown;
    try {
      type = (JSON.parse(message) as { type?: unknown }).type;
    } catch {
      return;
    }
    if (type === 'profile') {
      const event = parseEvent(message);
      this.deliver([...entry.listeners], (listener) => listener.onEvent(event));
    } else if (type === 'friends') {
      this.deliver([...entry.listeners], (listener) => listener.onFriendsChanged?.(account));
    }
  }

  private async subscribe(listener: FeedListener, accounts: Iterable<string>) {
    const fresh: string[] = [];
    const waits: Promise<unknown>[] = [];
    for (const account of accounts) {
      const name = this.prefix + keys.channel(account);
      let entry = this.channels.get(name);
      if (!entry) {
        entry = { listeners: new Set(), subscribed: Promise.resolve() };
        this.channels.set(name, entry);
        fresh.push(name);
      }
      entry.listeners.add(listener);
      waits.push(entry.subscribed);
    }
    if (fresh.length > 0) {
      const done = this.subscriber.subscribe(...fresh);
      for (const name of fresh) this.channels.get(name)!.subscribed = done;
      waits.push(done);
    }
    await Promise.all(waits);
  }

  private async unsubscribe(listener: FeedListener, accounts: Iterable<string>) {
    const stale: string[] = [];
    for (const account of accounts) {
      const name = this.prefix + keys.channel(account);
      const entry = this.channels.get(name);
      if (!entry) continue;
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0) {
        this.channels.delete(name);
        stale.push(name);
      }
    }
    if (stale.length > 0 && !this.closed) await this.subscriber.unsubscribe(...stale);
  }

  /** Watches accounts for one listener; resolves once every channel is subscribed. */
  async watch(accounts: Iterable<string>, listener: FeedListener): Promise<FeedWatch> {
    if (this.closed) throw new Error('the change feed is closed');
    const mine = new Set<string>();
    this.listeners.add(listener);
    const add = async (more: Iterable<string>) => {
      const fresh = [...more].filter((a) => !mine.has(a));
      for (const a of fresh) mine.add(a);
      await this.subscribe(listener, fresh);
    };
    const remove = async (less: Iterable<string>) => {
      const gone = [...less].filter((a) => mine.has(a));
      for (const a of gone) mine.delete(a);
      await this.unsubscribe(listener, gone);
    };
    const close = async () => {
      this.listeners.delete(listener);
      await remove([...mine]);
    };
    try {
      await add(accounts);
    } catch (error) {
      await close().catch(() => undefined);
      throw error;
    }
    return { add, remove, close };
  }

  /** Ends every watcher and closes the pub/sub connection. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.pumping) clearImmediate(this.pumping);
    this.pumping = null;
    this.deliveries.length = 0;
    for (const resolve of this.drained.splice(0)) resolve();
    for (const listener of this.listeners) listener.onClose?.();
    this.listeners.clear();
    this.channels.clear();
    this.subscriber.disconnect();
    return Promise.resolve();
  }
}
