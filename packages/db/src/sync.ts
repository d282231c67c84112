/**
 * Login-time sync (NIM's onmyinfo + incremental onusers): my profile, and my friends' profiles
 * that changed after a cursor. The cursor is an event id, read before the profiles, so it can be
 * passed as `lastEventId` to the live subscription with no gap between the two.
 */
import { lastEventId } from './changes';
import { type Db } from './db';
import { listFriends } from './friends';
import { getProfile, readProfiles } from './profiles';
import { type Profile } from './schema';
import { viewProfiles } from './visibility';

export interface SyncResult {
  myInfo: Profile;
  users: Profile[];
  cursor: string;
}

export async function syncUser(
  db: Db,
  account: string,
  since?: string | null,
): Promise<SyncResult | null> {
  const cursor = await lastEventId(db);
  const myInfo = await getProfile(db, account);
  if (!myInfo) return null;
  const friends = await readProfiles(db, await listFriends(db, account));
  const after = since ? BigInt(since) : -1n;
  const changed = friends.filter((f) => BigInt(f.seq) > after).map((f) => f.profile);
  return { myInfo, users: await viewProfiles(db, account, changed), cursor };
}
