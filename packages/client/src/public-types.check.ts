/**
 * Compile-time proof (no run-time code) that public-types.ts matches packages/db: checked by
 * `npm run typecheck`, never bundled.
 */
import type * as db from '@namecard/db';
import type * as published from './public-types';
import type { LIMITS } from '@namecard/db/schema';
import type { GET_USERS_BATCH, WATCH_LIMIT } from './client';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

export type ProfileMatches = Assert<Same<db.Profile, published.Profile>>;
export type ProfileKeysMatch = Assert<Same<keyof db.Profile, keyof published.Profile>>;
export type SyncResultMatches = Assert<Same<db.SyncResult, published.SyncResult>>;

export type LimitsMatch = Assert<
  Same<
    [typeof GET_USERS_BATCH, typeof WATCH_LIMIT],
    [(typeof LIMITS)['getUsers'], (typeof LIMITS)['watch']]
  >
>;
