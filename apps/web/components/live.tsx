'use client';
/**
 * The app's one live subscription (`user.onChange` over SSE through the web origin's /trpc):
 * my own profile (from my other tabs), my friends', and the accounts on screen, which components
 * announce with `useWatch`. Every `profile` event is written into the query cache in place (my
 * profile, a profile page, directory rows, the friends list), so every view of that account
 * updates at once; `resync` refetches everything.
 *
 * When the set of watched accounts changes, or the stream ends or fails (an API restart, a lost
 * network), it subscribes again with the last event id it saw: the server replays what was
 * missed, then goes live, so the page catches up without a reload. The very first subscription
 * of a tab has no id yet, so when it is live the data read before it (the server's first paint)
 * is refetched once: a change made in between is not lost either.
 */
import { type InfiniteData, useQueryClient } from '@tanstack/react-query';
import type { RouterOutputs } from '@namecard/api';
import { LIMITS, type Profile } from '@namecard/db/schema';
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { signInHref } from '../lib/paths';
import { useTRPC, useTRPCClient } from '../trpc/react';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting';

interface LiveApi {
  status: LiveStatus;
  watch: (accounts: readonly string[]) => () => void;
}

const LiveContext = createContext<LiveApi>({ status: 'connecting', watch: () => () => undefined });

type SearchPage = RouterOutputs['user']['search'];

/** Newer wins: an event never overwrites a copy that is already more recent. */
function newer(old: Profile, next: Profile): Profile {
  return next.updateTime >= old.updateTime ? next : old;
}

export function LiveProvider({ me, children }: { me: string; children: ReactNode }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const counts = useRef(new Map<string, number>());
  const lastEventId = useRef<string | null>(null);
  const [watched, setWatched] = useState<string[]>([]);
  const [status, setStatus] = useState<LiveStatus>('connecting');

  const refresh = useCallback(() => {
    const next = [...counts.current.keys()]
      .filter((a) => a !== me)
      .sort()
      .slice(0, LIMITS.watch);
    setWatched((prev) => (prev.join('\n') === next.join('\n') ? prev : next));
  }, [me]);

  const watch = useCallback(
    (accounts: readonly string[]) => {
      const unique = [...new Set(accounts)];
      for (const a of unique) counts.current.set(a, (counts.current.get(a) ?? 0) + 1);
      refresh();
      return () => {
        for (const a of unique) {
          const n = (counts.current.get(a) ?? 1) - 1;
          if (n <= 0) counts.current.delete(a);
          else counts.current.set(a, n);
        }
        refresh();
      };
    },
    [refresh],
  );

  const apply = useCallback(
    (profile: Profile) => {
      const { account } = profile;
      if (account === me) {
        queryClient.setQueryData(trpc.user.getMyInfo.queryKey(), (old) =>
          old ? newer(old, profile) : profile,
        );
      }
      queryClient.setQueryData(trpc.user.getUser.queryKey({ account }), (old) =>
        old ? newer(old, profile) : old,
      );
      queryClient.setQueriesData<Profile[]>(trpc.user.getUsers.pathFilter(), (old) =>
        old?.map((p) => (p.account === account ? newer(p, profile) : p)),
      );
      queryClient.setQueriesData<InfiniteData<SearchPage> | SearchPage>(
        trpc.user.search.pathFilter(),
        (old) => {
          if (!old || !('pages' in old)) return old;
          return {
            ...old,
            pages: old.pages.map((page) => ({
              ...page,
              users: page.users.map((p) => (p.account === account ? newer(p, profile) : p)),
            })),
          };
        },
      );
    },
    [me, queryClient, trpc],
  );

  useEffect(() => {
    let stopped = false;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let subscription: { unsubscribe(): void } | undefined;

    const again = () => {
      if (stopped) return;
      subscription?.unsubscribe();
      setStatus('reconnecting');
      // 0.5 s, 1 s, 2 s, then every 4 s until the API answers again.
      timer = setTimeout(start, Math.min(500 * 2 ** failures++, 4000));
    };
    function start() {
      // A first subscription has no event id to resume from: what the page already holds was
      // read before it, so once it is live, refresh that (changes in between would be lost).
      const before =
        lastEventId.current === null ? new Set(queryClient.getQueryCache().getAll()) : null;
      subscription = client.user.onChange.subscribe(
        { accounts: watched, lastEventId: lastEventId.current },
        {
          onConnectionStateChange(state) {
            if (state.state === 'connecting' && state.error) setStatus('reconnecting');
          },
          onData({ id, data }) {
            lastEventId.current = id;
            if (data.type === 'ready') {
              failures = 0;
              setStatus('live');
              if (before?.size) {
                // Without cancelling a fetch in flight (a "Show more" just clicked).
                void queryClient.invalidateQueries(
                  { predicate: (q) => before.has(q) },
                  { cancelRefetch: false },
                );
              }
            } else if (data.type === 'profile') {
              apply(data.profile);
            } else {
              void queryClient.invalidateQueries();
            }
          },
          onError(error) {
            const code = (error.data as { code?: string } | undefined)?.code;
            if (code === 'UNAUTHORIZED') {
              window.location.assign(signInHref(window.location.pathname + window.location.search));
              return;
            }
            again();
          },
          // The server ends subscriptions when it shuts down: resume elsewhere.
          onComplete: again,
        },
      );
    }
    start();
    return () => {
      stopped = true;
      clearTimeout(timer);
      subscription?.unsubscribe();
    };
  }, [client, watched, apply, queryClient]);

  const value = useMemo(() => ({ status, watch }), [status, watch]);
  return <LiveContext value={value}>{children}</LiveContext>;
}

/** Keeps these accounts in the live subscription while the calling component is on screen. */
export function useWatch(accounts: readonly string[]) {
  const { watch } = useContext(LiveContext);
  const key = accounts.join('\n');
  useEffect(() => watch(key ? key.split('\n') : []), [watch, key]);
}

export function useLiveStatus(): LiveStatus {
  return useContext(LiveContext).status;
}
