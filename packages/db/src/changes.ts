/**
 * The change logs: one per partition (see keys.ts), a sorted set of event JSON scored by its
 * event id. The scripts in scripts.ts write an event in the same step as the profile and keep the
 * newest `logMaxLen` of each partition (trimming in steps of 1%).
 *
 * Event ids are per partition: decimal numbers, `max(Redis clock ms * 1000, last id + 1)` of
 * that partition's sequence: increasing, and never handed out twice even when Redis loses its
 * newest writes (a restored snapshot, kill -9 with AOF everysec, a promoted replica), because the
 * clock has moved past the lost ids. Readers hold a cursor (cursor.ts): their position in every
 * partition. A position that is no longer in its partition's log (trimmed, lost, or from another
 * data set) cannot be resumed from (`resync`).
 * (A stream would be the natural type, but ioredis-mock rewrites explicit stream ids; a sorted
 * set behaves the same on both.)
 */
import {
  compareEventIds,
  encodeCursor,
  parseCursor,
  startPositions,
  type Positions,
} from './cursor';
import { type Db } from './db';
import { ALL_PARTITIONS, keys, partitionOf, PARTITIONS } from './keys';
import { toProfile } from './profiles';
import { pipelineByNode, repliesOrThrow, type BatchCommand } from './redis';
import { type Profile } from './schema';

export interface ProfileChangeEvent {
  /** Event id within the account's partition (a decimal number as a string; opaque to clients). */
  id: string;
  type: 'profile';
  account: string;
  /** The whole profile after the change, with every field (filter before showing it). */
  profile: Profile;
}

export type ChangeEvent = ProfileChangeEvent;

/** Parses the JSON an event is logged and published as. */
export function parseEvent(json: string): ProfileChangeEvent {
  const raw = JSON.parse(json) as { id: string; account: string; profile: Record<string, unknown> };
  return {
    id: raw.id,
    type: 'profile',
    account: raw.account,
    profile: toProfile(raw.account, raw.profile),
  };
}

/** The newest event id of every partition ('0' before its first). */
export async function newestPositions(db: Db): Promise<Positions> {
  const replies = await pipelineByNode(
    db.redis,
    ALL_PARTITIONS.map((p) => ['get', keys.logSeq(p)]),
  );
  return repliesOrThrow(replies).map((v) => (typeof v === 'string' ? v : '0'));
}

/** The cursor of everything logged so far (every partition's newest id). */
export async function lastEventId(db: Db): Promise<string> {
  return encodeCursor(await newestPositions(db));
}

/** The cursor after `event`: `positions` with the event's partition moved up to it. */
export function advance(positions: Positions, event: ProfileChangeEvent): Positions {
  const p = partitionOf(event.account);
  if (compareEventIds(event.id, positions[p]!) <= 0) return positions;
  const next = [...positions];
  next[p] = event.id;
  return next;
}

export interface CursorStep {
  /** Whether the event moved the cursor (else it was seen already). */
  advanced: boolean;
  positions: Positions;
  /** `positions` encoded (`encodeCursor`). */
  text: string;
}

const cursorSteps = new WeakMap<ProfileChangeEvent, Map<string, CursorStep>>();

/**
 * `advance` and `encodeCursor` of the result, remembered per event and previous cursor: the feed
 * hands one event object to every subscriber it reaches, and subscribers that were at the same
 * cursor (usual in a fan-out) are then at the same next one, so thousands of them share one
 * step instead of each copying its positions and encoding them. Positions are never changed in
 * place, so sharing them is safe.
 */
export function advanceCursor(
  positions: Positions,
  text: string,
  event: ProfileChangeEvent,
): CursorStep {
  let steps = cursorSteps.get(event);
  if (!steps) cursorSteps.set(event, (steps = new Map<string, CursorStep>()));
  let step = steps.get(text);
  if (!step) {
    const next = advance(positions, event);
    step =
      next === positions
        ? { advanced: false, positions, text }
        : { advanced: true, positions: next, text: encodeCursor(next) };
    steps.set(text, step);
  }
  return step;
}

export interface ResumePoint {
  /** The cursor of the newest event of every partition now. */
  newest: string;
  /**
   * Whether a reader that saw everything up to `from` can go on from there: every position of
   * `from` is '0' or still in its partition's log, and not past its newest id. Otherwise the
   * reader must resync: a log was trimmed past it, or Redis lost it (and may since have logged
   * other events), or `from` is from another layout or an old server.
   */
  ok: boolean;
  /** Partitions whose position cannot be resumed from (all of them for a foreign cursor). */
  lost: number[];
  /** `from`'s positions (empty for a foreign cursor). */
  from: Positions;
  /** `newest`'s positions. */
  newestPositions: Positions;
}

/**
 * Checks a resume point: one GET and one ZCOUNT per partition, sent to each node at once. Throws
 * InvalidCursorError for a malformed cursor.
 */
export async function resumePoint(db: Db, from: string): Promise<ResumePoint> {
  const parsed = parseCursor(from);
  const positions = parsed.kind === 'positions' ? parsed.positions : startPositions();
  const commands: BatchCommand[] = [];
  for (const p of ALL_PARTITIONS) {
    const at = positions[p]!;
    commands.push(['get', keys.logSeq(p)]);
    if (at !== '0') commands.push(['zcount', keys.log(p), at, at]);
  }
  const replies = repliesOrThrow(await pipelineByNode(db.redis, commands));
  const newest: Positions = [];
  const lost: number[] = [];
  let k = 0;
  for (const p of ALL_PARTITIONS) {
    const seq = replies[k++];
    newest.push(typeof seq === 'string' ? seq : '0');
    const at = positions[p]!;
    if (at === '0') continue;
    const count = replies[k++] as number;
    if (count === 0 || compareEventIds(at, newest[p]!) > 0) lost.push(p);
  }
  const foreign = parsed.kind === 'foreign';
  return {
    newest: encodeCursor(newest),
    ok: !foreign && lost.length === 0,
    lost: foreign ? [...ALL_PARTITIONS] : lost,
    from: foreign ? [] : positions,
    newestPositions: newest,
  };
}

export interface LogRead {
  events: ChangeEvent[];
  /** True when the cursor cannot be resumed from (trimmed, lost, or foreign): resync. */
  gap: boolean;
  /** The cursor after the events read (`afterId` when none). */
  cursor: string;
}

/**
 * Up to `count` events after the cursor `afterId`, from every partition, oldest id first (ids of
 * different partitions follow their shards' clocks: close to, not exactly, the order of writes).
 */
export async function readLogSince(db: Db, afterId: string, count = 1000): Promise<LogRead> {
  const point = await resumePoint(db, afterId);
  const from = point.from.length > 0 ? point.from : startPositions();
  const replies = repliesOrThrow(
    await pipelineByNode(
      db.redis,
      ALL_PARTITIONS.map((p) => [
        'zrangebyscore',
        keys.log(p),
        `(${from[p]}`,
        '+inf',
        'LIMIT',
        0,
        count,
      ]),
    ),
  );
  const merged = (replies as string[][])
    .flat()
    .map(parseEvent)
    .sort((a, b) => compareEventIds(a.id, b.id) || (a.account < b.account ? -1 : 1))
    .slice(0, count);
  let positions = from;
  for (const event of merged) positions = advance(positions, event);
  return { events: merged, gap: !point.ok, cursor: encodeCursor(positions) };
}

export interface AccountsRead {
  /** Events of the accounts after `after` up to `upto` (per partition), oldest id first. */
  events: ProfileChangeEvent[];
  /** True when an account's own log no longer reaches back to `after`: the reader must resync. */
  gap: boolean;
}

/**
 * What a subscriber that saw everything up to the cursor `after` has missed of `accounts`, up to
 * the cursor `upto`: read from each account's own change log, so it costs O(k + their events)
 * for k accounts, whatever the length of the logs and whatever other accounts wrote meanwhile.
 * Cursors may also be given as positions.
 */
export async function readAccountsSince(
  db: Db,
  accounts: Iterable<string>,
  after: string | Positions,
  upto: string | Positions,
): Promise<AccountsRead> {
  const list = [...new Set(accounts)];
  const from = typeof after === 'string' ? positionsOf(after) : after;
  const to = typeof upto === 'string' ? positionsOf(upto) : upto;
  const wanted = list.filter((a) => {
    const p = partitionOf(a);
    return compareEventIds(from[p]!, to[p]!) < 0;
  });
  if (wanted.length === 0) return { events: [], gap: false };
  const commands: BatchCommand[] = [];
  for (const account of wanted) {
    const p = partitionOf(account);
    commands.push(['hget', keys.profile(account), '_logFloor']);
    commands.push(['zrangebyscore', keys.accountLog(account), `(${from[p]}`, to[p]!]);
  }
  const replies = repliesOrThrow(await pipelineByNode(db.redis, commands));
  const events: ProfileChangeEvent[] = [];
  let gap = false;
  wanted.forEach((account, i) => {
    const floor = replies[2 * i];
    const entries = replies[2 * i + 1] as string[];
    if (typeof floor === 'string' && compareEventIds(from[partitionOf(account)]!, floor) < 0) {
      gap = true;
    }
    for (const json of entries) events.push(parseEvent(json));
  });
  events.sort((a, b) => compareEventIds(a.id, b.id));
  return { events, gap };
}

/** The positions of a cursor of this layout (InvalidCursorError for anything else). */
function positionsOf(cursor: string): Positions {
  const parsed = parseCursor(cursor);
  if (parsed.kind !== 'positions' || parsed.positions.length !== PARTITIONS) {
    throw new Error('a cursor of another layout cannot be read from');
  }
  return parsed.positions;
}
