/**
 * One live subscription's stream of changes, lossless and resumable:
 *
 * 1. take a subscription lease (the per-account limit, held in Redis across instances), attach
 *    the live listener (events queue up), then note the newest event id S;
 * 2. with a `lastEventId`, check it still exists (else `resync`: the log was trimmed past it, or
 *    Redis lost it) and replay the watched accounts' events in (lastEventId, S] from their own
 *    change logs: O(k + their events) for k watched accounts, whatever the length of the global
 *    log;
 * 3. say `ready` with id S, then yield queued and live events with ids above the last one sent.
 *
 * When the pub/sub connection comes back after a drop, the stream resumes the same way from its
 * last id before going on, so what was published meanwhile still arrives, once and in order.
 * Whether the viewer may see an owner's private fields is read from the store, and the answers
 * kept are forgotten when that owner's friends notice arrives and whenever the pub/sub connection
 * drops (a notice sent meanwhile is lost), so a removal missed during a reconnect cannot leak.
 * A subscriber that stops reading cannot make the queue grow without bound: past `maxQueue`
 * events the stream calls `onOverflow` (the server cuts the connection) and ends; the client
 * resumes from its last id.
 */
import {
  advance,
  advanceCursor,
  newestPositions,
  readAccountsSince,
  resumePoint,
  type ProfileChangeEvent,
} from './changes';
import { compareEventIds, encodeCursor, type Positions } from './cursor';
import { type Db } from './db';
import { type ChangeFeed, type FeedListener } from './feed';
import { listFriends, ownersSharingPrivateFields } from './friends';
import { keys, partitionOf } from './keys';
import { isRedisUnavailableError, pipelineByNode } from './redis';
import { withoutPrivateFields } from './profiles';
import { type Profile } from './schema';
import { takeSubscriptionLease } from './subscriptions';

export type LiveItem =
  | { id: string; type: 'profile'; account: string; profile: Profile }
  | { id: string; type: 'resync' }
  | { id: string; type: 'ready' };

/** What a subscriber is sent for an item (its id travels beside it, as the SSE event id). */
export type LiveData = LiveItem extends infer T
  ? T extends LiveItem
    ? Omit<T, 'id'>
    : never
  : never;

/**
 * A profile change as one visibility class sees it, built once per event and class and shared
 * (frozen) by every subscription it reaches: the feed hands the same event object to every
 * listener, so with thousands of subscribers the item (and what the SSE writer serializes from
 * it, once) is not made again for each of them.
 */
const profileItems = new WeakMap<ProfileChangeEvent, { full?: LiveItem; limited?: LiveItem }>();

function profileItem(event: ProfileChangeEvent, full: boolean): LiveItem {
  let items = profileItems.get(event);
  if (!items) profileItems.set(event, (items = {}));
  const key = full ? 'full' : 'limited';
  return (items[key] ??= Object.freeze({
    id: event.id,
    type: 'profile',
    account: event.account,
    profile: Object.freeze(full ? event.profile : withoutPrivateFields(event.profile)),
  }));
}

const itemData = new WeakMap<object, LiveData>();

/**
 * An item without its id; the same (frozen) object each time for the same change and
 * visibility class. Each subscriber's item carries its own id (a cursor of every partition it
 * has seen), but a profile item's shared, frozen profile identifies the change and the class.
 */
export function liveData(item: LiveItem): LiveData {
  const key = item.type === 'profile' ? item.profile : item;
  let data = itemData.get(key);
  if (!data) {
    const { id: _id, ...rest } = item;
    itemData.set(key, (data = Object.freeze(rest) as LiveData));
  }
  return data;
}

export interface LiveOptions {
  db: Db;
  feed: ChangeFeed;
  /** The subscriber: their own changes, their friends' and `accounts`' reach them. */
  viewer: string;
  /** Accounts to watch besides the viewer's friends; those that do not exist are left out. */
  accounts?: readonly string[];
  lastEventId?: string | null;
  signal?: AbortSignal;
  /** Events held for a subscriber that is not reading, before it is cut off. */
  maxQueue?: number;
  onOverflow?: () => void;
  /**
   * Whether to catch up from the change logs when the pub/sub connection comes back (default
   * true). Only tests switch it off, to show that delivery across a failover is lossless because
   * of it.
   */
  catchUpOnReconnect?: boolean;
}

export const DEFAULT_MAX_QUEUE = 1000;

/** Of `accounts`, those with a profile: made-up accounts get no channel and no memory. */
async function existingAccounts(db: Db, accounts: readonly string[]): Promise<string[]> {
  const unique = [...new Set(accounts)];
  if (unique.length === 0) return [];
  const results = await pipelineByNode(
    db.redis,
    unique.map((a) => ['exists', keys.profile(a)]),
  );
  return unique.filter((_, i) => {
    const [error, exists] = results[i] ?? [null, 0];
    if (error) throw error;
    return exists === 1;
  });
}

/** Position by position, the further of two. */
function furthest(a: Positions, b: Positions): Positions {
  return a.map((p, i) => (compareEventIds(b[i]!, p) > 0 ? b[i]! : p));
}

export async function* liveChanges(
  options: LiveOptions,
): AsyncGenerator<LiveItem, void, undefined> {
  const { db, feed, viewer, signal } = options;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;

  const lease = await takeSubscriptionLease(db, viewer);
  const queue: ProfileChangeEvent[] = [];
  let wake: (() => void) | null = null;
  let catchUp = false;
  // Between a drop of the pub/sub connection and the catch-up after it, queued events wait: the
  // catch-up must first check that the last event sent still exists (Redis may have come back
  // without it), and a newer live event sent before it would hide that.
  let reconnecting = false;
  let friendsChanged = false;
  let ended = false;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // Whose private fields the viewer may see; forgotten when that account's friends change or
  // the pub/sub connection drops.
  const sharing = new Map<string, boolean>();
  // Counts friend-list changes and connection drops: an answer read before one may be stale by
  // the time it arrives, and is then used once but not kept.
  let friendChanges = 0;
  const forgetSharing = () => {
    sharing.clear();
    friendChanges++;
  };

  let watch: Awaited<ReturnType<ChangeFeed['watch']>> | undefined;
  const onAbort = () => {
    ended = true;
    notify();
  };
  try {
    const extra = await existingAccounts(db, options.accounts ?? []);
    let friends = new Set(await listFriends(db, viewer));
    let interest = new Set([viewer, ...friends, ...extra]);

    const listener: FeedListener = {
      onEvent(event) {
        if (ended || !interest.has(event.account)) return;
        if (queue.length >= maxQueue) {
          ended = true;
          queue.length = 0;
          options.onOverflow?.();
          notify();
          return;
        }
        queue.push(event);
        notify();
      },
      onFriendsChanged(account) {
        sharing.delete(account);
        friendChanges++;
        if (account === viewer) friendsChanged = true;
        notify();
      },
      onDisconnect() {
        forgetSharing();
        reconnecting = true;
      },
      onReconnect() {
        reconnecting = false;
        // Friends notices published while the connection was down are lost: read again.
        forgetSharing();
        friendsChanged = true;
        catchUp = options.catchUpOnReconnect !== false;
        notify();
      },
      onClose() {
        ended = true;
        notify();
      },
    };
    signal?.addEventListener('abort', onAbort);
    watch = await feed.watch(interest, listener);

    const view = async (events: ProfileChangeEvent[]): Promise<LiveItem[]> => {
      const shares = new Map<string, boolean>();
      for (const e of events) {
        const known = sharing.get(e.account);
        if (known !== undefined) shares.set(e.account, known);
      }
      const unknown = [...new Set(events.map((e) => e.account))].filter((a) => !shares.has(a));
      if (unknown.length > 0) {
        const before = friendChanges;
        const shared = await ownersSharingPrivateFields(db, unknown, viewer);
        for (const a of unknown) {
          shares.set(a, shared.has(a));
          // Kept only if no friend list changed (and no connection dropped) meanwhile: the
          // notice that would have cleared it may have come before the answer.
          if (friendChanges === before) sharing.set(a, shared.has(a));
        }
      }
      return events.map((e) => profileItem(e, shares.get(e.account) === true));
    };

    const interestPartitions = () => new Set([...interest].map(partitionOf));
    const items = (events: ProfileChangeEvent[], viewed: LiveItem[], from: Positions) => {
      let at = from;
      return viewed.map((item, i) => {
        at = advance(at, events[i]!);
        return { item: { ...item, id: encodeCursor(at) }, at };
      });
    };

    /**
     * What was missed since `from` (or a resync item). Returns the newest positions and the last
     * ones sent: a catch-up goes on from the latter, so that an account added to the interest
     * later (a new friend) still gets its events between the two. A partition whose position
     * was lost but holds nothing this subscriber watches moves on to its newest id quietly.
     */
    async function* resume(
      from: string,
    ): AsyncGenerator<LiveItem, { newest: Positions; sent: Positions }, undefined> {
      const point = await resumePoint(db, from);
      const newest = point.newestPositions;
      const watched = interestPartitions();
      let missed: Awaited<ReturnType<typeof readAccountsSince>> | null = null;
      const base = [...point.from];
      if (point.from.length > 0 && !point.lost.some((p) => watched.has(p))) {
        for (const p of point.lost) base[p] = newest[p]!;
        missed = await readAccountsSince(db, interest, base, newest);
      }
      if (!missed || missed.gap) {
        // The stored states the subscriber holds may no longer exist: forget what was kept.
        forgetSharing();
        yield { id: point.newest, type: 'resync' };
        return { newest, sent: newest };
      }
      let sent = base;
      for (const { item, at } of items(missed.events, await view(missed.events), base)) {
        yield item;
        sent = at;
      }
      return { newest, sent };
    }

    let last: Positions;
    // `last` encoded, kept while `last` is the same array (a live event's step brings both).
    let lastCursor: { positions: Positions; text: string } | null = null;
    const cursorOf = (positions: Positions) =>
      lastCursor?.positions === positions
        ? lastCursor.text
        : (lastCursor = { positions, text: encodeCursor(positions) }).text;
    if (options.lastEventId != null) {
      last = (yield* resume(options.lastEventId)).newest;
    } else {
      last = await newestPositions(db);
    }
    yield { id: cursorOf(last), type: 'ready' };

    while (!ended && !signal?.aborted) {
      if (friendsChanged) {
        friendsChanged = false;
        friends = new Set(await listFriends(db, viewer));
        const next = new Set([viewer, ...friends, ...extra]);
        const removed = [...interest].filter((a) => !next.has(a));
        const added = [...next].some((a) => !interest.has(a));
        interest = next;
        await watch.add(next);
        await watch.remove(removed);
        // A new friend's changes published before its channel was subscribed are only stored.
        if (added) catchUp = true;
      }
      if (catchUp) {
        catchUp = false;
        let resumed: { newest: Positions; sent: Positions };
        try {
          // Reads everything before yielding anything: a failure leaves nothing half sent.
          resumed = yield* resume(cursorOf(last));
        } catch (error) {
          // Redis away or a shard failing over: try again shortly (the feed's reconnect may not
          // come again), for as long as the subscription runs.
          if (!isRedisUnavailableError(error) || ended) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
          catchUp = true;
          continue;
        }
        const { newest, sent } = resumed;
        // Go on from the newest ids when my friend list has not changed since it was last read
        // (every notice published before the newest ids were read has arrived: the feed's
        // flush); else from the last ids sent, so that a new friend's events between the two
        // are still replayed. Going on from the newest keeps a quiet subscriber's resume point
        // recent (the logs are trimmed behind it).
        const settled = (await feed.flush()) && !friendsChanged;
        last = furthest(last, settled ? newest : sent);
        continue;
      }
      const event = reconnecting ? undefined : queue.shift();
      if (event) {
        const step = advanceCursor(last, cursorOf(last), event);
        if (step.advanced) {
          last = step.positions;
          lastCursor = step;
          const id = step.text;
          // Whether I may see the owner's private fields is usually known by now: no round trip.
          const shared = sharing.get(event.account);
          if (shared !== undefined) yield { ...profileItem(event, shared), id };
          else for (const item of await view([event])) yield { ...item, id };
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    ended = true;
    signal?.removeEventListener('abort', onAbort);
    await watch?.close().catch(() => undefined);
    // Not awaited: with Redis away the release would wait for it; the lease then expires.
    void lease.release().catch(() => undefined);
  }
}
