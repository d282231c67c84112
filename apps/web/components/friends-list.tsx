'use client';
import { useQueries, useQuery } from '@tanstack/react-query';
import { LIMITS } from '@namecard/db/schema';
import Link from 'next/link';
import { chunks } from '../lib/chunks';
import { useTRPC } from '../trpc/react';
import { UserRow } from './user-row';

/**
 * The profiles of the accounts I added. Their changes reach the live subscription without
 * watching (the server follows my friends), and land in these `user.getUsers` caches.
 */
export function useFriendProfiles() {
  const trpc = useTRPC();
  const friends = useQuery(trpc.friend.list.queryOptions());
  const pages = useQueries({
    queries: chunks(friends.data ?? [], LIMITS.getUsers).map((accounts) =>
      trpc.user.getUsers.queryOptions({ accounts }),
    ),
  });
  return {
    users: pages.flatMap((q) => q.data ?? []),
    loading: friends.isPending || pages.some((q) => q.isPending),
    failed: friends.error ?? pages.find((q) => q.error)?.error,
  };
}

export function FriendsList() {
  const { users, loading, failed } = useFriendProfiles();

  return (
    <div className="friends">
      <div className="page-head">
        <h1>Friends</h1>
        <p className="muted">
          People you added. You see their changes live, and they see your email and phone.
        </p>
      </div>
      {failed ? (
        <p className="alert">Your friends could not be loaded: {failed.message}</p>
      ) : loading ? (
        <p className="muted">Loading…</p>
      ) : users.length === 0 ? (
        <div className="card empty">
          <p>You have not added anyone yet.</p>
          <Link href="/users" className="btn btn-primary">
            Find people
          </Link>
        </div>
      ) : (
        <ul className="user-list" aria-label="Friends">
          {users.map((u) => (
            <UserRow key={u.account} user={u} />
          ))}
        </ul>
      )}
    </div>
  );
}
