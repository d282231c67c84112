import { adminRouter } from './router/admin';
import { authRouter } from './router/auth';
import { friendRouter } from './router/friend';
import { userRouter } from './router/user';
import { createTRPCRouter } from './trpc';

export const appRouter = createTRPCRouter({
  user: userRouter,
  friend: friendRouter,
  auth: authRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
