'use client';
/**
 * A user's profile as the server lets me see it (email and phone only where they added me),
 * with Add friend / Remove friend, updated live while it is open.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { GENDER_LABEL } from '../lib/profile';
import { useTRPC } from '../trpc/react';
import { Avatar } from './avatar';
import { useWatch } from './live';

export function ProfileView({ account }: { account: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const user = useQuery(trpc.user.getUser.queryOptions({ account }));
  const me = useQuery(trpc.user.getMyInfo.queryOptions());
  const friends = useQuery(trpc.friend.list.queryOptions());
  useWatch([account]);

  const onFriendsChanged = () =>
    Promise.all([
      queryClient.invalidateQueries(trpc.friend.list.pathFilter()),
      queryClient.invalidateQueries(trpc.user.getUsers.pathFilter()),
    ]);
  const add = useMutation(trpc.friend.add.mutationOptions({ onSuccess: onFriendsChanged }));
  const remove = useMutation(trpc.friend.remove.mutationOptions({ onSuccess: onFriendsChanged }));

  if (user.isPending) return <p className="muted">Loading…</p>;
  if (user.isError)
    return <p className="alert">This profile could not be loaded: {user.error.message}</p>;
  const p = user.data;
  const isMe = me.data?.account === p.account;
  const isFriend = friends.data?.includes(p.account) ?? false;
  const busy = add.isPending || remove.isPending;
  const failure = add.error ?? remove.error;

  const details: [string, string][] = [
    ['Gender', GENDER_LABEL[p.gender] ?? p.gender],
    ['Birth date', p.birth || 'Not given'],
  ];
  if (p.email !== undefined) details.push(['Email', p.email || 'Not given']);
  if (p.tel !== undefined) details.push(['Phone', p.tel || 'Not given']);

  return (
    <article className="profile" aria-labelledby="profile-name">
      <p className="crumbs">
        <Link href="/users">← Directory</Link>
      </p>
      <section className="card hero">
        <Avatar src={p.avatar} nick={p.nick} account={p.account} size="lg" />
        <div className="hero-text">
          <h1 id="profile-name" className="hero-name">
            {p.nick || p.account}
          </h1>
          <p className="hero-account">@{p.account}</p>
          {p.sign && <p className="hero-sign">{p.sign}</p>}
        </div>
        <div className="hero-actions">
          {isMe ? (
            <Link href="/me" className="btn btn-primary">
              Edit my profile
            </Link>
          ) : isFriend ? (
            <button
              type="button"
              className="btn"
              disabled={busy}
              onClick={() => remove.mutate({ account: p.account })}
            >
              Remove friend
            </button>
          ) : (
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy}
              onClick={() => add.mutate({ account: p.account })}
            >
              Add friend
            </button>
          )}
          {isFriend && !isMe && <span className="badge">Friend</span>}
        </div>
      </section>
      {failure && (
        <p className="alert" role="alert">
          {failure.message}
        </p>
      )}
      <section className="card" aria-label="Details">
        <dl className="details">
          {details.map(([term, value]) => (
            <div key={term} className="detail">
              <dt>{term}</dt>
              <dd>{value}</dd>
            </div>
          ))}
          {p.custom && (
            <div className="detail detail-wide">
              <dt>Custom</dt>
              <dd>
                <pre className="mono">{p.custom}</pre>
              </dd>
            </div>
          )}
        </dl>
        {!isMe && p.email === undefined && (
          <p className="muted small">
            Email and phone are shown only to people @{p.account} added as a friend.
          </p>
        )}
      </section>
    </article>
  );
}
