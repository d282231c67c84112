import { tracked, TRPCError, type TRPCRouterRecord } from '@trpc/server';
import {
  accountSchema,
  accountsSchema,
  eventIdSchema,
  getProfile,
  getProfileAs,
  getProfilesAs,
  holdsToken,
  InvalidCursorError,
  isWellFormedCursor,
  LIMITS,
  liveChanges,
  liveData,
  ProfileNotFoundError,
  profilePatchSchema,
  searchDirectory,
  searchInputSchema,
  SubscriptionLimitError,
  syncUser,
  TokenNotHeldError,
  updateProfile,
  updateProfileAsTokenHolder,
  viewProfiles,
} from '@namecard/db';
import { z } from 'zod';
import { userProcedure } from '../trpc';
import { accountGone, badField } from './errors';

export const userRouter = {
  /** My profile, every field (NIM: getMyInfo). */
  getMyInfo: userProcedure.query(async ({ ctx }) => {
    return (await getProfile(ctx.db, ctx.account)) ?? accountGone(ctx.account);
  }),

  /**
   * Applies a partial update to my profile (NIM: updateMyInfo); `''` clears a field. It checks
   * the caller's token itself when userProcedure leaves it to it (`ctx.unconfirmedToken`).
   */
  updateMyInfo: userProcedure
    .meta({ checksToken: true })
    .input(profilePatchSchema)
    .mutation(async ({ ctx, input }) => {
      const { db, account, unconfirmedToken } = ctx;
      if (Object.keys(input).length === 0) {
        if (unconfirmedToken !== null && !(await holdsToken(db, account, unconfirmedToken))) {
          throw new TokenNotHeldError(account);
        }
        return (await getProfile(db, account)) ?? accountGone(account);
      }
      try {
        const event =
          unconfirmedToken === null
            ? await updateProfile(db, account, input)
            : await updateProfileAsTokenHolder(db, account, unconfirmedToken, input);
        return event.profile;
      } catch (error) {
        if (error instanceof ProfileNotFoundError) accountGone(account);
        throw error;
      }
    }),

  /** One profile (NIM: getUser); email/tel only where the owner added me as a friend. */
  getUser: userProcedure
    .input(z.object({ account: accountSchema }))
    .query(async ({ ctx, input }) => {
      const profile = await getProfileAs(ctx.db, ctx.account, input.account);
      if (!profile) throw new TRPCError({ code: 'NOT_FOUND', message: `no user ${input.account}` });
      return profile;
    }),

  /** Up to 150 profiles: existing ones, deduplicated, in input order (NIM: getUsers). */
  getUsers: userProcedure
    .input(z.object({ accounts: accountsSchema(LIMITS.getUsers) }))
    .query(({ ctx, input }) => getProfilesAs(ctx.db, ctx.account, input.accounts)),

  /** Directory search: prefix of a nick or an account id, paged by an opaque cursor. */
  search: userProcedure.input(searchInputSchema).query(async ({ ctx, input }) => {
    try {
      const page = await searchDirectory(ctx.db, input.query, input.limit, input.cursor);
      return {
        users: await viewProfiles(ctx.db, ctx.account, page.profiles),
        nextCursor: page.nextCursor,
      };
    } catch (error) {
      if (error instanceof InvalidCursorError) {
        badField('cursor', error.message);
      }
      throw error;
    }
  }),

  /**
   * Login-time sync (NIM: onmyinfo + onusers): my profile, and my friends' profiles changed
   * after `since`, in pages of `limit` friends (pass `nextPage` back as `page` until it is
   * null). The returned cursor is the `since` of the next sync and can be passed as
   * `lastEventId` to `user.onChange`; `full` says the answer holds every friend (replace, do
   * not merge).
   */
  sync: userProcedure
    .input(
      z
        .object({
          since: eventIdSchema.refine(isWellFormedCursor, 'must be an event id').nullish(),
          page: z.string().max(512).nullish(),
          limit: z.number().int().min(1).max(LIMITS.syncPage).optional(),
        })
        .optional(),
    )
    .query(async ({ ctx, input }) => {
      try {
        return (await syncUser(ctx.db, ctx.account, input ?? {})) ?? accountGone(ctx.account);
      } catch (error) {
        if (error instanceof InvalidCursorError) badField('page', error.message);
        throw error;
      }
    }),

  /**
   * Live changes (NIM: onupdatemyinfo + onupdateuser), over SSE: my own profile (from my other
   * sessions), my friends', and those of `accounts`. Each item is `tracked()` with its event id;
   * on reconnect the client sends the last one as `lastEventId` and gets what it missed, then
   * live events, with no gap and no duplicate. Items: `ready` (live from here on), `profile`,
   * and `resync` (the log no longer reaches back that far: refetch, then go on).
   */
  onChange: userProcedure
    .input(
      z
        .object({
          accounts: z
            .array(accountSchema)
            .max(LIMITS.watch, `must list at most ${LIMITS.watch} accounts`)
            .optional(),
          lastEventId: eventIdSchema.refine(isWellFormedCursor, 'must be an event id').nullish(),
        })
        .optional(),
    )
    .subscription(async function* ({ ctx, input, signal }) {
      const items = liveChanges({
        db: ctx.db,
        feed: ctx.deps.feed,
        viewer: ctx.account,
        accounts: input?.accounts ?? [],
        lastEventId: input?.lastEventId ?? null,
        ...(signal ? { signal } : {}),
        ...(ctx.http.disconnect ? { onOverflow: ctx.http.disconnect } : {}),
      });
      try {
        for await (const item of items) yield tracked(item.id, liveData(item));
      } catch (error) {
        if (error instanceof SubscriptionLimitError) {
          throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: error.message });
        }
        throw error;
      }
    }),
} satisfies TRPCRouterRecord;
