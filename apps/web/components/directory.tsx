'use client';
/**
 * The user directory: search as you type (debounced) on a nick or account prefix, kept in the URL
 * as `?q=` (replaceState: no server round trip per keystroke), cursor pages behind "Show more".
 * Rows are watched live, so a listed user's change shows in place.
 */
import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { charCount, LIMITS } from '@namecard/db/schema';
import { useEffect, useId, useState } from 'react';
import { nextCursor, searchInput, searchQuery } from '../lib/search';
import { useTRPC } from '../trpc/react';
import { UserRow } from './user-row';
import { useFriendProfiles } from './friends-list';
import { useWatch } from './live';

const DEBOUNCE_MS = 250;
/** Searches that show what the directory can do (the demo data has all of these). */
const EXAMPLES = ['alice', 'jose', '王', 'キャ', 'user00'];

export function Directory({ initialQuery }: { initialQuery: string }) {
  const trpc = useTRPC();
  const id = useId();
  const [text, setText] = useState(initialQuery);
  const [query, setQuery] = useState(() => searchQuery(initialQuery));

  useEffect(() => {
    const timer = setTimeout(() => setQuery(searchQuery(text)), DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text]);

  useEffect(() => {
    const url = query ? `/users?q=${encodeURIComponent(query)}` : '/users';
    if (`${window.location.pathname}${window.location.search}` !== url) {
      window.history.replaceState(window.history.state, '', url);
    }
  }, [query]);

  const search = useInfiniteQuery({
    ...trpc.user.search.infiniteQueryOptions(searchInput(query ?? ''), {
      getNextPageParam: nextCursor,
    }),
    enabled: query !== null,
    placeholderData: keepPreviousData,
  });
  const users = query && search.data ? search.data.pages.flatMap((p) => p.users) : [];
  useWatch(users.map((u) => u.account));

  const friends = useFriendProfiles();
  const tooLong = charCount(text.trim()) > LIMITS.query;
  return (
    <div className="directory">
      <div className="page-head">
        <h1>Directory</h1>
        <p className="muted">Find people by nick or account. Accents and case do not matter.</p>
      </div>
      <form
        role="search"
        className="searchbar"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(searchQuery(text));
        }}
      >
        <label htmlFor={`${id}-q`} className="searchbar-label">
          Search people
        </label>
        <input
          id={`${id}-q`}
          type="search"
          name="q"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="Nick or account, e.g. José, 王, user0042"
          autoComplete="off"
          spellCheck={false}
          aria-describedby={`${id}-status`}
          aria-invalid={tooLong || undefined}
        />
      </form>
      <p id={`${id}-status`} className="muted small result-status" role="status" aria-live="polite">
        {tooLong
          ? `A search can be at most ${LIMITS.query} characters.`
          : !query
            ? 'Type a nick or an account to search.'
            : search.isError
              ? `Search failed: ${search.error.message}`
              : search.isPending || (search.isPlaceholderData && search.isFetching)
                ? 'Searching…'
                : users.length === 0
                  ? `No one matches “${query}”.`
                  : `${users.length}${search.hasNextPage ? '+' : ''} ${users.length === 1 ? 'person' : 'people'}`}
      </p>
      {!query && !tooLong && (
        <div className="suggestions">
          <span className="muted small">Try</span>
          {EXAMPLES.map((example) => (
            <button
              key={example}
              type="button"
              className="chip"
              onClick={() => {
                setText(example);
                setQuery(example);
              }}
            >
              {example}
            </button>
          ))}
        </div>
      )}
      {!query && friends.users.length > 0 && (
        <section className="section" aria-labelledby={`${id}-friends`}>
          <h2 id={`${id}-friends`} className="section-title">
            Your friends
          </h2>
          <ul className="user-list" aria-label="Your friends">
            {friends.users.map((u) => (
              <UserRow key={u.account} user={u} />
            ))}
          </ul>
        </section>
      )}
      {users.length > 0 && (
        <ul className="user-list" aria-label="Search results">
          {users.map((u) => (
            <UserRow key={u.account} user={u} />
          ))}
        </ul>
      )}
      {query && search.hasNextPage && (
        <button
          type="button"
          className="btn btn-block"
          onClick={() => void search.fetchNextPage()}
          disabled={search.isFetchingNextPage}
        >
          {search.isFetchingNextPage ? 'Loading…' : 'Show more'}
        </button>
      )}
    </div>
  );
}
