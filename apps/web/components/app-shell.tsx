'use client';
import { useMutation, useQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import type { ReactNode } from 'react';
import { useTRPC } from '../trpc/react';
import { Avatar } from './avatar';
import { LiveProvider, useLiveStatus } from './live';
import { Pending } from './pending';

const NAV = [
  { href: '/users', label: 'Directory' },
  { href: '/friends', label: 'Friends' },
  { href: '/me', label: 'My profile' },
] as const;

/** The frame of every private page: navigation, who I am, the live status, sign out. */
export function AppShell({ me, children }: { me: string; children: ReactNode }) {
  return (
    <LiveProvider me={me}>
      <Header />
      <main id="main" className="page">
        {children}
      </main>
    </LiveProvider>
  );
}

function Header() {
  const trpc = useTRPC();
  const pathname = usePathname();
  const { data: me } = useQuery(trpc.user.getMyInfo.queryOptions());
  const signOut = useMutation(
    trpc.auth.signOut.mutationOptions({
      onSettled: () => window.location.assign('/signin'),
    }),
  );
  return (
    <header className="topbar">
      <div className="topbar-inner">
        <Link href="/users" className="brand">
          <span className="brand-mark" aria-hidden>
            N
          </span>
          Namecard
        </Link>
        <nav aria-label="Main" className="nav">
          {NAV.map(({ href, label }) => {
            const current =
              pathname === href || (href === '/users' && pathname.startsWith('/users/'));
            return (
              <Link key={href} href={href} aria-current={current ? 'page' : undefined}>
                {label}
                <Pending />
              </Link>
            );
          })}
        </nav>
        <div className="topbar-me">
          <LiveBadge />
          {me && (
            <Link href="/me" className="me-chip" title={`Signed in as ${me.account}`}>
              <Avatar src={me.avatar} nick={me.nick} account={me.account} size="sm" />
              <span className="me-name">{me.nick || me.account}</span>
            </Link>
          )}
          <button
            type="button"
            className="btn btn-quiet"
            onClick={() => signOut.mutate()}
            disabled={signOut.isPending}
          >
            Sign out
          </button>
        </div>
      </div>
    </header>
  );
}

const LIVE_TEXT = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };

function LiveBadge() {
  const status = useLiveStatus();
  return (
    <span className={`live live-${status}`} data-live={status} role="status" title="Live updates">
      <span className="live-dot" aria-hidden />
      <span className="live-text">{LIVE_TEXT[status]}</span>
    </span>
  );
}
