import { charCount, LIMITS } from '@namecard/db/schema';

/** Rows per directory page. */
export const PAGE_SIZE = 20;

/** The query as the directory sends it (trimmed), or null when there is nothing to search. */
export function searchQuery(raw: string | null | undefined): string | null {
  const q = (raw ?? '').trim();
  if (!q || charCount(q) > LIMITS.query) return null;
  return q;
}

export const searchInput = (query: string) => ({ query, limit: PAGE_SIZE });

export const nextCursor = (page: { nextCursor: string | null }) => page.nextCursor ?? undefined;
