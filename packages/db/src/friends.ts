/**
 * Friends: the accounts one account has added. Adding is one-way (as a contact list is): it makes
 * the friend's changes reach me and lets the friend see my private fields.
 */
import { type Db } from './db';
import { friendsNotice } from './feed';
import { keys } from './keys';
import { pipelineByNode } from './redis';
import { channelName, publishCommand, runScript } from './scripts';
import { LIMITS } from './schema';

export type AddFriendResult = 'added' | 'already' | 'limit';

export async function addFriend(db: Db, account: string, friend: string): Promise<AddFriendResult> {
  // One script checks, adds and publishes, so parallel adds cannot pass the limit. Live
  // subscriptions of this account (and of whoever watches it) learn of the change.
  const result = await runScript(
    db.redis,
    'ncAddFriend',
    [keys.friends(account)],
    [
      friend,
      String(LIMITS.friends),
      channelName(db, keys.channel(account)),
      friendsNotice(account),
      publishCommand(db),
    ],
  );
  return result as AddFriendResult;
}

/** Returns whether the friend was on the list. */
export async function removeFriend(db: Db, account: string, friend: string): Promise<boolean> {
  const result = await runScript(
    db.redis,
    'ncRemoveFriend',
    [keys.friends(account)],
    [friend, channelName(db, keys.channel(account)), friendsNotice(account), publishCommand(db)],
  );
  return result === 'removed';
}

export async function listFriends(db: Db, account: string): Promise<string[]> {
  return (await db.redis.smembers(keys.friends(account))).sort();
}

/**
 * Of `owners`, those whose private fields `viewer` may see: the viewer themself and every owner
 * who added the viewer as a friend.
 */
export async function ownersSharingPrivateFields(
  db: Db,
  owners: readonly string[],
  viewer: string,
): Promise<Set<string>> {
  const others = [...new Set(owners)].filter((o) => o !== viewer);
  const sharing = new Set<string>([viewer]);
  if (others.length === 0) return sharing;
  const results = await pipelineByNode(
    db.redis,
    others.map((owner) => ['sismember', keys.friends(owner), viewer]),
  );
  results.forEach(([error, isMember], i) => {
    if (error) throw error;
    if (isMember === 1) sharing.add(others[i]!);
  });
  return sharing;
}
