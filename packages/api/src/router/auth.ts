import { TRPCError, type TRPCRouterRecord } from '@trpc/server';
import {
  accountForToken,
  accountSchema,
  createSession,
  deleteSession,
  demoAccountList,
  endAllSessions,
  profileExists,
  SESSION_TTL_SECONDS,
} from '@namecard/db';
import { serialize } from 'cookie';
import { z } from 'zod';
import { publicProcedure, SESSION_COOKIE, userProcedure, type Context } from '../trpc';

function sessionCookie(ctx: Context, value: string, maxAge: number) {
  return serialize(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    maxAge,
    secure: ctx.deps.secureCookies ?? false,
  });
}

/** Starts a web session for `account`: an HttpOnly cookie holding a random session id. */
async function startSession(ctx: Context, account: string) {
  const sessionId = await createSession(ctx.db, account);
  ctx.http.setCookie(sessionCookie(ctx, sessionId, SESSION_TTL_SECONDS));
  return { account };
}

export const authRouter = {
  /**
   * Checks an account's token and starts a web session (an HttpOnly cookie; the token is not
   * kept). Guesses are limited per account (every attempt counts, a success is given back) and
   * per client IP (failures count): past either, TOO_MANY_REQUESTS with `Retry-After`.
   */
  signIn: publicProcedure
    .input(
      z.object({ account: accountSchema, token: z.string().min(1, 'must not be empty').max(256) }),
    )
    .mutation(async ({ ctx, input }) => {
      const { signIn, authFailures } = ctx.deps.rateLimits;
      authFailures.check(ctx.clientIp);
      await signIn.consume(input.account);
      const owner = await accountForToken(ctx.db, input.token);
      if (owner !== input.account) {
        await authFailures.failed(ctx.clientIp);
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'wrong account or token' });
      }
      await signIn.refund(input.account);
      return startSession(ctx, owner);
    }),

  /** Memory mode: the demo accounts offered for one-click sign-in; `[]` in Redis mode. */
  demoAccounts: publicProcedure.query(({ ctx }) => (ctx.deps.demoSignIn ? demoAccountList() : [])),

  /** Memory mode only: starts a web session for a demo account without its token. */
  signInDemo: publicProcedure
    .input(z.object({ account: accountSchema }))
    .mutation(async ({ ctx, input }) => {
      const isDemo = demoAccountList().some((d) => d.account === input.account);
      if (!ctx.deps.demoSignIn || !isDemo) {
        throw new TRPCError({
          code: 'FORBIDDEN',
          message: ctx.deps.demoSignIn
            ? `${input.account} is not a demo account`
            : 'demo sign-in exists only in memory mode',
        });
      }
      if (!(await profileExists(ctx.db, input.account))) {
        throw new TRPCError({ code: 'NOT_FOUND', message: `no user ${input.account}` });
      }
      return startSession(ctx, input.account);
    }),

  /** Ends the web session, if any, and clears its cookie. */
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    const { sessionId } = ctx.credentials;
    if (sessionId) await deleteSession(ctx.db, sessionId);
    ctx.http.setCookie(sessionCookie(ctx, '', 0));
    return { signedOut: true };
  }),

  /** Ends every web session of my account (all devices), this one included. */
  signOutEverywhere: userProcedure.mutation(async ({ ctx }) => {
    await endAllSessions(ctx.db, ctx.account);
    ctx.http.setCookie(sessionCookie(ctx, '', 0));
    return { signedOut: true };
  }),
} satisfies TRPCRouterRecord;
