/**
 * Demo data for memory mode: generated users with Latin, Chinese and Japanese nicks and realistic
 * fields, friendships among them, and a few demo accounts whose tokens are returned for printing.
 * Deterministic apart from the demo tokens (a fixed PRNG seed), and written through the same store
 * functions as everything else, so the directory index and the change log hold it too.
 */
import { setImmediate } from 'node:timers/promises';
import { createAccount } from './accounts';
import { type Db } from './db';
import { keys } from './keys';
import { pipelineByNode, repliesOrThrow, type BatchCommand } from './redis';
import { type ProfilePatch } from './schema';

const LATIN_FIRST = [
  'Alex',
  'Maria',
  'José',
  'Chloé',
  'Liam',
  'Emma',
  'Noah',
  'Zoë',
  'Mateo',
  'Ingrid',
  'Søren',
  'Ana',
  'François',
  'Olivia',
  'Lucas',
  'Mia',
  'Björn',
  'Renée',
  'Diego',
  'Hannah',
];
const LATIN_LAST = [
  'Smith',
  'García',
  'Müller',
  'Rossi',
  'Dubois',
  'Novák',
  'Silva',
  'Kowalski',
  'Jensen',
  'Brown',
  'López',
  'Martin',
  'Nguyen',
  'Öztürk',
  'Wilson',
];
const CN_SURNAME = [
  '王',
  '李',
  '张',
  '刘',
  '陈',
  '杨',
  '黄',
  '赵',
  '吴',
  '周',
  '徐',
  '孙',
  '马',
  '朱',
  '胡',
];
const CN_GIVEN = [
  '伟',
  '芳',
  '娜',
  '秀英',
  '敏',
  '静',
  '丽',
  '强',
  '磊',
  '军',
  '洋',
  '勇',
  '艳',
  '杰',
  '娟',
  '涛',
  '明',
  '超',
  '秀兰',
  '霞',
];
const JP_SURNAME = ['佐藤', '鈴木', '高橋', '田中', '伊藤', '渡辺', '山本', '中村', '小林', '加藤'];
const JP_GIVEN = [
  'さくら',
  'ゆうき',
  'はると',
  'ひなた',
  '陽翔',
  '結衣',
  '蓮',
  '葵',
  'そうた',
  'メイ',
  'ハルカ',
  '大翔',
];
const SIGNS = [
  '',
  'Hello there!',
  'Coffee first ☕',
  '今天也要加油',
  'よろしくお願いします',
  'Busy — text me',
  'On vacation 🏖️',
  '热爱生活',
  'ゲームが好き',
  'Runner, reader, coder',
];
const DOMAINS = ['example.com', 'mail.example.org', 'example.net'];

/** mulberry32: a small deterministic PRNG, so the demo directory is the same every start. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoAccount {
  account: string;
  token: string;
  nick: string;
}

export interface SeedResult {
  users: number;
  demo: DemoAccount[];
}

const DEMO: { account: string; profile: ProfilePatch }[] = [
  {
    account: 'alice',
    profile: {
      nick: 'Alice Liddell',
      gender: 'female',
      sign: 'Curiouser and curiouser',
      email: 'alice@example.com',
      tel: '+44-20-5550-0101',
      birth: '1990-05-04',
      avatar: 'https://avatars.example.com/alice.png',
      custom: '{"theme":"dark"}',
    },
  },
  {
    account: 'bob',
    profile: {
      nick: 'Bob 鲍勃',
      gender: 'male',
      sign: '你好，世界',
      email: 'bob@example.com',
      tel: '+86-10-5550-0202',
      birth: '1988-11-23',
    },
  },
  {
    account: 'carol',
    profile: {
      nick: 'キャロル',
      gender: 'female',
      sign: 'よろしく',
      email: 'carol@example.jp',
      tel: '+81-3-5550-0303',
      birth: '1995-02-28',
    },
  },
];

function generatedProfile(i: number, rand: () => number): ProfilePatch {
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)]!;
  const script = rand();
  let nick: string;
  if (script < 0.5) nick = `${pick(LATIN_FIRST)} ${pick(LATIN_LAST)}`;
  else if (script < 0.8) nick = `${pick(CN_SURNAME)}${pick(CN_GIVEN)}`;
  else nick = `${pick(JP_SURNAME)}${pick(JP_GIVEN)}`;
  const year = 1960 + Math.floor(rand() * 45);
  const month = String(1 + Math.floor(rand() * 12)).padStart(2, '0');
  const day = String(1 + Math.floor(rand() * 28)).padStart(2, '0');
  const genders = ['unknown', 'male', 'female'] as const;
  return {
    nick,
    gender: pick(genders),
    sign: pick(SIGNS),
    email: rand() < 0.7 ? `user${i}@${pick(DOMAINS)}` : '',
    tel: rand() < 0.5 ? `+1-555-${String(1000 + (i % 9000)).padStart(4, '0')}` : '',
    birth: rand() < 0.6 ? `${year}-${month}-${day}` : '',
    avatar: rand() < 0.8 ? `https://avatars.example.com/u/${i}.png` : '',
    custom:
      rand() < 0.3 ? JSON.stringify({ level: Math.floor(rand() * 50), vip: rand() < 0.1 }) : '',
  };
}

/** The demo accounts memory mode seeds (account and nick), for one-click sign-in in the web app. */
export function demoAccountList(): { account: string; nick: string }[] {
  return DEMO.map(({ account, profile }) => ({ account, nick: profile.nick ?? account }));
}

/**
 * Seeds the demo accounts once per data set (claims the data set for seeding).
 * Returns null when it was seeded already.
 */
export async function seedDemoAccounts(db: Db): Promise<DemoAccount[] | null> {
  if ((await db.redis.set(keys.seeded, '1', 'NX')) !== 'OK') return null;
  const demo: DemoAccount[] = [];
  for (const { account, profile } of DEMO) {
    const created = await createAccount(db, { account, profile });
    demo.push({ account, token: created.token, nick: profile.nick ?? '' });
  }
  const friendships: BatchCommand[] = [];
  for (const a of DEMO) {
    for (const b of DEMO)
      if (a !== b) friendships.push(['sadd', keys.friends(a.account), b.account]);
  }
  repliesOrThrow(await pipelineByNode(db.redis, friendships));
  return demo;
}

/**
 * Seeds `users` generated accounts, named `user0001`..., each with a handful of friends (some of
 * them demo accounts). Call after seedDemoAccounts claimed the data set. Stops early (between
 * batches) when `signal` aborts.
 */
export async function seedGeneratedUsers(
  db: Db,
  users: number,
  signal?: AbortSignal,
): Promise<void> {
  const rand = prng(20261127);
  const width = Math.max(4, String(users).length);
  // ioredis-mock runs each write's Lua on this thread and answers through microtasks only, so
  // awaiting it never lets the event loop turn: memory mode writes one account at a time and
  // yields between them (the server keeps answering while it seeds); Redis writes overlap.
  const batchSize = db.mode === 'memory' ? 1 : 200;
  const names: string[] = [];
  const batch: Promise<unknown>[] = [];
  for (let i = 1; i <= users; i++) {
    const account = `user${String(i).padStart(width, '0')}`;
    names.push(account);
    batch.push(createAccount(db, { account, profile: generatedProfile(i, rand) }));
    if (batch.length === batchSize) {
      await Promise.all(batch.splice(0));
      await setImmediate();
      if (signal?.aborted) return;
    }
  }
  await Promise.all(batch);

  // Friendships: one SADD per account, sent in pipelines of 200 accounts with a turn of the event
  // loop between them (one pipeline of all 14,000 stalled a memory-mode server for ~150 ms).
  const everyone = [...DEMO.map((d) => d.account), ...names];
  for (let start = 0; start < everyone.length; start += 200) {
    const commands: BatchCommand[] = [];
    for (const account of everyone.slice(start, start + 200)) {
      const count = 3 + Math.floor(rand() * 8);
      const friends = new Set<string>();
      for (let k = 0; k < count; k++) {
        const friend = everyone[Math.floor(rand() * everyone.length)]!;
        if (friend !== account) friends.add(friend);
      }
      if (friends.size > 0) commands.push(['sadd', keys.friends(account), ...friends]);
    }
    repliesOrThrow(await pipelineByNode(db.redis, commands));
    await setImmediate();
    if (signal?.aborted) return;
  }
}

/** Both of the above, in order. Returns null when the data set was seeded already. */
export async function seedDemoData(db: Db, users = 3000): Promise<SeedResult | null> {
  const demo = await seedDemoAccounts(db);
  if (!demo) return null;
  await seedGeneratedUsers(db, users);
  return { users, demo };
}
