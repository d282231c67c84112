/**
 * One live subscription's stream of changes, lossless and resumable:
 *
 * 1. attach the live listener first (events queue up), then note the newest event id S;
 * 2. with a `lastEventId`, replay the log from there up to S (or say `resync` when the log no
 *    longer reaches back that far, or when the id is from a log that no longer exists);
 * 3. say `ready` with id S, then yield queued and live events with ids above the last one sent.
 *
 * When the pub/sub connection comes back after a drop, the stream replays the log from its last
 * id before going on, so what was published meanwhile still arrives, once and in order.
 * A subscriber that stops reading cannot make the queue grow without bound: past `maxQueue`
 * events the stream calls `onOverflow` (the server cuts the connection) and ends; the client
 * resumes from its last id.
 */
import { lastEventId, readLogSince, type ProfileChangeEvent } from './changes';
import { type Db } from './db';
import { type ChangeFeed, type FeedListener } from './feed';
import { listFriends, ownersSharingPrivateFields } from './friends';
import { withoutPrivateFields } from './profiles';
import { type Profile } from './schema';

export type LiveItem =
  | { id: string; type: 'profile'; account: string; profile: Profile }
  | { id: string; type: 'resync' }
  | { id: string; type: 'ready' };

export interface LiveOptions {
  db: Db;
  feed: ChangeFeed;
  /** The subscriber: their own changes, their friends' and `accounts`' reach them. */
  viewer: string;
  accounts?: readonly string[];
  lastEventId?: string | null;
  signal?: AbortSignal;
  /** Events held for a subscriber that is not reading, before it is cut off. */
  maxQueue?: number;
  onOverflow?: () => void;
}

export const DEFAULT_MAX_QUEUE = 1000;
const REPLAY_PAGE = 500;

export async function* liveChanges(
  options: LiveOptions,
): AsyncGenerator<LiveItem, void, undefined> {
  const { db, feed, viewer, signal } = options;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  const extra = options.accounts ?? [];

  const queue: ProfileChangeEvent[] = [];
  let wake: (() => void) | null = null;
  let catchUp = false;
  let friendsChanged = false;
  let ended = false;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // Whose private fields the viewer may see; forgotten when that account's friends change.
  const sharing = new Map<string, boolean>();
  // Counts friend-list changes: an answer read before one may be stale by the time it arrives.
  let friendChanges = 0;

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
    onReconnect() {
      catchUp = true;
      notify();
    },
    onClose() {
      ended = true;
      notify();
    },
  };
  const onAbort = () => {
    ended = true;
    notify();
  };
  signal?.addEventListener('abort', onAbort);
  const watch = await feed.watch(interest, listener);

  async function view(events: ProfileChangeEvent[]): Promise<LiveItem[]> {
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
        // Cached only if no friend list changed meanwhile: the notice that would have cleared
        // it may have come before the answer (e.g. the owner removed the viewer since).
        if (friendChanges === before) sharing.set(a, shared.has(a));
      }
    }
    return events.map((e) => ({
      id: e.id,
      type: 'profile',
      account: e.account,
      profile: shares.get(e.account) ? e.profile : withoutPrivateFields(e.profile),
    }));
  }

  /** Events of interest in (from, to], from the log; null when the log has a gap there. */
  async function* replay(from: bigint, to: bigint): AsyncGenerator<LiveItem, boolean, undefined> {
    let after = from;
    while (after < to) {
      const { events, gap } = await readLogSince(db, after.toString(), REPLAY_PAGE);
      if (gap) return false;
      const upto = events.filter((e) => BigInt(e.id) <= to);
      for (const item of await view(upto.filter((e) => interest.has(e.account)))) yield item;
      if (upto.length < events.length || events.length === 0) break;
      after = BigInt(events[events.length - 1]!.id);
    }
    return true;
  }

  /** Replays (from, newest]; a resync item when that cannot be done. Returns the new last id. */
  async function* resume(from: bigint): AsyncGenerator<LiveItem, bigint, undefined> {
    const newest = BigInt(await lastEventId(db));
    if (from > newest || !(yield* replay(from, newest))) {
      yield { id: newest.toString(), type: 'resync' };
    }
    return newest;
  }

  try {
    let last: bigint;
    if (options.lastEventId != null) {
      last = yield* resume(BigInt(options.lastEventId));
    } else {
      last = BigInt(await lastEventId(db));
    }
    yield { id: last.toString(), type: 'ready' };

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
        // A new friend's changes published before its channel was subscribed are only in the log.
        if (added) catchUp = true;
      }
      if (catchUp) {
        catchUp = false;
        last = yield* resume(last);
        continue;
      }
      const event = queue.shift();
      if (event) {
        if (BigInt(event.id) > last) {
          last = BigInt(event.id);
          for (const item of await view([event])) yield item;
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
    await watch.close().catch(() => undefined);
  }
}
