/**
 * `@namecard/client/nim`: NetEase Yunxin IM's Web SDK user-profile API (`NIM.getInstance`,
 * `updateMyInfo`, `getUser`, `getUsers`, `mergeUsers`, `NIM.util.merge` and the callbacks) on top
 * of {@link createNamecardClient}, so code written against NIM runs with only the connection
 * options (`url`, `token`) added. Sync, live updates, resumption and the cache are the client's;
 * this module only translates: NIM's option names and callback order, `done(error, result)`,
 * NIM-like error codes, NIM's singleton per account.
 *
 * Where NIM and Namecard differ on purpose (validation, private fields, live updates for friends
 * and watched accounts), see "Coming from NetEase IM" in the repository's README.
 */
import { TRPCClientError } from '@trpc/client';
import {
  createNamecardClient,
  defaultRetryDelay,
  GET_USERS_BATCH,
  type NamecardClient,
  type NamecardClientStatus,
  type Profile,
  type ProfilePatch,
} from './client';
import { mergeUsers, type Versioned } from './merge';
import { type FetchLike } from './trpc';

/** A user profile in NIM's format: `gender` is `'unknown' | 'male' | 'female'`, times in ms. */
export type NIMUser = Omit<Profile, 'gender'> & { gender: 'unknown' | 'male' | 'female' };

/** NIM's `done(error, result)`: called exactly once, with `error` null on success. */
export type NIMDone<T> = (error: NIMError | null, result: T | null) => void;

/** What `NIM.getInstance` accepts: NIM's own options plus Namecard's `url` and `token`. */
export interface NIMOptions {
  /** The Namecard server (`http://localhost:4000`) or its tRPC endpoint. */
  url: string;
  /** The account: the key of the singleton. Must be the token's account (else error 302). */
  account: string;
  /** The account's Namecard token. */
  token: string;
  /** NIM's app key: accepted and ignored (a Namecard server serves one app). */
  appKey?: string;
  /** My profile, once the connection is up (before `onusers`); again after a resync. */
  onmyinfo?: (user: NIMUser) => void;
  /** My profile changed in another session (not through this instance's `updateMyInfo`). */
  onupdatemyinfo?: (user: NIMUser) => void;
  /** Friends' profiles at connect (all the first time; after `connect()`, those changed since). */
  onusers?: (users: NIMUser[]) => void;
  /** A friend's or a watched account's profile changed (live, not only when a message arrives). */
  onupdateuser?: (user: NIMUser) => void;
  /** `false`: no `onusers` at connect (default true, as in NIM). */
  syncFriendUsers?: boolean;
  /** Namecard extension: more accounts whose changes reach `onupdateuser` (at most 500). */
  watch?: readonly string[];
  /** Namecard extension: the `fetch` for every request (proxies, tracing, tests). */
  fetch?: FetchLike;
  /** The connection is up (first sync answered, or live again after a reconnect). */
  onconnect?: () => void;
  /** After `onmyinfo`/`onusers` of a connect. */
  onsyncdone?: () => void;
  /** The live connection dropped; it is being re-established. */
  onwillreconnect?: (info: { retryCount: number; duration: number }) => void;
  /**
   * The connection ended: with an error when the server refused it for good (302 bad token or
   * account, 403, ...); without one after `disconnect()` / `destroy()`.
   */
  ondisconnect?: (error?: NIMError) => void;
  /** Errors the connection handles itself (a failed sync or dropped stream, retried; a callback that threw). */
  onerror?: (error: NIMError) => void;
  /** Anything else NIM accepts (`debug`, `db`, ...) is ignored. */
  [other: string]: unknown;
}

/**
 * An error as NIM reports it: an `Error` with a NIM status `code` and `message` (plus `event`,
 * what caused it), and Namecard's `fieldErrors` (each bad field -> its messages) for bad input.
 *
 * Codes: 414 bad parameter (validation; `fieldErrors` says which field), 302 wrong token or
 * account, 403 forbidden, 404 no such user, 408 timeout, 416 too frequent, 417 conflict,
 * 415 network problem (no answer from the server), 500 server error, `'disconnected'` the
 * instance is not connected (after `disconnect()`, or the server refused the connection),
 * `'destroyed'` after `destroy()`.
 */
export class NIMError extends Error {
  override name = 'NIMError';
  readonly code: number | string;
  readonly event: { api: string; trpcCode?: string; httpStatus?: number };
  readonly fieldErrors: Record<string, string[]> | null;

  constructor(
    code: number | string,
    message: string,
    event: NIMError['event'],
    fieldErrors: Record<string, string[]> | null = null,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.event = event;
    this.fieldErrors = fieldErrors;
  }
}

/** tRPC error code -> NIM status code. */
const NIM_CODES: Record<string, number> = {
  BAD_REQUEST: 414,
  PARSE_ERROR: 414,
  PAYLOAD_TOO_LARGE: 414,
  UNPROCESSABLE_CONTENT: 414,
  UNAUTHORIZED: 302,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TIMEOUT: 408,
  CONFLICT: 417,
  TOO_MANY_REQUESTS: 416,
};

/** Any error from a call or the connection, as a {@link NIMError}. */
export function toNIMError(error: unknown, api: string): NIMError {
  if (error instanceof NIMError) return error;
  if (error instanceof TRPCClientError) {
    const data = (error as TRPCClientError<never>).data as
      | { code?: string; httpStatus?: number; fieldErrors?: Record<string, string[]> | null }
      | undefined;
    if (typeof data?.code === 'string') {
      return new NIMError(
        NIM_CODES[data.code] ?? 500,
        error.message,
        { api, trpcCode: data.code, ...(data.httpStatus ? { httpStatus: data.httpStatus } : {}) },
        data.fieldErrors ?? null,
        error,
      );
    }
    // No tRPC answer: the SSE handshake got an HTTP error (its status), or no answer at all.
    const status = (error.cause as { code?: unknown } | undefined)?.code;
    if (typeof status === 'number' && status === 401) {
      return new NIMError(302, error.message, { api, httpStatus: status }, null, error);
    }
    return new NIMError(415, error.message, { api }, null, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new NIMError(415, message, { api }, null, error);
}

/** A profile in NIM's format (`gender` never empty). */
function toNIMUser(profile: Profile): NIMUser {
  return { ...profile, gender: profile.gender === '' ? 'unknown' : profile.gender };
}

/**
 * NIM's `NIM.util.merge(target, ...sources)`: a new object with the own properties of every
 * argument, later ones winning, `undefined` values skipped. For profiles (both carrying an
 * `updateTime`), a source older than what is merged so far is skipped, so a late, stale copy
 * cannot roll a newer one back. The arguments are not modified.
 */
function merge<T extends object>(
  target: T | null | undefined,
  ...sources: (Partial<T> | null | undefined)[]
): T {
  const out: Record<string, unknown> = { ...(target ?? {}) };
  for (const source of sources) {
    if (!source) continue;
    const current = out.updateTime;
    const incoming = (source as { updateTime?: unknown }).updateTime;
    if (typeof current === 'number' && typeof incoming === 'number' && incoming < current) continue;
    for (const [key, value] of Object.entries(source)) if (value !== undefined) out[key] = value;
  }
  return out as T;
}

/** Calls `done` once (a throwing `done` goes to onerror) and returns the promise, whose rejection is handled when `done` is given. */
function settle<T>(
  promise: Promise<T>,
  done: NIMDone<T> | undefined,
  api: string,
  report: (error: NIMError) => void,
): Promise<T> {
  const nimPromise = promise.catch((error: unknown) => {
    throw toNIMError(error, api);
  });
  if (done) {
    nimPromise.then(
      (result) => callDone(done, null, result, report),
      (error: NIMError) => callDone(done, error, null, report),
    );
  }
  return nimPromise;
}

function callDone<T>(
  done: NIMDone<T>,
  error: NIMError | null,
  result: T | null,
  report: (error: NIMError) => void,
) {
  try {
    done(error, result);
  } catch (thrown) {
    report(toNIMError(thrown, 'done'));
  }
}

type State = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'destroyed';

/** Instances by account: `getInstance` is a singleton per account, as in NIM. */
const instances = new Map<string, NIM>();

/**
 * NIM's instance for one account. Create (or get) it with {@link NIM.getInstance}; it connects at
 * once. Every call takes NIM's `done(error, result)` and also returns a promise.
 */
export class NIM {
  /** NIM's utilities: `NIM.util.merge(a, b)`. */
  static readonly util = { merge };

  /**
   * The instance for `options.account`: created and connected on the first call; later calls
   * with the same account return the same instance with the new options applied (callbacks
   * included), and connect it again if it was disconnected.
   */
  static getInstance(options: NIMOptions): NIM {
    if (!options || typeof options.account !== 'string' || options.account === '') {
      throw new TypeError('NIM.getInstance: `account` is required');
    }
    const existing = instances.get(options.account);
    if (existing) {
      existing.setOptions(options);
      if (existing.state === 'disconnected') existing.connect();
      return existing;
    }
    const nim = new NIM(options);
    instances.set(options.account, nim);
    return nim;
  }

  private options: NIMOptions;
  private client: NamecardClient | null = null;
  private state: State = 'disconnected';
  /** Calls waiting for the current connection's first sync (woken when it is delivered or fails). */
  private readonly waiters = new Set<() => void>();
  /** The last error the connection reported: what a failed connection is reported with. */
  private failure: NIMError | null = null;
  /** Last event id delivered: `connect()` after `disconnect()` syncs incrementally from here. */
  private cursor: string | null = null;
  private retryCount = 0;
  private lastDelay = 0;
  /** Own `updateMyInfo` calls in flight, and the updateTimes they produced (their echoes are not `onupdatemyinfo`). */
  private ownPending = 0;
  private readonly ownTimes = new Set<number>();
  private held: Profile[] = [];

  private constructor(options: NIMOptions) {
    this.options = { ...options };
    this.connect();
  }

  /** The account this instance is for. */
  get account(): string {
    return this.options.account;
  }

  /** NIM's `setOptions`: new options (callbacks, token, url) apply from now on / at the next connect. */
  setOptions(options: Partial<NIMOptions>): void {
    if (options.account !== undefined && options.account !== this.options.account) {
      throw new TypeError('setOptions: the account of an instance cannot change');
    }
    this.options = { ...this.options, ...options };
  }

  /** Connects again after `disconnect()` (syncing what changed meanwhile); no-op when connected. */
  connect(): void {
    if (this.state === 'destroyed')
      throw new NIMError('destroyed', 'this NIM instance was destroyed', { api: 'connect' });
    if (this.client) return;
    const options = this.options;
    this.state = 'connecting';
    this.failure = null;
    this.retryCount = 0;
    let first = true;
    const client: NamecardClient = createNamecardClient({
      url: options.url,
      token: options.token,
      ...(options.syncFriendUsers === false ? { syncFriendUsers: false } : {}),
      ...(options.watch ? { watch: options.watch } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(this.cursor ? { cursor: this.cursor } : {}),
      // The client's back-off, noted for onwillreconnect's `duration`.
      retryDelay: (attempt) => (this.lastDelay = defaultRetryDelay(attempt)),
      onmyinfo: (me) => {
        if (me.account !== this.options.account) {
          // The token belongs to another account: NIM's "wrong account or token".
          const error = new NIMError(302, `the token is not for account ${this.options.account}`, {
            api: 'connect',
          });
          this.drop(client, error);
          return;
        }
        if (first) {
          first = false;
          this.state = 'connected';
          this.emit('onconnect');
        }
        this.emit('onmyinfo', toNIMUser(me));
        // onusers (if any) follows synchronously; the sync is complete after it.
        queueMicrotask(() => {
          if (this.client !== client) return;
          this.emit('onsyncdone');
          this.wake();
        });
      },
      onusers: (users) => this.emit('onusers', users.map(toNIMUser)),
      onupdatemyinfo: (me) => {
        this.backOnline();
        this.myInfoChanged(me);
      },
      onupdateuser: (user) => {
        this.backOnline();
        this.emit('onupdateuser', toNIMUser(user));
      },
      onerror: (error, source) => {
        const nimError = toNIMError(error, source);
        if (source !== 'callback') this.failure = nimError;
        this.report(nimError);
        // Calls waiting for the first sync fail now rather than wait for a retry to succeed.
        if (source === 'sync' && this.state === 'connecting') this.wake();
      },
      onstatus: (status) => this.statusChanged(client, status),
    });
    this.client = client;
  }

  /** Ends the connection but keeps the instance: `connect()` (or `getInstance`) resumes it. */
  disconnect(options: { done?: (error: NIMError | null) => void } = {}): Promise<void> {
    const client = this.client;
    if (client) this.drop(client);
    const closed = client ? client.close() : Promise.resolve();
    return this.finish(closed, options.done);
  }

  /** Ends the connection and the instance; `NIM.getInstance` then creates a new one. */
  destroy(options: { done?: (error: NIMError | null) => void } = {}): Promise<void> {
    const closing = this.disconnect();
    this.state = 'destroyed';
    if (instances.get(this.options.account) === this) instances.delete(this.options.account);
    return this.finish(closing, options.done);
  }

  /**
   * NIM's `updateMyInfo`: any of `nick`, `avatar`, `sign`, `gender`, `email`, `birth`, `tel`,
   * `custom` (`''` clears one). Bad values change nothing: `done` gets error 414 with
   * `fieldErrors` naming each bad field. `done(null, user)` gets my updated profile.
   */
  updateMyInfo(options: ProfilePatch & { done?: NIMDone<NIMUser> }): Promise<NIMUser> {
    const { done, ...patch } = options;
    return settle(
      this.whenConnected('updateMyInfo', async (client) => {
        this.ownPending++;
        try {
          const me = await client.updateMyInfo(patch);
          this.ownTimes.add(me.updateTime);
          return toNIMUser(me);
        } finally {
          if (--this.ownPending === 0) this.releaseHeld();
        }
      }),
      done,
      'updateMyInfo',
      (e) => this.report(e),
    );
  }

  /**
   * NIM's `getUser`: a cached copy answers unless `sync: true` (friends' and watched accounts'
   * copies are kept current by the live feed). An account that does not exist is error 404.
   */
  getUser(options: { account: string; sync?: boolean; done?: NIMDone<NIMUser> }): Promise<NIMUser> {
    const { account, sync, done } = options;
    return settle(
      this.whenConnected('getUser', async (client) => {
        const cached = sync ? undefined : client.cached(account);
        return toNIMUser(cached ?? (await client.getUser(account)));
      }),
      done,
      'getUser',
      (e) => this.report(e),
    );
  }

  /**
   * NIM's `getUsers`: at most 150 accounts (more is error 414 and no request is sent). Cached
   * copies answer unless `sync: true`; the rest are fetched in one request. The result keeps the
   * input order and leaves out accounts that do not exist.
   */
  getUsers(options: {
    accounts: readonly string[];
    sync?: boolean;
    done?: NIMDone<NIMUser[]>;
  }): Promise<NIMUser[]> {
    const { accounts, sync, done } = options;
    const api = 'getUsers';
    let result: Promise<NIMUser[]>;
    // JavaScript callers may pass anything.
    const isList: boolean = Array.isArray(accounts);
    if (!isList) {
      result = Promise.reject(
        new NIMError(
          414,
          'accounts: must be an array of accounts',
          { api },
          {
            accounts: ['must be an array of accounts'],
          },
        ),
      );
    } else if (accounts.length > GET_USERS_BATCH) {
      const reason = `must list at most ${GET_USERS_BATCH} accounts`;
      result = Promise.reject(
        new NIMError(414, `accounts: ${reason}`, { api }, { accounts: [reason] }),
      );
    } else {
      result = this.whenConnected(api, async (client) => {
        const missing = sync ? accounts : accounts.filter((a) => !client.cached(a));
        if (missing.length > 0) await client.getUsers(missing);
        // Every profile fetched or known is in the cache now; accounts that do not exist are not.
        const users: NIMUser[] = [];
        for (const account of new Set(accounts)) {
          const profile = client.cached(account);
          if (profile) users.push(toNIMUser(profile));
        }
        return users;
      });
    }
    return settle(result, done, api, (e) => this.report(e));
  }

  /**
   * NIM's `mergeUsers(users, userOrUsers)`: one profile per account, the newer `updateTime` wins
   * (on a tie the later copy). Returns a new array; neither argument is modified.
   */
  mergeUsers<U extends Versioned>(
    users: readonly U[] | null | undefined,
    userOrUsers: U | readonly U[] | null | undefined,
  ): U[] {
    const more =
      userOrUsers == null ? [] : Array.isArray(userOrUsers) ? userOrUsers : [userOrUsers as U];
    return mergeUsers<U>(users, more as readonly U[]);
  }

  // ---- internals -------------------------------------------------------------------------

  /**
   * Runs `call` once the current connection's first sync is delivered (NIM answers calls on a
   * connected instance). Fails when the instance is not connected, or when the connection's
   * first sync fails (with that error's code) instead of waiting for a retry.
   */
  private async whenConnected<T>(
    api: string,
    call: (client: NamecardClient) => Promise<T>,
  ): Promise<T> {
    if (this.state === 'connecting') await new Promise<void>((wake) => this.waiters.add(wake));
    const client = this.client;
    if (this.state === 'destroyed') {
      throw new NIMError('destroyed', 'this NIM instance was destroyed', { api });
    }
    if (!client || (this.state !== 'connected' && this.state !== 'reconnecting')) {
      const why = this.failure;
      throw new NIMError(
        why?.code ?? 'disconnected',
        why
          ? `not connected: ${why.message}`
          : 'not connected: call connect() or NIM.getInstance() again',
        { api },
        null,
        why ?? undefined,
      );
    }
    return call(client);
  }

  private wake() {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  private statusChanged(client: NamecardClient, status: NamecardClientStatus) {
    if (this.client !== client) return;
    if (status === 'reconnecting') {
      this.state = 'reconnecting';
      this.retryCount++;
      // The client computes the back-off right after saying `reconnecting`.
      // (0 when the stream reconnects at once by itself.)
      queueMicrotask(() => {
        this.emit('onwillreconnect', { retryCount: this.retryCount, duration: this.lastDelay });
        this.lastDelay = 0;
      });
    } else if (status === 'live') {
      this.backOnline();
      this.cursor = client.cursor;
    } else if (status === 'failed') {
      this.drop(
        client,
        this.failure ?? new NIMError(415, 'the connection failed', { api: 'connect' }),
      );
    }
  }

  /**
   * The stream is back after a drop: onconnect, before anything it delivers (what it replays
   * comes before the client says `live`).
   */
  private backOnline() {
    if (this.state !== 'reconnecting') return;
    this.state = 'connected';
    this.retryCount = 0;
    this.emit('onconnect');
  }

  private report(error: NIMError) {
    const onerror = this.options.onerror;
    if (!onerror) return;
    try {
      onerror(error);
    } catch {
      // nowhere left to report to
    }
  }

  /** Leaves the connection (disconnect, destroy, a refused connection); ondisconnect says so. */
  private drop(client: NamecardClient, error?: NIMError) {
    if (this.client !== client) return;
    this.cursor = client.cursor ?? this.cursor;
    this.client = null;
    if (this.state !== 'destroyed') this.state = 'disconnected';
    if (error) {
      this.failure = error;
      void client.close();
    }
    this.wake();
    this.emit('ondisconnect', error);
  }

  private finish(closing: Promise<void>, done?: (error: NIMError | null) => void): Promise<void> {
    const finished = closing.then(() => {
      if (done) {
        try {
          done(null);
        } catch (error) {
          this.report(toNIMError(error, 'done'));
        }
      }
    });
    return finished;
  }

  /** My profile changed: unless it is the echo of this instance's own updateMyInfo, onupdatemyinfo. */
  private myInfoChanged(me: Profile) {
    if (this.ownPending > 0) this.held.push(me);
    else this.deliverMyInfo(me);
  }

  private releaseHeld() {
    const held = this.held;
    this.held = [];
    for (const me of held) this.deliverMyInfo(me);
  }

  private deliverMyInfo(me: Profile) {
    if (this.ownTimes.delete(me.updateTime)) return;
    for (const t of this.ownTimes) if (t < me.updateTime) this.ownTimes.delete(t);
    this.emit('onupdatemyinfo', toNIMUser(me));
  }

  /** Calls a NIM callback by name (read at call time, so `setOptions` applies at once). */
  private emit<K extends CallbackName>(name: K, ...args: Parameters<NonNullable<NIMOptions[K]>>) {
    const fn = this.options[name] as ((...a: unknown[]) => void) | undefined;
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (error) {
      this.report(toNIMError(error, name));
    }
  }
}

type CallbackName =
  | 'onconnect'
  | 'onsyncdone'
  | 'onwillreconnect'
  | 'ondisconnect'
  | 'onmyinfo'
  | 'onupdatemyinfo'
  | 'onusers'
  | 'onupdateuser';

export default NIM;
