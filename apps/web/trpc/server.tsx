/**
 * tRPC for server components: the first paint is rendered with the viewer's own cookie, so the
 * page arrives with its data (prefetched into a per-request QueryClient and dehydrated into the
 * HTML), and the browser's queries start from there instead of fetching again.
 */
import { dehydrate, HydrationBoundary } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { createTRPCOptionsProxy } from '@trpc/tanstack-react-query';
import type { AppRouter } from '@namecard/api';
import { headers } from 'next/headers';
import { notFound, redirect } from 'next/navigation';
import { cache, type ReactNode } from 'react';
import { LIMITS } from '@namecard/db/schema';
import { apiBaseUrl } from '../lib/api-url';
import { chunks } from '../lib/chunks';
import { PATH_HEADER, signInHref } from '../lib/paths';
import { createQueryClient } from './query-client';

/** The incoming request's cookie and host, passed on to the API. */
const forwardedHeaders = cache(async () => {
  const incoming = await headers();
  const out: Record<string, string> = {};
  const cookie = incoming.get('cookie');
  if (cookie) out.cookie = cookie;
  const host = incoming.get('x-forwarded-host') ?? incoming.get('host');
  if (host) out['x-forwarded-host'] = host;
  out['x-forwarded-proto'] = incoming.get('x-forwarded-proto') ?? 'http';
  return out;
});

/** One QueryClient per request (React's cache() is per request on the server). */
export const getQueryClient = cache(createQueryClient);

const getClient = cache(() =>
  createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${apiBaseUrl()}/trpc`,
        headers: forwardedHeaders,
        fetch: (url, init) => fetch(url, { ...init, cache: 'no-store' }),
      }),
    ],
  }),
);

export function serverTrpc() {
  return createTRPCOptionsProxy<AppRouter>({
    client: getClient(),
    queryClient: getQueryClient,
  });
}

/** The tRPC client itself, for calls whose answer decides the page (redirect, 404). */
export const serverClient = () => getClient();

/** Wraps a page in the data prefetched during this request. */
export function HydrateClient({ children }: { children: ReactNode }) {
  return <HydrationBoundary state={dehydrate(getQueryClient())}>{children}</HydrationBoundary>;
}

export function errorCode(error: unknown): string | undefined {
  if (error instanceof TRPCClientError) {
    return (error.data as { code?: string } | undefined)?.code;
  }
  return undefined;
}

/**
 * Handles what an API error means for the page being rendered: signed out goes to sign in (and
 * back here afterwards), not found is the 404 page; anything else is thrown to the error page.
 */
export async function handleApiError(error: unknown): Promise<never> {
  const code = errorCode(error);
  if (code === 'UNAUTHORIZED') {
    const path = (await headers()).get(PATH_HEADER) ?? '/me';
    redirect(signInHref(path));
  }
  if (code === 'NOT_FOUND' || code === 'BAD_REQUEST') notFound();
  throw error;
}

/** Prefetches my friends' profiles (`friend.list`, then `user.getUsers` 150 at a time). */
export async function prefetchFriendProfiles() {
  const trpc = serverTrpc();
  const queryClient = getQueryClient();
  const friends = await queryClient
    .fetchQuery(trpc.friend.list.queryOptions())
    .catch(handleApiError);
  await Promise.all(
    chunks(friends, LIMITS.getUsers).map((accounts) =>
      queryClient.prefetchQuery(trpc.user.getUsers.queryOptions({ accounts })),
    ),
  );
}
