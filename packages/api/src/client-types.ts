/**
 * The router's types as a client sees them: every procedure's input, output and error shape,
 * without the server-side context (`Db`, `ChangeFeed`, and through them ioredis). Clients only
 * need the procedures, and a published client (`@namecard/client`) bundles these declarations:
 * naming the context would drag the store's and ioredis's types into every consumer's build.
 *
 * Type-only: nothing here exists at run time. `createTRPCClient<AppRouter>` works with this
 * `AppRouter` exactly as with the server's (same procedures, same error shape).
 */
import type {
  inferRouterInputs,
  inferRouterOutputs,
  TRPCBuiltRouter,
  TRPCDecorateCreateRouterOptions,
} from '@trpc/server';
import type { AppRouter as ServerRouter } from './root';
import type { adminRouter } from './router/admin';
import type { authRouter } from './router/auth';
import type { friendRouter } from './router/friend';
import type { userRouter } from './router/user';

/** The error shape of every procedure (`error.data.fieldErrors` per bad field; see trpc.ts). */
type ErrorShape = (typeof userRouter)['getMyInfo']['_def']['$types']['errorShape'];

/** `AppRouter` for clients: the server's procedures and error shape, with an opaque context. */
export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: ErrorShape; transformer: false },
  TRPCDecorateCreateRouterOptions<{
    user: typeof userRouter;
    friend: typeof friendRouter;
    auth: typeof authRouter;
    admin: typeof adminRouter;
  }>
>;

/** Inputs of every procedure, e.g. `RouterInputs['user']['updateMyInfo']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Outputs of every procedure, e.g. `RouterOutputs['user']['getUsers']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

// Compile-time guard (types only): the same procedures, error shape and transformer as the
// server's router, so a router added in root.ts without being added here fails the typecheck.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type Server = ServerRouter['_def'];
type Client = AppRouter['_def'];
type _SameAsServer = Assert<
  Same<
    [
      Server['record'],
      Server['_config']['$types']['errorShape'],
      Server['_config']['$types']['transformer'],
    ],
    [
      Client['record'],
      Client['_config']['$types']['errorShape'],
      Client['_config']['$types']['transformer'],
    ]
  >
>;
