/**
 * `createNamecardClient`: Namecard for other TypeScript services, with NIM's user-profile
 * callbacks (`onmyinfo`, `onusers`, `onupdatemyinfo`, `onupdateuser`), the login-time sync, the
 * live change subscription kept open and resumed without loss, batched `getUsers`, `mergeUsers`
 * and `refreshIfStale`. See README.md for the full behaviour.
 */
import type { RouterInputs, RouterOutputs } from '@namecard/api/client-types';
import { TRPCClientError } from '@trpc/client';
import { chunk, dedupe, mapLimit } from './batch';
import { mergeInto, mergeUsers } from './merge';
import { createNamecardTrpc, type FetchLike, type NamecardTrpc } from './trpc';

// The limits the client needs. public-types.check.ts checks them against packages/db's `LIMITS`
// at compile time (a change there fails the typecheck here) without loading the schema module
// and zod at run time: a browser bundle of this client stays @trpc/client + eventsource.
/** Accounts per `user.getUsers` request: `getUsers` splits longer lists into batches of this size. */
export const GET_USERS_BATCH = 150;
/** Accounts one client may `watch`. */
export const WATCH_LIMIT = 500;

/** A profile as the API returns it; `email` and `tel` only where the viewer may see them. */
export type Profile = RouterOutputs['user']['getUser'];
/** A partial update of my profile; `''` clears a field. */
export type ProfilePatch = RouterInputs['user']['updateMyInfo'];
export type SearchInput = RouterInputs['user']['search'];
export type SearchPage = RouterOutputs['user']['search'];
export type SyncResult = RouterOutputs['user']['sync'];

/**
 * Where the client is:
 * - `starting`: initial sync and first subscription under way (`ready` not settled yet);
 * - `live`: the subscription is up and delivering live changes;
 * - `reconnecting`: the subscription dropped; the client is resuming it from the last event id;
 * - `failed`: the server refused the client for good (bad token, revoked account, bad `watch`);
 *   the failure went to `onerror` and the client does not retry;
 * - `closed`: `close()` was called.
 */
export type NamecardClientStatus = 'starting' | 'live' | 'reconnecting' | 'failed' | 'closed';

/** What an error passed to `onerror` came from. */
export type NamecardErrorSource =
  /** `user.sync` failed (at start or on a resync); it is retried unless the client failed. */
  | 'sync'
  /** the live subscription failed or dropped; it is resumed unless the client failed. */
  | 'live'
  /** one of your callbacks threw; delivery goes on with the next event. */
  | 'callback';

export interface NamecardClientOptions {
  /** The server's base URL (`http://localhost:4000`) or its tRPC endpoint (`.../trpc`). */
  url: string;
  /** The account's token (sent as `Authorization: Bearer <token>`); it alone identifies the account. */
  token: string;

  /** NIM `onmyinfo`: my profile, once after the initial sync (before `onusers`), and again after a resync. */
  onmyinfo?: (profile: Profile) => void;
  /**
   * NIM `onusers`: my friends' profiles from the initial sync (all of them, or with `cursor` only
   * those changed since), after `onmyinfo`; again with all of them after a resync. Called even
   * when the list is empty. Not called at all with `syncFriendUsers: false`.
   */
  onusers?: (profiles: Profile[]) => void;
  /**
   * NIM `onupdatemyinfo`: my profile changed. Fires for every change the live feed reports,
   * whether made from another session or through this client's own `updateMyInfo`.
   */
  onupdatemyinfo?: (profile: Profile) => void;
  /** NIM `onupdateuser`: a friend's or a watched account's profile changed. */
  onupdateuser?: (profile: Profile) => void;
  /** NIM `syncFriendUsers`: deliver friends' profiles through `onusers` at start (default true). */
  syncFriendUsers?: boolean;
  /** Extra accounts whose changes reach `onupdateuser` besides my friends' (at most 500). */
  watch?: readonly string[];
  /**
   * Resume from a previous run: the `client.cursor` it had. The initial sync then only reports
   * friends changed since, and the subscription replays every change (mine, friends', watched)
   * from there, so nothing that happened while this service was down is missed. If the server's
   * log no longer reaches back that far, the client resyncs (`onresync`).
   */
  cursor?: string | null;
  /**
   * The server could not replay what was missed (its change log was trimmed, or it is a new data
   * set). Called before the client refetches and redelivers through `onmyinfo` and `onusers`.
   */
  onresync?: () => void;
  /**
   * Errors the client handles itself: failed syncs and dropped subscriptions (retried), and
   * exceptions thrown by callbacks. Defaults to `console.error`.
   */
  onerror?: (error: unknown, source: NamecardErrorSource) => void;
  /** Status changes (see {@link NamecardClientStatus}). */
  onstatus?: (status: NamecardClientStatus) => void;

  /** Sent as `X-Namecard-Admin` with queries and mutations, so `trpc.admin.*` works too. */
  adminSecret?: string;
  /** The `fetch` for every request, the SSE stream included (default: the global `fetch`). */
  fetch?: FetchLike;
  /**
   * `false`: every call is its own HTTP request, sent at once, instead of calls made in the same
   * tick sharing one (default `true`; see `createNamecardTrpc`).
   */
  batch?: boolean;
  /** How many `getUsers` batches run at once (default 4). */
  getUsersConcurrency?: number;
  /** Delay before retry number `attempt` (0, 1, ...) of a failed sync or subscription, in ms. */
  retryDelay?: (attempt: number) => number;
}

export interface NamecardClient {
  /**
   * Settles when the initial sync is delivered (`onmyinfo`, `onusers`) and the live subscription
   * is up (anything missed since the sync or since `cursor` replayed). Rejects when the server
   * refuses the client (bad token) or when it is closed first. Always handled internally, so not
   * awaiting it does not cause an unhandled rejection.
   */
  readonly ready: Promise<void>;
  /** See {@link NamecardClientStatus}. */
  readonly status: NamecardClientStatus;
  /**
   * The id of the last event delivered to the callbacks (null before the initial sync). Save it
   * and pass it as `cursor` next time to resume where this run stopped.
   */
  readonly cursor: string | null;
  /** My account, known after the initial sync. */
  readonly account: string | null;

  /** NIM `getMyInfo`: my profile with every field. */
  getMyInfo(): Promise<Profile>;
  /** NIM `updateMyInfo`: applies a patch (`''` clears a field) and returns my updated profile. */
  updateMyInfo(patch: ProfilePatch): Promise<Profile>;
  /** NIM `getUser`: one profile; rejects with a `TRPCClientError` (code NOT_FOUND) if none. */
  getUser(account: string): Promise<Profile>;
  /**
   * NIM `getUsers`, any number of accounts: duplicates collapse, batches of 150 run in parallel
   * (bounded), the result keeps the input order and leaves out accounts that do not exist.
   */
  getUsers(accounts: readonly string[]): Promise<Profile[]>;
  /** Directory search: prefix of a nick or an account id, paged with `nextCursor`. */
  search(input: SearchInput): Promise<SearchPage>;
  /**
   * NIM `mergeUsers`: merges profile lists by account, newer `updateTime` wins (on a tie the
   * later copy). The result also goes into the client's cache.
   */
  mergeUsers(...lists: readonly (readonly Profile[] | null | undefined)[]): Profile[];
  /**
   * The profile of `account`, fetched only if the cached copy is older than `updateTime` (or there
   * is none), e.g. when a message from that account carries a newer `updateTime`. Concurrent
   * calls for the same account share one request.
   */
  refreshIfStale(account: string, updateTime: number): Promise<Profile>;
  /** The cached copy of a profile, if any (no request). */
  cached(account: string): Profile | undefined;
  /** Ends the subscription and every timer; pending callbacks are dropped. Idempotent. */
  close(): Promise<void>;
  /** The raw typed tRPC client (`AppRouter`) for everything else, e.g. `trpc.friend.add.mutate(...)`. */
  readonly trpc: NamecardTrpc;
}

/** `ready` rejects with this when the client is closed before it got ready. */
export class NamecardClientClosedError extends Error {
  override name = 'NamecardClientClosedError';
  constructor() {
    super('the Namecard client was closed');
  }
}

/** Error codes that retrying cannot fix: the client stops and reports them. */
const FATAL_CODES = new Set([
  'UNAUTHORIZED',
  'FORBIDDEN',
  'BAD_REQUEST',
  'NOT_FOUND',
  'PARSE_ERROR',
  'METHOD_NOT_SUPPORTED',
  'NOT_IMPLEMENTED',
  'UNPROCESSABLE_CONTENT',
  'PAYLOAD_TOO_LARGE',
]);

/** Whether an error means the server refuses us for good (as opposed to a network/server hiccup). */
export function isFatalError(error: unknown): boolean {
  if (!(error instanceof TRPCClientError)) return false;
  const code = (error as TRPCClientError<never>).data as { code?: unknown } | undefined;
  if (typeof code?.code === 'string') return FATAL_CODES.has(code.code);
  // The SSE handshake answered with an HTTP error: eventsource's ErrorEvent carries the status.
  const status = (error.cause as { code?: unknown } | undefined)?.code;
  return (
    typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429
  );
}

/** The default `retryDelay`: 250 ms doubling to 30 s, ±20 % jitter. */
export const defaultRetryDelay = (attempt: number) =>
  Math.min(30_000, 250 * 2 ** attempt) * (0.8 + Math.random() * 0.4);

/** One item of `user.onChange` (without its id): `ready`, `profile` or `resync`. */
export type LiveItem =
  RouterOutputs['user']['onChange'] extends AsyncIterable<{ data: infer T }> ? T : never;

/**
 * Creates a client signed in with `token`. It starts at once: syncs (`onmyinfo`, then `onusers`),
 * opens the live subscription from the sync's cursor (so nothing between the two is lost), and
 * keeps it open, resuming from the last event id after any drop. Await `client.ready` to know
 * it is live; call `close()` when done.
 *
 * @example
 * const client = createNamecardClient({
 *   url: 'http://localhost:4000',
 *   token: process.env.NAMECARD_TOKEN!,
 *   onmyinfo: (me) => console.log('me', me.nick),
 *   onusers: (friends) => console.log(friends.length, 'friends'),
 *   onupdateuser: (p) => console.log(p.account, 'changed'),
 * });
 * await client.ready;
 */
export function createNamecardClient(options: NamecardClientOptions): NamecardClient {
  const watch = dedupe(options.watch ?? []);
  if (watch.length > WATCH_LIMIT) {
    throw new RangeError(`watch: at most ${WATCH_LIMIT} accounts, got ${watch.length}`);
  }
  const syncFriendUsers = options.syncFriendUsers ?? true;
  const concurrency = Math.max(1, options.getUsersConcurrency ?? 4);
  const retryDelay = options.retryDelay ?? defaultRetryDelay;
  const trpc = createNamecardTrpc({
    url: options.url,
    token: options.token,
    adminSecret: options.adminSecret,
    fetch: options.fetch,
    batch: options.batch,
  });

  /** Known profiles: whatever any call or event brought, newest copy per account. */
  const cache = new Map<string, Profile>();
  /** updateTime last delivered through a callback, per account: live events at or below it are repeats. */
  const delivered = new Map<string, number>();
  const inflight = new Map<string, Promise<Profile>>();

  let status: NamecardClientStatus = 'starting';
  let closed = false;
  let me: string | null = null;
  /** Last event id delivered to the callbacks (`client.cursor`). */
  let cursor: string | null = options.cursor ?? null;
  /** Last event id received from the stream (resubscribe from here: queued items still get delivered). */
  let received: string | null = null;
  let subscription: { unsubscribe(): void } | null = null;
  let liveFailures = 0;
  /** Pending waits (retry back-off); close() ends them all. */
  const wakers = new Set<() => void>();
  /** Internal requests (sync) are aborted on close. */
  const stop = new AbortController();

  let resolveReady!: () => void;
  let rejectReady!: (error: unknown) => void;
  let settled = false;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = () => {
      settled = true;
      resolve();
    };
    rejectReady = (error) => {
      settled = true;
      reject(error instanceof Error ? error : new Error(String(error)));
    };
  });
  ready.catch(() => undefined);

  const report = (error: unknown, source: NamecardErrorSource) => {
    if (closed && source !== 'callback') return;
    try {
      if (options.onerror) options.onerror(error, source);
      else console.error(`[namecard/client] ${source}:`, error);
    } catch {
      // An onerror that throws has nowhere left to report to.
    }
  };

  const setStatus = (next: NamecardClientStatus) => {
    if (status === next || status === 'closed') return;
    status = next;
    call(options.onstatus, next);
  };

  /** Calls a user callback; what it throws goes to onerror and delivery goes on. */
  function call<A>(fn: ((arg: A) => void) | undefined, arg: A) {
    if (!fn || closed) return;
    try {
      fn(arg);
    } catch (error) {
      report(error, 'callback');
    }
  }

  /** A timer that close() cancels; resolves early (and the caller sees `closed`) on close. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakers.add(done);
    });

  const fail = (error: unknown) => {
    setStatus('failed');
    subscription?.unsubscribe();
    subscription = null;
    if (!settled) rejectReady(error);
  };

  /** Runs `fn` until it succeeds, waiting between attempts; fatal errors and close() end it. */
  async function retrying<T>(fn: () => Promise<T>, source: NamecardErrorSource): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new NamecardClientClosedError();
      try {
        return await fn();
      } catch (error) {
        if (closed) throw new NamecardClientClosedError();
        report(error, source);
        if (isFatalError(error)) throw error;
        await sleep(retryDelay(attempt));
      }
    }
  }

  // ---- delivery ---------------------------------------------------------------------------

  const markDelivered = (profiles: readonly Profile[]) => {
    for (const p of profiles)
      delivered.set(p.account, Math.max(p.updateTime, delivered.get(p.account) ?? -1));
  };

  /** onmyinfo + onusers from a sync result (at start and after a resync). */
  function deliverSync(result: SyncResult) {
    me = result.myInfo.account;
    mergeInto(cache, [result.myInfo]);
    mergeInto(cache, result.users);
    markDelivered([result.myInfo]);
    call(options.onmyinfo, result.myInfo);
    if (syncFriendUsers) {
      markDelivered(result.users);
      call(options.onusers, result.users);
    }
  }

  /** One change from the live feed: mine -> onupdatemyinfo, anyone else's -> onupdateuser. */
  function deliverChange(profile: Profile) {
    const last = delivered.get(profile.account);
    if (last !== undefined && profile.updateTime <= last) return; // already delivered (replay after a resync)
    delivered.set(profile.account, profile.updateTime);
    mergeInto(cache, [profile]);
    call(profile.account === me ? options.onupdatemyinfo : options.onupdateuser, profile);
  }

  /** The server could not replay: refetch everything we follow and redeliver it. */
  async function resync() {
    call(options.onresync, undefined);
    const result = await retrying(
      () => trpc.user.sync.query(undefined, { signal: stop.signal }),
      'sync',
    );
    const friends = new Set(result.users.map((p) => p.account));
    const others = watch.filter((a) => !friends.has(a) && a !== result.myInfo.account);
    const watched =
      others.length > 0 ? await retrying(() => fetchUsers(others, stop.signal), 'sync') : [];
    if (closed) return;
    deliverSync(result);
    // Watched accounts (and, without syncFriendUsers, friends) get onupdateuser for what changed meanwhile.
    for (const p of syncFriendUsers ? watched : [...result.users, ...watched]) {
      const known = delivered.get(p.account) ?? cache.get(p.account)?.updateTime;
      if (known === undefined || p.updateTime > known) deliverChange(p);
      else mergeInto(cache, [p]);
    }
  }

  // Live items are handled one at a time, in order: a resync's refetch holds back later items.
  let queue: Promise<void> = Promise.resolve();
  function enqueue(id: string, item: LiveItem) {
    queue = queue.then(async () => {
      if (closed) return;
      try {
        if (item.type === 'profile') deliverChange(item.profile);
        else if (item.type === 'resync') await resync();
        else {
          liveFailures = 0;
          setStatus('live');
          if (!settled) resolveReady();
        }
        cursor = id;
      } catch (error) {
        if (closed || error instanceof NamecardClientClosedError) return;
        // A resync's refetch failed for good (retrying already reported it): the client cannot go on.
        fail(error);
      }
    });
  }

  // ---- the live subscription -------------------------------------------------------------

  function subscribe(from: string | null) {
    if (closed || status === 'failed') return;
    received = from;
    let ended = false;
    const end = () => {
      const wasEnded = ended;
      ended = true;
      if (subscription === current) subscription = null;
      return !wasEnded && !closed && status !== 'failed';
    };
    const current = trpc.user.onChange.subscribe(
      { ...(watch.length > 0 ? { accounts: watch } : {}), ...(from ? { lastEventId: from } : {}) },
      {
        onData(envelope) {
          received = envelope.id;
          enqueue(envelope.id, envelope.data);
        },
        onConnectionStateChange(state) {
          if (closed || state.state !== 'connecting' || !state.error) return;
          // eventsource reconnects by itself (sending Last-Event-ID); just say so.
          report(state.error, 'live');
          if (status === 'live') setStatus('reconnecting');
        },
        onError(error) {
          if (!end()) return;
          report(error, 'live');
          if (isFatalError(error)) fail(error);
          else resubscribe();
        },
        onComplete() {
          // The server ended the stream (it is shutting down): come back from the last id.
          if (end()) resubscribe();
        },
      },
    );
    subscription = current;
  }

  function resubscribe() {
    if (closed || status === 'failed') return;
    if (status === 'live') setStatus('reconnecting');
    const delay = retryDelay(liveFailures++);
    void sleep(delay).then(() => subscribe(received));
  }

  async function start() {
    try {
      const since = options.cursor ?? null;
      const result = await retrying(
        () => trpc.user.sync.query(since ? { since } : undefined, { signal: stop.signal }),
        'sync',
      );
      if (closed) return;
      deliverSync(result);
      // From the old cursor, the replay covers the downtime for watched accounts too; repeats of
      // what the sync just delivered are skipped by updateTime.
      cursor ??= result.cursor;
      subscribe(since ?? result.cursor);
    } catch (error) {
      if (error instanceof NamecardClientClosedError || closed) return;
      fail(error);
    }
  }

  // ---- requests ----------------------------------------------------------------------------

  /** getUsers in batches of GET_USERS_BATCH, bounded parallel, input order; not merged. */
  async function fetchUsers(accounts: readonly string[], signal?: AbortSignal): Promise<Profile[]> {
    const unique = dedupe(accounts);
    if (unique.length === 0) return [];
    const batches = chunk(unique, GET_USERS_BATCH);
    const results = await mapLimit(batches, concurrency, (batch) =>
      trpc.user.getUsers.query({ accounts: batch }, signal ? { signal } : undefined),
    );
    return results.flat();
  }

  const one = (profile: Profile) => mergeInto(cache, [profile])[0]!;

  const getUser = async (account: string) => one(await trpc.user.getUser.query({ account }));

  function fetchShared(account: string): Promise<Profile> {
    let pending = inflight.get(account);
    if (!pending) {
      pending = getUser(account).finally(() => inflight.delete(account));
      inflight.set(account, pending);
    }
    return pending;
  }

  void start();

  return {
    ready,
    get status() {
      return status;
    },
    get cursor() {
      return cursor;
    },
    get account() {
      return me;
    },
    getMyInfo: async () => one(await trpc.user.getMyInfo.query()),
    updateMyInfo: async (patch) => one(await trpc.user.updateMyInfo.mutate(patch)),
    getUser,
    getUsers: async (accounts) => mergeInto(cache, await fetchUsers(accounts)),
    search: async (input) => {
      const page = await trpc.user.search.query(input);
      return { ...page, users: mergeInto(cache, page.users) };
    },
    mergeUsers: (...lists) => {
      const merged = mergeUsers(...lists);
      mergeInto(cache, merged);
      return merged;
    },
    async refreshIfStale(account, updateTime) {
      const known = cache.get(account);
      if (known && known.updateTime >= updateTime) return known;
      const joined = inflight.has(account);
      const fresh = await fetchShared(account);
      // A request that was already running may have been answered before that change: ask once more.
      if (joined && fresh.updateTime < updateTime) return fetchShared(account);
      return fresh;
    },
    cached: (account) => cache.get(account),
    async close() {
      if (closed) return queue;
      setStatus('closed');
      closed = true;
      stop.abort();
      subscription?.unsubscribe();
      subscription = null;
      for (const wake of [...wakers]) wake();
      if (!settled) rejectReady(new NamecardClientClosedError());
      await queue;
    },
    trpc,
  };
}
