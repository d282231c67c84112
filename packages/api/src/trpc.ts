/**
 * The tRPC setup of Namecard, in one place:
 *
 * 1. CONTEXT: what every procedure can reach. `createTRPCContext` is called once per request by
 *    the HTTP adapter (apps/server) with the request's credentials and a way to set a cookie.
 * 2. INITIALISATION: plain JSON on the wire (no transformer, so curl and other languages can
 *    call the API), validation errors shaped as one message per field, SSE keep-alive pings.
 * 3. THE PROCEDURE LADDER: `publicProcedure` (anyone), `userProcedure` (a signed-in account,
 *    by `Authorization: Bearer <token>` or the web session cookie), `adminProcedure` (the
 *    `X-Namecard-Admin` header carrying NAMECARD_ADMIN_SECRET).
 */
import { initTRPC, TRPCError } from '@trpc/server';
import {
  accountForSession,
  accountForTokenHash,
  hashSecret,
  isRedisUnavailableError,
  LIMITS,
  RateLimitedError,
  rememberedTokenHolder,
  secretsEqual,
  TokenNotHeldError,
  type ChangeFeed,
  type Db,
  type RateLimits,
} from '@namecard/db';
import { ZodError } from 'zod';
import { type ProcedureMeta } from './procedure-meta';
import { FieldError } from './router/errors';

export const SESSION_COOKIE = 'nc_session';
export const ADMIN_HEADER = 'x-namecard-admin';

/** Everything the API needs from the process that hosts it. */
export interface ApiDeps {
  db: Db;
  /** NAMECARD_ADMIN_SECRET. */
  adminSecret: string;
  /** Live change delivery for `user.onChange` (one pub/sub connection per process). */
  feed: ChangeFeed;
  /** Mark the session cookie `Secure` (set when the web app is served over https). */
  secureCookies?: boolean;
  /** Rate limits kept in Redis (sign-in guesses, bad credentials per IP, friend.add). */
  rateLimits: RateLimits;
  /**
   * Memory mode: the seeded demo accounts may start a web session without their token
   * (`auth.signInDemo`), so the web app's sign-in page can offer them with one click.
   */
  demoSignIn?: boolean;
}

export interface RequestCredentials {
  /** The `Authorization` header. */
  authorization?: string | undefined;
  /** The `X-Namecard-Admin` header. */
  adminSecret?: string | undefined;
  /** The session cookie's value. */
  sessionId?: string | undefined;
}

export interface CreateContextOptions {
  deps: ApiDeps;
  credentials: RequestCredentials;
  /** Adds a `Set-Cookie` header to the response. */
  setCookie: (cookie: string) => void;
  /** Sets a response header (`Retry-After` of a rate-limited call). */
  setHeader?: (name: string, value: string) => void;
  /**
   * Who is calling, for per-client limits: the socket's address, or the client's as a trusted
   * proxy reported it (apps/server, NAMECARD_TRUST_PROXY). IPv6 addresses as their /64.
   */
  clientIp?: string;
  /** Cuts the connection (a live subscriber that stopped reading). */
  disconnect?: () => void;
}

/**
 * The context of one request. Kept to a few keys: tRPC copies it, key by key, at every
 * middleware that adds to it (userProcedure adds `account`), so the process's dependencies sit
 * under `deps` (the store, `db`, also at the top: nearly every procedure uses it) and the
 * response's callbacks under `http`.
 */
export function createTRPCContext({
  deps,
  credentials,
  setCookie,
  setHeader,
  clientIp,
  disconnect,
}: CreateContextOptions) {
  return {
    db: deps.db,
    deps,
    credentials,
    clientIp: clientIp ?? 'unknown',
    http: {
      setCookie,
      setHeader: setHeader ?? (() => undefined),
      disconnect,
    },
  };
}
export type Context = ReturnType<typeof createTRPCContext>;

/** Fields named in one error answer; the rest are counted (the answer stays small). */
export const MAX_ERROR_FIELDS = 10;
/** Characters of one field name kept in an error answer. */
const MAX_FIELD_NAME = 64;

const clip = (s: string) => (s.length > MAX_FIELD_NAME ? `${s.slice(0, MAX_FIELD_NAME)}…` : s);

/**
 * One message per bad field: `nick: must be at most 64 characters; avatar: ...`. At most
 * MAX_ERROR_FIELDS fields are named (`...; and 99990 more`), whatever the input's size; field
 * names are input keys, so they live in a Map (a key named `__proto__` or `toString` is data).
 */
function describeIssues(error: ZodError) {
  const fields = new Map<string, string[]>();
  let more = 0;
  const add = (field: string, message: string) => {
    const messages = fields.get(field);
    if (messages) {
      if (messages.length < 3 && !messages.includes(message)) messages.push(message);
    } else if (fields.size < MAX_ERROR_FIELDS) fields.set(field, [message]);
    else more++;
  };
  for (const issue of error.issues) {
    const at = issue.path.map((p) => clip(String(p)));
    if (issue.code === 'unrecognized_keys') {
      // Each unknown key is a bad field of its own.
      for (const key of issue.keys) add([...at, clip(key)].join('.'), 'unknown field');
      continue;
    }
    add(at.length > 0 ? at.join('.') : '(input)', issue.message);
  }
  const parts = [...fields].map(([field, messages]) => `${field}: ${messages.join(', ')}`);
  if (more > 0) parts.push(`and ${more} more`);
  return { fieldErrors: Object.fromEntries(fields), message: parts.join('; ') };
}

/** What a client reads for an error whose details stay in the server's log. */
const INTERNAL_MESSAGE = 'internal server error (logged on the server)';

const t = initTRPC
  .context<Context>()
  .meta<ProcedureMeta>()
  .create({
    // Stack traces stay out of error responses unless explicitly developing.
    isDev: process.env.NODE_ENV === 'development',
    errorFormatter({ shape, error }) {
      if (error.code === 'BAD_REQUEST' && error.cause instanceof ZodError) {
        const { fieldErrors, message } = describeIssues(error.cause);
        return { ...shape, message, data: { ...shape.data, fieldErrors } };
      }
      if (error.cause instanceof FieldError) {
        const { field, reason } = error.cause;
        return { ...shape, data: { ...shape.data, fieldErrors: { [field]: [reason] } } };
      }
      if (error.cause instanceof RateLimitedError) {
        const { retryAfterSeconds } = error.cause;
        return { ...shape, data: { ...shape.data, fieldErrors: null, retryAfterSeconds } };
      }
      if (error.code === 'INTERNAL_SERVER_ERROR') {
        // Internal text (ioredis's, V8's) never reaches a client; the server logs the cause.
        return { ...shape, message: INTERNAL_MESSAGE, data: { ...shape.data, fieldErrors: null } };
      }
      if (error.code === 'BAD_REQUEST' && error.message === 'Batch call exceeds maximum size') {
        const message = `too many calls in one batch request (the limit is the server's NAMECARD_MAX_BATCH, ${LIMITS.batch} unless set)`;
        return { ...shape, message, data: { ...shape.data, fieldErrors: null } };
      }
      if (error.code === 'PAYLOAD_TOO_LARGE' && error.message === 'PAYLOAD_TOO_LARGE') {
        const message = 'the request body is too large';
        return { ...shape, message, data: { ...shape.data, fieldErrors: null } };
      }
      return { ...shape, data: { ...shape.data, fieldErrors: null } };
    },
    sse: {
      ping: { enabled: true, intervalMs: 15_000 },
      client: { reconnectAfterInactivityMs: 40_000 },
    },
  });

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * How every procedure ends: a Redis that does not answer becomes SERVICE_UNAVAILABLE (503, a
 * plain message, the cause logged), and a rate-limit refusal becomes TOO_MANY_REQUESTS with a
 * `Retry-After` header. Each rung of the ladder applies it in its own (one) middleware: a
 * middleware more is a level more of tRPC's per-call work (copies of the call's options).
 */
function mapFailure(ctx: Context, cause: unknown): TRPCError | null {
  if (cause instanceof RateLimitedError) {
    ctx.http.setHeader('Retry-After', String(cause.retryAfterSeconds));
    return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  }
  if (isRedisUnavailableError(cause)) {
    return new TRPCError({
      code: 'SERVICE_UNAVAILABLE',
      message: 'the data store is not answering; try again shortly',
      cause,
    });
  }
  return null;
}

/** Runs a middleware's work, then the procedure, with failures of either mapped (mapFailure). */
async function mapped<R extends { ok: boolean; error?: TRPCError }>(
  ctx: Context,
  run: () => Promise<R>,
): Promise<R> {
  let result: R;
  try {
    result = await run();
  } catch (cause) {
    const mappedCause = mapFailure(ctx, cause);
    if (mappedCause) throw mappedCause;
    throw cause;
  }
  if (result.ok) return result;
  const mappedError = mapFailure(ctx, result.error!.cause);
  if (mappedError) throw mappedError;
  return result;
}

export const publicProcedure = t.procedure.use(({ ctx, next }) => mapped(ctx, () => next()));

function bearerToken(header: string | undefined): string | null {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/**
 * Checks a credential under the per-IP limit of failed checks: refused at once while this IP is
 * over it, and a failure counted (answered TOO_MANY_REQUESTS instead of `failure` once it reaches
 * the limit).
 */
async function guarded<T>(
  ctx: Context,
  check: () => Promise<T | null> | T | null,
  failure: () => TRPCError,
): Promise<T> {
  ctx.deps.rateLimits.authFailures.check(ctx.clientIp);
  const value = await check();
  if (value !== null) return value;
  await ctx.deps.rateLimits.authFailures.failed(ctx.clientIp);
  // Made only on failure: an Error captures a stack trace, too costly for every request.
  throw failure();
}

const unknownToken = () =>
  new TRPCError({ code: 'UNAUTHORIZED', message: 'unknown or revoked token' });

/**
 * A signed-in account: `ctx.account` is set.
 *
 * A bearer token this process has seen before names, in its memory, the account that held it;
 * the token is still checked against that account's auth hash on every call, but not always
 * before the call starts:
 *
 * - A query by such a token starts at once, as the remembered account, while the token is
 *   checked (its Redis commands leave together: one round trip instead of two). Queries only
 *   read, so nothing is done that a failed check must undo: when the check fails, the query's
 *   answer is thrown away, unread, and the call fails as it would have.
 * - A mutation whose procedure checks the token itself (`.meta({ checksToken: true })`) runs as
 *   the remembered account with `ctx.unconfirmedToken` set to the token's hash; its write
 *   refuses, unapplied, if the token is not that account's (updateProfileAsTokenHolder). Any
 *   answer but success waits for the token's check as below, and a refused write runs again as
 *   the token's holder.
 * - Otherwise the token is checked first.
 *
 * `ctx.unconfirmedToken` is set only for such a mutation, null otherwise.
 */
export const userProcedure = t.procedure.use(({ ctx, type, meta, next }) =>
  mapped(ctx, async () => {
    const { authorization, sessionId } = ctx.credentials;
    let account: string | null = null;
    if (authorization !== undefined) {
      const token = bearerToken(authorization);
      if (!token) {
        throw new TRPCError({
          code: 'UNAUTHORIZED',
          message: 'the Authorization header must be "Bearer <token>"',
        });
      }
      const tokenHash = token.length > 1024 ? null : hashSecret(token);
      const guess = tokenHash ? rememberedTokenHolder(ctx.db, tokenHash) : null;
      const check = () => (tokenHash ? accountForTokenHash(ctx.db, tokenHash) : null);
      if (guess && type === 'mutation' && meta?.checksToken) {
        ctx.deps.rateLimits.authFailures.check(ctx.clientIp);
        const result = await next({ ctx: { account: guess, unconfirmedToken: tokenHash } });
        if (result.ok) return result;
        // Failed (refused by the write, or for any other reason): answered once the token is
        // checked; when it names another account now, the call runs again as that one.
        account = await guarded(ctx, check, unknownToken);
        const refused = result.error.cause instanceof TokenNotHeldError;
        if (account === guess && !refused) return result;
      } else {
        const early =
          guess && type === 'query'
            ? next({ ctx: { account: guess, unconfirmedToken: null } })
            : null;
        try {
          account = await guarded(ctx, check, unknownToken);
        } finally {
          // A failed check answers only after the early query has ended (it reads, nothing more).
          if (early && account !== guess) await early;
        }
        if (early && account === guess) return early;
      }
    } else if (sessionId) {
      // Not counted against the IP: an expired cookie is common (a browser calls several times
      // with it before signing in again), and a session id is 192 random bits, not guessable.
      account = sessionId.length > 1024 ? null : await accountForSession(ctx.db, sessionId);
      if (!account)
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'session expired; sign in again' });
    }
    if (!account) {
      throw new TRPCError({
        code: 'UNAUTHORIZED',
        message: 'sign in first: send "Authorization: Bearer <token>" or the session cookie',
      });
    }
    return next({ ctx: { account, unconfirmedToken: null } });
  }),
);

/** Admin calls: the `X-Namecard-Admin` header must carry NAMECARD_ADMIN_SECRET. */
export const adminProcedure = t.procedure.use(({ ctx, next }) =>
  mapped(ctx, async () => {
    const given = ctx.credentials.adminSecret;
    if (!given) {
      throw new TRPCError({
        code: 'UNAUTHORIZED',
        message: 'admin calls need the X-Namecard-Admin header',
      });
    }
    await guarded(
      ctx,
      () => (secretsEqual(given, ctx.deps.adminSecret) ? true : null),
      () => new TRPCError({ code: 'FORBIDDEN', message: 'wrong admin secret' }),
    );
    return next();
  }),
);
