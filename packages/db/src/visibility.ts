/**
 * What a viewer may see of profiles: private fields (email, tel) only for the owner, for accounts
 * the owner added as friends, and for admin (who reads through getProfiles directly).
 */
import { type Db } from './db';
import { ownersSharingPrivateFields } from './friends';
import { getProfiles, withoutPrivateFields } from './profiles';
import { type Profile } from './schema';

/** Filters profiles for one viewer. */
export async function viewProfiles(
  db: Db,
  viewer: string,
  profiles: readonly Profile[],
): Promise<Profile[]> {
  const sharing = await ownersSharingPrivateFields(
    db,
    profiles.map((p) => p.account),
    viewer,
  );
  return profiles.map((p) => (sharing.has(p.account) ? p : withoutPrivateFields(p)));
}

/** Existing profiles as `viewer` may see them, deduplicated, in input order. */
export async function getProfilesAs(
  db: Db,
  viewer: string,
  accounts: readonly string[],
): Promise<Profile[]> {
  return viewProfiles(db, viewer, await getProfiles(db, accounts));
}

export async function getProfileAs(
  db: Db,
  viewer: string,
  account: string,
): Promise<Profile | null> {
  const [profile] = await getProfilesAs(db, viewer, [account]);
  return profile ?? null;
}
