import { TRPCError, type TRPCRouterRecord } from '@trpc/server';
import {
  accountSchema,
  addFriend,
  LIMITS,
  listFriends,
  profileExists,
  removeFriend,
} from '@namecard/db';
import { z } from 'zod';
import { userProcedure } from '../trpc';
import { badField } from './errors';

const friendInput = z.object({ account: accountSchema });

export const friendRouter = {
  /**
   * Adds an account to my friends: its changes reach me, and it sees my email and tel. Limited
   * per account (NAMECARD_RATE_FRIEND_ADD): TOO_MANY_REQUESTS with `Retry-After` past it.
   */
  add: userProcedure.input(friendInput).mutation(async ({ ctx, input }) => {
    if (input.account === ctx.account) {
      badField('account', 'you cannot add yourself');
    }
    await ctx.deps.rateLimits.friendAdd.consume(ctx.account);
    if (!(await profileExists(ctx.db, input.account))) {
      throw new TRPCError({ code: 'NOT_FOUND', message: `no user ${input.account}` });
    }
    const result = await addFriend(ctx.db, ctx.account, input.account);
    if (result === 'limit') {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: `you have ${LIMITS.friends} friends, the most allowed`,
      });
    }
    return { account: input.account, added: result === 'added' };
  }),

  remove: userProcedure.input(friendInput).mutation(async ({ ctx, input }) => {
    return {
      account: input.account,
      removed: await removeFriend(ctx.db, ctx.account, input.account),
    };
  }),

  /** The accounts I added, sorted. */
  list: userProcedure.query(({ ctx }) => listFriends(ctx.db, ctx.account)),
} satisfies TRPCRouterRecord;
