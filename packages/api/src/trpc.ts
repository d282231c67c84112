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
  accountForToken,
  secretsEqual,
  type ChangeFeed,
  type Db,
} from '@namecard/db';
import { ZodError } from 'zod';
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
  /** Cuts the connection (a live subscriber that stopped reading). */
  disconnect?: () => void;
}

export function createTRPCContext({
  deps,
  credentials,
  setCookie,
  disconnect,
}: CreateContextOptions) {
  return { ...deps, credentials, setCookie, disconnect };
}
export type Context = ReturnType<typeof createTRPCContext>;

/** One message per bad field: `nick: must be at most 64 characters; avatar: ...`. */
function describeIssues(error: ZodError) {
  const fieldErrors: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const at = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      // Each unknown key is a bad field of its own.
      for (const key of issue.keys)
        (fieldErrors[[...at, key].join('.')] ??= []).push('unknown field');
      continue;
    }
    (fieldErrors[at.length > 0 ? at.join('.') : '(input)'] ??= []).push(issue.message);
  }
  const message = Object.entries(fieldErrors)
    .map(([field, messages]) => `${field}: ${messages.join(', ')}`)
    .join('; ');
  return { fieldErrors, message };
}

const t = initTRPC.context<Context>().create({
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
    return { ...shape, data: { ...shape.data, fieldErrors: null } };
  },
  sse: {
    ping: { enabled: true, intervalMs: 15_000 },
    client: { reconnectAfterInactivityMs: 40_000 },
  },
});

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;

export const publicProcedure = t.procedure;

function bearerToken(header: string | undefined): string | null {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/** A signed-in account: `ctx.account` is set. */
export const userProcedure = t.procedure.use(async ({ ctx, next }) => {
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
    account = await accountForToken(ctx.db, token);
    if (!account)
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'unknown or revoked token' });
  } else if (sessionId) {
    account = await accountForSession(ctx.db, sessionId);
    if (!account)
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'session expired; sign in again' });
  }
  if (!account) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'sign in first: send "Authorization: Bearer <token>" or the session cookie',
    });
  }
  return next({ ctx: { ...ctx, account } });
});

/** Admin calls: the `X-Namecard-Admin` header must carry NAMECARD_ADMIN_SECRET. */
export const adminProcedure = t.procedure.use(({ ctx, next }) => {
  const given = ctx.credentials.adminSecret;
  if (!given) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'admin calls need the X-Namecard-Admin header',
    });
  }
  if (!secretsEqual(given, ctx.adminSecret)) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'wrong admin secret' });
  }
  return next({ ctx });
});
