import type { Metadata } from 'next';
import { FriendsList } from '../../../components/friends-list';
import { HydrateClient, prefetchFriendProfiles } from '../../../trpc/server';

export const metadata: Metadata = { title: 'Friends' };

/** The profiles of the accounts I added (NIM's `onusers`). */
export default async function FriendsPage() {
  await prefetchFriendProfiles();
  return (
    <HydrateClient>
      <FriendsList />
    </HydrateClient>
  );
}
