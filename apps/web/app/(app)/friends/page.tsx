import type { Metadata } from 'next';
import { LIMITS } from '@namecard/db/schema';
import { chunks } from '../../../lib/chunks';
import { FriendsList } from '../../../components/friends-list';
import { getQueryClient, handleApiError, HydrateClient, serverTrpc } from '../../../trpc/server';

export const metadata: Metadata = { title: 'Friends' };

/** The profiles of the accounts I added (NIM's `onusers`), 150 per `user.getUsers` call. */
export default async function FriendsPage() {
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
  return (
    <HydrateClient>
      <FriendsList />
    </HydrateClient>
  );
}
