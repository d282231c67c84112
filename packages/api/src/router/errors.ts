import { TRPCError } from '@trpc/server';

/** A bad input field found past schema validation; shaped like validation errors (fieldErrors). */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Rejects one input field with BAD_REQUEST and `data.fieldErrors: { [field]: [reason] }`. */
export function badField(field: string, reason: string): never {
  const cause = new FieldError(field, reason);
  throw new TRPCError({ code: 'BAD_REQUEST', message: cause.message, cause });
}

/** The signed-in account has no profile any more. */
export function accountGone(account: string): never {
  throw new TRPCError({ code: 'NOT_FOUND', message: `account ${account} has no profile` });
}
