import type { Metadata } from 'next';
import { ProfileView } from '../../../../components/profile-view';
import { getQueryClient, handleApiError, HydrateClient, serverTrpc } from '../../../../trpc/server';

type Params = { params: Promise<{ account: string }> };

export async function generateMetadata({ params }: Params): Promise<Metadata> {
  return { title: decodeURIComponent((await params).account) };
}

/** A user's profile as I may see it; an unknown account is a real 404. */
export default async function UserPage({ params }: Params) {
  const account = decodeURIComponent((await params).account);
  const trpc = serverTrpc();
  const queryClient = getQueryClient();
  // Awaited, not just prefetched: a missing account must answer 404 before anything streams.
  await Promise.all([
    queryClient.fetchQuery(trpc.user.getUser.queryOptions({ account })),
    queryClient.prefetchQuery(trpc.friend.list.queryOptions()),
  ]).catch(handleApiError);
  return (
    <HydrateClient>
      <ProfileView account={account} />
    </HydrateClient>
  );
}
