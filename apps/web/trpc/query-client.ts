import {
  defaultShouldDehydrateQuery,
  MutationCache,
  QueryCache,
  QueryClient,
} from '@tanstack/react-query';
import { signInHref } from '../lib/paths';

/**
 * One factory for both sides: the server builds one per request (prefetch, then dehydrate into
 * the page), the browser one per tab. Data stays fresh for a minute by itself: the live
 * subscription writes every change into the cache, so refetching on focus or mount would only
 * repeat what is already known.
 */
export function createQueryClient() {
  return new QueryClient({
    queryCache: new QueryCache({ onError: toSignInIfSignedOut }),
    mutationCache: new MutationCache({
      // A wrong token on the sign-in page is UNAUTHORIZED too, and is shown there.
      onError: (error, _v, _c, mutation) => {
        if ((mutation.options.mutationKey?.[0] as string[] | undefined)?.[0] !== 'auth') {
          toSignInIfSignedOut(error);
        }
      },
    }),
    defaultOptions: {
      queries: {
        staleTime: 60_000,
        refetchOnWindowFocus: false,
        retry: (failures, error) => failures < 2 && !isClientError(error),
      },
      dehydrate: {
        shouldDehydrateQuery: (query) =>
          defaultShouldDehydrateQuery(query) || query.state.status === 'pending',
      },
    },
  });
}

/**
 * The session ended (signed out in another tab, expired): go to sign in, and come back here
 * afterwards. Only in the browser; the server side redirects in trpc/server.tsx.
 */
function toSignInIfSignedOut(error: unknown) {
  const code = (error as { data?: { code?: string } } | null)?.data?.code;
  if (code === 'UNAUTHORIZED' && typeof window !== 'undefined') {
    window.location.assign(signInHref(window.location.pathname + window.location.search));
  }
}

/** 4xx answers (bad input, not found, signed out) do not get better by asking again. */
function isClientError(error: unknown): boolean {
  const status = (error as { data?: { httpStatus?: number } } | null)?.data?.httpStatus;
  return typeof status === 'number' && status >= 400 && status < 500;
}
