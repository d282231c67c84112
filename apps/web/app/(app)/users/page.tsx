import type { Metadata } from 'next';
import { Directory } from '../../../components/directory';
import { nextCursor, searchInput, searchQuery } from '../../../lib/search';
import {
  getQueryClient,
  handleApiError,
  HydrateClient,
  prefetchFriendProfiles,
  serverTrpc,
} from '../../../trpc/server';

export const metadata: Metadata = { title: 'Directory' };

/** The user directory; `?q=` is the search, so a search can be shared and reloaded. */
export default async function UsersPage({
  searchParams,
}: {
  searchParams: Promise<{ q?: string | string[] }>;
}) {
  const { q } = await searchParams;
  const raw = Array.isArray(q) ? (q[0] ?? '') : (q ?? '');
  const query = searchQuery(raw);
  if (query) {
    await getQueryClient()
      .prefetchInfiniteQuery(
        serverTrpc().user.search.infiniteQueryOptions(searchInput(query), {
          getNextPageParam: nextCursor,
        }),
      )
      .catch(handleApiError);
  } else {
    // No search yet: the page shows my friends.
    await prefetchFriendProfiles();
  }
  return (
    <HydrateClient>
      <Directory initialQuery={raw} />
    </HydrateClient>
  );
}
