import { defaultShouldDehydrateQuery, QueryClient } from '@tanstack/react-query';

/**
 * One factory for both sides: the server builds one per request (prefetch, then dehydrate into
 * the page), the browser one per tab. Data stays fresh for a minute by itself: the live
 * subscription writes every change into the cache, so refetching on focus or mount would only
 * repeat what is already known.
 */
export function createQueryClient() {
  return new QueryClient({
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

/** 4xx answers (bad input, not found, signed out) do not get better by asking again. */
function isClientError(error: unknown): boolean {
  const status = (error as { data?: { httpStatus?: number } } | null)?.data?.httpStatus;
  return typeof status === 'number' && status >= 400 && status < 500;
}
