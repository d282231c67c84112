/**
 * The two types of `@namecard/db` that the router's declarations name: `Profile` and
 * `SyncResult`. The published declarations (dist/*.d.ts) take them from here instead of from
 * packages/db (see tsdown.config.ts), because there `Profile` is `z.infer<typeof profileSchema>`:
 * bundling that would bundle zod's own declarations, which do not type-check once bundled, and
 * the package does not install zod. `public-types.check.ts` proves both identical to the
 * originals, so a change of the schema fails `npm run typecheck` until this file follows.
 *
 * The build serves this file's text as the declarations of `@namecard/db`: keep it to exported
 * interfaces and types (valid in a `.d.ts`), with no imports and no values. If the routers'
 * declarations ever name another `@namecard/db` type, the build fails (missing export) until it
 * is added here.
 */

/** A profile as the API returns it; `email` and `tel` only where the viewer may see them. */
export interface Profile {
  account: string;
  nick: string;
  avatar: string;
  sign: string;
  gender: '' | 'unknown' | 'male' | 'female';
  email?: string | undefined;
  birth: string;
  tel?: string | undefined;
  custom: string;
  createTime: number;
  updateTime: number;
}

/** `user.sync`: my profile, friends' profiles changed since the cursor, and the new cursor. */
export interface SyncResult {
  myInfo: Profile;
  users: Profile[];
  cursor: string;
}
