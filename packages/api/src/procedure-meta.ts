/**
 * What a procedure may declare with `.meta()` (trpc.ts). In a file of its own, with no imports:
 * every procedure's type names it, and the published client bundles those declarations (see
 * client-types.ts), which must not reach the store's types.
 */
export interface ProcedureMeta {
  /**
   * The procedure's writes check the caller's token themselves, in their own Redis step, when
   * `ctx.unconfirmedToken` is set (and answer nothing else before they do): see userProcedure.
   */
  checksToken?: boolean;
}
