/**
 * What a viewer may see of profiles: private fields (email, tel) only for the owner, for accounts
 * the owner added as friends, and for admin (who reads through getProfiles directly).
 */
import { type Db } from './db';
import { ownersSharingPrivateFields } from './friends';
import { keys, partitionOf } from './keys';
import { pipelineByNode, type BatchCommand } from './redis';
import { STORED_FIELDS, storedFields, toProfile, withoutPrivateFields } from './profiles';
import { type Profile } from './schema';
import { runVariadicScript } from './scripts';

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
 * account's profile and whether it added the viewer as a friend are read together. On Redis
 * (and on a cluster, per partition, in parallel) that is one script call (VIEW_PROFILES in
 * scripts.ts); in memory mode, where a command costs no parsing but a script runs in a Lua VM
 * written in JavaScript, one pipeline.
 */
export async function getProfilesAs(
  db: Db,
  viewer: string,
  accounts: readonly string[],
): Promise<Profile[]> {
  const unique = [...new Set(accounts)];
  if (unique.length === 0) return [];
  const read = db.mode === 'memory' ? readByPipeline : readByScript;
  const { values, shares } = await read(db, viewer, unique);
  const out: Profile[] = [];
  for (let i = 0; i < unique.length; i++) {
    const fields = storedFields(values[i]!);
    if (!fields.createTime) continue;
    const account = unique[i]!;
    out.push(toProfile(account, fields, account === viewer || shares[i]!));
  }
  return out;
}

interface ViewReads {
  /** Per account, the HMGET of STORED_FIELDS. */
  values: (string | null)[][];
  /** Per account, whether it added the viewer as a friend. */
  shares: boolean[];
}

async function readByPipeline(db: Db, viewer: string, unique: string[]): Promise<ViewReads> {
  const commands: BatchCommand[] = [];
  for (const account of unique) {
    commands.push(['hmget', keys.profile(account), ...STORED_FIELDS]);
    commands.push(['sismember', keys.friends(account), viewer]);
  }
  const results = await pipelineByNode(db.redis, commands);
  const values: (string | null)[][] = [];
  const shares: boolean[] = [];
  for (let i = 0; i < unique.length; i++) {
    const [error, fields] = results[2 * i] ?? [new Error('pipeline answered too few replies')];
    if (error) throw error;
    const [friendError, isMember] = results[2 * i + 1] ?? [null, 0];
    if (friendError) throw friendError;
    values.push(fields as (string | null)[]);
    shares.push(isMember === 1);
  }
  return { values, shares };
}

async function readByScript(db: Db, viewer: string, unique: string[]): Promise<ViewReads> {
  // One call for all on one Redis; on a cluster one per partition (a script's keys share a slot).
  const groups = new Map<number, number[]>();
  for (let i = 0; i < unique.length; i++) {
    const group = db.cluster ? partitionOf(unique[i]!) : 0;
    const list = groups.get(group);
    if (list) list.push(i);
    else groups.set(group, [i]);
  }
  const values: (string | null)[][] = new Array<(string | null)[]>(unique.length);
  const shares: boolean[] = new Array<boolean>(unique.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const scriptKeys = [
        ...indexes.map((i) => keys.profile(unique[i]!)),
        ...indexes.map((i) => keys.friends(unique[i]!)),
      ];
      const reply = (await runVariadicScript(db.redis, 'ncViewProfiles', scriptKeys, [
        viewer,
        ...STORED_FIELDS,
      ])) as unknown[];
      indexes.forEach((i, k) => {
        values[i] = reply[2 * k] as (string | null)[];
        shares[i] = reply[2 * k + 1] === 1;
      });
    }),
  );
  return { values, shares };
}

export async function getProfileAs(
  db: Db,
  viewer: string,
  account: string,
): Promise<Profile | null> {
  const [profile] = await getProfilesAs(db, viewer, [account]);
  return profile ?? null;
}
