/**
 * Soak: two API instances (child processes) on one redis-server of its own (spare port, stopped
 * by PID), under mixed load for a bounded time: writers (each account written by one writer, in
 * sequence), readers (getUser, getUsers of 50, search), and live subscribers that reconnect every
 * few seconds to the other instance with their last event id. At the end it checks, against each
 * account's own change log:
 *
 * - errors: failed calls of any kind (0 expected);
 * - acknowledged writes missing from the store (0);
 * - events lost (an event of an account a subscriber watched, after its first `ready`, never
 *   delivered) and duplicated (delivered twice) (0 each), and resyncs (0 without faults);
 *
 * and prints throughput and memory (each instance's RSS, Redis used_memory) at start and end.
 * Exits 1 when any of the counts that must be 0 is not.
 *
 *   npm run soak                         (2 minutes)
 *   NAMECARD_SOAK_SECONDS=30 npm run soak
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AppRouter } from '@namecard/api';
import {
  closeDb,
  compareCursors,
  createDb,
  cursorPosition,
  keys,
  lastEventId,
  parseEvent,
  partitionOf,
} from '@namecard/db';
import { spareTcpPort } from '@namecard/db/testing';
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';

const SECONDS = Number(process.env.NAMECARD_SOAK_SECONDS ?? 120);
const ACCOUNTS = 300;
const FRIENDS_EACH = 8;
const WATCH_EACH = 20;
const WRITERS = 12;
const READERS = 6;
const SUBSCRIBERS = 24;
const ADMIN = `soak-admin-${Math.random().toString(36).slice(2)}-secret`;
const serverDir = join(dirname(fileURLToPath(import.meta.url)), '..');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function until(what: string, predicate: () => Promise<boolean> | boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`soak: timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A child process, stopped by its PID. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string) {
  const child: ChildProcess = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    output: () => output,
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      process.kill(child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

type Api = ReturnType<typeof apiClient>;
function apiClient(url: string, headers: Record<string, string>) {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${url}/trpc`,
          EventSource,
          eventSourceOptions: () => ({
            fetch: (input, init) =>
              fetch(input, {
                ...init,
                headers: { ...(init?.headers as Record<string, string>), ...headers },
              }),
          }),
        }),
        false: httpLink({ url: `${url}/trpc`, headers }),
      }),
    ],
  });
}

interface Subscriber {
  account: string;
  watch: string[];
  /** Accounts whose events it must get: itself, its friends, the watched ones. */
  interest: Set<string>;
  /** The cursor of its first `ready`. */
  firstReady: string | null;
  lastId: string | null;
  received: Map<string, number>;
  resyncs: number;
  reconnects: number;
  stop(): void;
}

async function main() {
  const counts = { writes: 0, reads: 0, searches: 0, errors: 0 };
  const errorSamples: string[] = [];
  const fail = (what: string, error: unknown) => {
    counts.errors++;
    if (errorSamples.length < 10) errorSamples.push(`${what}: ${String(error)}`);
  };

  // Redis of its own.
  const redisPort = await spareTcpPort();
  const dir = mkdtempSync(join(tmpdir(), 'namecard-soak-'));
  const redis = start(
    'redis-server',
    [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    {},
  );
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;
  const admin = new Redis(redisUrl);
  admin.on('error', () => undefined); // refused until redis-server is up
  await until('redis-server', async () => (await admin.ping().catch(() => '')) === 'PONG');
  // The store's own view of the data set (cursors, the newest ids of every partition).
  const store = createDb({ url: redisUrl });

  // Two API instances.
  const ports = [await spareTcpPort(), await spareTcpPort()];
  const servers = ports.map((port) =>
    start(
      process.execPath,
      ['--import', 'tsx', 'src/index.ts'],
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: redisUrl,
        NAMECARD_ADMIN_SECRET: ADMIN,
        LOG_LEVEL: 'warn',
      },
      serverDir,
    ),
  );
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const stopAll = async () => {
    for (const s of servers) await s.stop();
    admin.disconnect();
    await closeDb(store);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const url of urls) {
      await until(
        `the API at ${url}`,
        async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok === true,
        60_000,
      );
    }

    // Accounts and friends.
    const adminApi = apiClient(urls[0]!, { 'x-namecard-admin': ADMIN });
    const accounts = Array.from(
      { length: ACCOUNTS },
      (_, i) => `soak${String(i).padStart(4, '0')}`,
    );
    const tokens = new Map<string, string>();
    for (const account of accounts) {
      const created = await adminApi.admin.createAccount.mutate({
        account,
        profile: { nick: `Soak ${account}`, email: `${account}@example.com` },
      });
      tokens.set(account, created.token);
    }
    const friendsOf = new Map<string, string[]>();
    for (const account of accounts) {
      const api = apiClient(pick(urls), { authorization: `Bearer ${tokens.get(account)}` });
      const friends = new Set<string>();
      while (friends.size < FRIENDS_EACH) {
        const f = pick(accounts);
        if (f !== account) friends.add(f);
      }
      for (const f of friends) await api.friend.add.mutate({ account: f });
      friendsOf.set(account, [...friends]);
    }
    const clients = new Map<string, Api[]>(
      accounts.map((a) => [
        a,
        urls.map((u) => apiClient(u, { authorization: `Bearer ${tokens.get(a)}` })),
      ]),
    );

    const memory = async () => ({
      api: servers.map((s) => s.rss()),
      redis: Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? 0),
    });
    const before = await memory();
    const startedAt = Date.now();
    const deadline = startedAt + SECONDS * 1000;
    let stopping = false;

    // Subscribers: each its own account; reconnect to the other instance every 3-6 s.
    const subscribers: Subscriber[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const account = accounts[i]!;
      const watch = Array.from({ length: WATCH_EACH }, () => pick(accounts));
      const sub: Subscriber = {
        account,
        watch,
        interest: new Set([account, ...friendsOf.get(account)!, ...watch]),
        firstReady: null,
        lastId: null,
        received: new Map(),
        resyncs: 0,
        reconnects: 0,
        stop: () => undefined,
      };
      let instance = i % 2;
      const connect = () => {
        const api = clients.get(account)![instance]!;
        const subscription = api.user.onChange.subscribe(
          { accounts: watch, lastEventId: sub.lastId },
          {
            onData: ({ id, data }) => {
              sub.lastId = id;
              if (data.type === 'ready' && sub.firstReady === null) sub.firstReady = id;
              if (data.type === 'resync') sub.resyncs++;
              if (data.type === 'profile') {
                // Item ids are cursors; the event's own id is the position in its partition.
                const key = `${data.account} ${cursorPosition(id, partitionOf(data.account))}`;
                sub.received.set(key, (sub.received.get(key) ?? 0) + 1);
              }
            },
            onError: (error) => fail(`subscription ${account}`, error),
          },
        );
        sub.stop = () => subscription.unsubscribe();
      };
      connect();
      void (async () => {
        while (!stopping) {
          await sleep(3000 + Math.random() * 3000);
          if (stopping) break;
          sub.stop();
          instance = 1 - instance;
          sub.reconnects++;
          connect();
        }
      })();
      subscribers.push(sub);
    }
    await until('every subscriber ready', () => subscribers.every((s) => s.firstReady !== null));

    // Writers: accounts split among them, so each account's writes go in sequence.
    const acked = new Map<string, string[]>();
    const writers = Array.from({ length: WRITERS }, (_, w) =>
      (async () => {
        const mine = accounts.filter((_, i) => i % WRITERS === w);
        for (let n = 0; Date.now() < deadline; n++) {
          const account = pick(mine);
          const sign = `${account} ${n}`;
          try {
            await pick(clients.get(account)!).user.updateMyInfo.mutate({ sign });
            counts.writes++;
            acked.set(account, [...(acked.get(account) ?? []), sign]);
          } catch (error) {
            fail('write', error);
          }
        }
      })(),
    );
    const readers = Array.from({ length: READERS }, () =>
      (async () => {
        while (Date.now() < deadline) {
          const api = pick(clients.get(pick(accounts))!);
          try {
            const kind = Math.random();
            if (kind < 0.4) {
              await api.user.getUser.query({ account: pick(accounts) });
              counts.reads++;
            } else if (kind < 0.8) {
              await api.user.getUsers.query({
                accounts: Array.from({ length: 50 }, () => pick(accounts)),
              });
              counts.reads++;
            } else {
              await api.user.search.query({ query: `Soak soak0${Math.floor(Math.random() * 3)}` });
              counts.searches++;
            }
          } catch (error) {
            fail('read', error);
          }
        }
      })(),
    );
    const progress = setInterval(() => {
      const s = Math.round((Date.now() - startedAt) / 1000);
      console.log(
        `  ${s}s: ${counts.writes} writes, ${counts.reads} reads, ${counts.searches} searches, ${counts.errors} errors`,
      );
    }, 15_000);
    await Promise.all([...writers, ...readers]);
    clearInterval(progress);
    const elapsed = (Date.now() - startedAt) / 1000;

    // Every account's events, from its own log.
    const events = new Map<string, { id: string; account: string; sign: string }[]>();
    for (const account of accounts) {
      const raw = await admin.zrange(keys.accountLog(account), 0, -1);
      events.set(
        account,
        raw.map(parseEvent).map((e) => ({ id: e.id, account, sign: e.profile.sign })),
      );
    }
    let ackedMissing = 0;
    for (const [account, signs] of acked) {
      const logged = new Set(events.get(account)!.map((e) => e.sign));
      ackedMissing += signs.filter((s) => !logged.has(s)).length;
    }
    const newest = await lastEventId(store);
    // Let the subscribers catch up with the newest event.
    await until(
      'the subscribers to catch up',
      () => subscribers.every((s) => s.lastId !== null && compareCursors(s.lastId, newest) >= 0),
      30_000,
    ).catch((error: unknown) => fail('catch-up', error));
    stopping = true;
    for (const s of subscribers) s.stop();

    let lost = 0;
    let duplicated = 0;
    let delivered = 0;
    for (const s of subscribers) {
      for (const account of s.interest) {
        for (const e of events.get(account)!) {
          if (BigInt(e.id) <= cursorPosition(s.firstReady!, partitionOf(account))) continue;
          if (!s.received.has(`${account} ${e.id}`)) lost++;
        }
      }
      for (const n of s.received.values()) {
        delivered += n;
        if (n > 1) duplicated += n - 1;
      }
    }
    const resyncs = subscribers.reduce((n, s) => n + s.resyncs, 0);
    const reconnects = subscribers.reduce((n, s) => n + s.reconnects, 0);
    await sleep(1000);
    const after = await memory();

    const rate = (n: number) => `${Math.round(n / elapsed)}/s`;
    console.log(`\nNamecard soak: ${elapsed.toFixed(0)} s, 2 API instances on one Redis`);
    console.log(
      `  throughput: writes ${counts.writes} (${rate(counts.writes)}), reads ${counts.reads} (${rate(counts.reads)}), searches ${counts.searches} (${rate(counts.searches)})`,
    );
    console.log(
      `  live: ${SUBSCRIBERS} subscribers, ${reconnects} reconnects, ${delivered} events delivered, ${resyncs} resyncs`,
    );
    console.log(
      `  errors: ${counts.errors}${errorSamples.length ? ` (${errorSamples.join(' | ')})` : ''}`,
    );
    console.log(`  acknowledged writes missing from the store: ${ackedMissing}`);
    console.log(`  events lost: ${lost}, duplicated: ${duplicated}`);
    console.log(
      `  memory at start: API ${before.api.map(mb).join(' / ')} RSS, Redis ${mb(before.redis)}`,
    );
    console.log(
      `  memory at end:   API ${after.api.map(mb).join(' / ')} RSS, Redis ${mb(after.redis)}`,
    );
    const bad = counts.errors + ackedMissing + lost + duplicated + resyncs;
    process.exitCode = bad === 0 ? 0 : 1;
  } catch (error) {
    console.error('soak failed:', error);
    for (const s of servers) console.error(s.output());
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

void main();
