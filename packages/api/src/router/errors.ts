import { TRPCError } from '@trpc/server';

/** The signed-in account has no profile any more. */
export function accountGone(account: string): never {
  throw new TRPCError({ code: 'NOT_FOUND', message: `account ${account} has no profile` });
}
