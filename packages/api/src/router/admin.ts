import { TRPCError, type TRPCRouterRecord } from '@trpc/server';
import {
  AccountExistsError,
  AccountNotFoundError,
  endAllSessions,
  rotateToken,
  accountSchema,
  accountsSchema,
  createAccount,
  getProfiles,
  LIMITS,
  ProfileNotFoundError,
  profilePatchSchema,
  tokenSchema,
  TokenTakenError,
  updateProfile,
} from '@namecard/db';
import { z } from 'zod';
import { adminProcedure } from '../trpc';

export const adminRouter = {
  /** Creates an account and its profile; returns its token (a random one unless given). */
  createAccount: adminProcedure
    .input(
      z.object({
        account: accountSchema,
        token: tokenSchema.optional(),
        profile: profilePatchSchema.optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      try {
        const { account, token } = await createAccount(ctx.db, input);
        return { account, token };
      } catch (error) {
        if (error instanceof AccountExistsError || error instanceof TokenTakenError) {
          throw new TRPCError({ code: 'CONFLICT', message: error.message });
        }
        throw error;
      }
    }),

  /** Updates any user's profile; returns it with every field. */
  updateUser: adminProcedure
    .input(z.object({ account: accountSchema, patch: profilePatchSchema }))
    .mutation(async ({ ctx, input }) => {
      try {
        return (await updateProfile(ctx.db, input.account, input.patch)).profile;
      } catch (error) {
        if (error instanceof ProfileNotFoundError) {
          throw new TRPCError({ code: 'NOT_FOUND', message: `no user ${input.account}` });
        }
        throw error;
      }
    }),

  /** Ends every web session of an account (its token keeps working). */
  revokeSessions: adminProcedure
    .input(z.object({ account: accountSchema }))
    .mutation(async ({ ctx, input }) => {
      try {
        await endAllSessions(ctx.db, input.account);
        return { account: input.account, revoked: true };
      } catch (error) {
        if (error instanceof AccountNotFoundError) {
          throw new TRPCError({ code: 'NOT_FOUND', message: error.message });
        }
        throw error;
      }
    }),

  /**
   * Gives an account a new token (random unless given): the old one stops working at once, and
   * its web sessions end too. Returns the new token.
   */
  rotateToken: adminProcedure
    .input(z.object({ account: accountSchema, token: tokenSchema.optional() }))
    .mutation(async ({ ctx, input }) => {
      try {
        return {
          account: input.account,
          token: await rotateToken(ctx.db, input.account, input.token),
        };
      } catch (error) {
        if (error instanceof AccountNotFoundError) {
          throw new TRPCError({ code: 'NOT_FOUND', message: error.message });
        }
        if (error instanceof TokenTakenError) {
          throw new TRPCError({ code: 'CONFLICT', message: error.message });
        }
        throw error;
      }
    }),

  /** Up to 200 profiles with every field. */
  getUsers: adminProcedure
    .input(z.object({ accounts: accountsSchema(LIMITS.adminGetUsers) }))
    .query(({ ctx, input }) => getProfiles(ctx.db, input.accounts)),
} satisfies TRPCRouterRecord;
