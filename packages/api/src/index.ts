import { type inferRouterInputs, type inferRouterOutputs } from '@trpc/server';
import { type AppRouter } from './root';

export { appRouter, type AppRouter } from './root';
export {
  ADMIN_HEADER,
  createCallerFactory,
  createTRPCContext,
  SESSION_COOKIE,
  type ApiDeps,
  type Context,
  type CreateContextOptions,
  type RequestCredentials,
} from './trpc';

/** Inputs of every procedure, e.g. `RouterInputs['user']['updateMyInfo']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Outputs of every procedure, e.g. `RouterOutputs['user']['getUsers']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;
