/**
 * What a viewer may see of profiles: private fields (email, tel) only for the owner, for accounts
 * the owner added as friends, and for admin (who reads through getProfiles directly).
 */
import { type Db } from './db';
import { ownersSharingPrivateFields } from './friends';
import { keys } from './keys';
import { pipelineByNode, type BatchCommand } from './redis';
import { toProfile, withoutPrivateFields } from './profiles';
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

/**
 * Existing profiles as `viewer` may see them, deduplicated, in input order. One round trip: each
 * account's profile and whether it added the viewer as a friend go in the same pipeline (reading
 * the profiles first and checking friendships after cost two).
 */
export async function getProfilesAs(
  db: Db,
  viewer: string,
  accounts: readonly string[],
): Promise<Profile[]> {
  const unique = [...new Set(accounts)];
  if (unique.length === 0) return [];
  const commands: BatchCommand[] = [];
  for (const account of unique) {
    commands.push(['hgetall', keys.profile(account)]);
    if (account !== viewer) commands.push(['sismember', keys.friends(account), viewer]);
  }
  const results = await pipelineByNode(db.redis, commands);
  const out: Profile[] = [];
  let at = 0;
  for (const account of unique) {
    const [error, hash] = results[at++] ?? [new Error('pipeline answered too few replies'), null];
    if (error) throw error;
    let shares = true;
    if (account !== viewer) {
      const [friendError, isMember] = results[at++] ?? [null, 0];
      if (friendError) throw friendError;
      shares = isMember === 1;
    }
    const fields = hash as Record<string, string>;
    if (!fields.createTime) continue;
    out.push(toProfile(account, fields, shares));
  }
  return out;
}

export async function getProfileAs(
  db: Db,
  viewer: string,
  account: string,
): Promise<Profile | null> {
  const [profile] = await getProfilesAs(db, viewer, [account]);
  return profile ?? null;
}
