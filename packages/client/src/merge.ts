/**
 * Merging profile lists the way NIM's `mergeUsers` does: one profile per account, the newer
 * `updateTime` wins. Pure functions, no client needed.
 */

/** The least a profile needs for merging: who it is and when it last changed (ms). */
export interface Versioned {
  account: string;
  updateTime: number;
}

/**
 * Whether `candidate` should replace `current` for the same account: it is newer, or as new
 * (equal `updateTime`), in which case the later one wins. A copy fetched later may differ from an
 * equally old one in what the viewer may see (`email`, `tel` appear once the owner adds the viewer
 * as a friend), so the later copy is the better one.
 */
export function supersedes(candidate: Versioned, current: Versioned | undefined): boolean {
  return current === undefined || candidate.updateTime >= current.updateTime;
}

/**
 * Merges profile lists by account: for each account the copy with the newest `updateTime` wins;
 * on equal `updateTime` the one that comes later (later list, or later in the same list) wins.
 * The result lists each account once, in the order accounts first appear across the lists.
 * The inputs are not modified.
 *
 * @example
 * mergeUsers(cached, fetched) // NIM: mergeUsers(olds, news)
 */
export function mergeUsers<P extends Versioned>(
  ...lists: readonly (readonly P[] | null | undefined)[]
): P[] {
  const merged = new Map<string, P>();
  for (const list of lists) {
    for (const profile of list ?? []) {
      if (supersedes(profile, merged.get(profile.account))) merged.set(profile.account, profile);
    }
  }
  return [...merged.values()];
}

/**
 * Merges profiles into a cache (account -> profile) by the same rule as {@link mergeUsers} and
 * returns, for each given profile, the copy the cache holds afterwards (never older than the
 * given one).
 */
export function mergeInto<P extends Versioned>(cache: Map<string, P>, profiles: readonly P[]): P[] {
  for (const profile of profiles) {
    if (supersedes(profile, cache.get(profile.account))) cache.set(profile.account, profile);
  }
  return profiles.map((p) => cache.get(p.account)!);
}
