/**
 * The server side of bench/requests.ts, run in a child process of its own: a Namecard server
 * (startServer: Redis mode, or memory mode when BENCH_REDIS_URL is empty) or the bare baseline
 * below, a `node:http` + ioredis server doing the Redis work a minimal implementation of each
 * call needs.
 *
 *   node dist/bench/requests-server.js <namecard|bare>
 *   env: BENCH_REDIS_URL, BENCH_ADMIN_SECRET, BENCH_SEED_USERS (memory mode's demo users)
 *   (bundled by bench/requests.ts with build.mjs, as the production server is)
 *
 * It sends `{ ready: port }` over IPC once it listens and `{ seeded: true }` once its demo users
 * are in, answers `'cpu'` with its CPU time so far, and exits on SIGTERM.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { ALL_PARTITIONS, keys, normalizeForSearch, PRIVATE_FIELDS } from '@namecard/db';
import { startServer } from '../src/app';
import { createLogger } from '../src/logger';

const role = process.argv[2];
const redisUrl = process.env.BENCH_REDIS_URL ?? '';
if (!process.send || (role !== 'namecard' && role !== 'bare')) {
  console.error('usage (as a forked child): requests-server.js <namecard|bare>');
  process.exit(2);
}
const send = (message: unknown) => process.send!(message);

// ---------------------------------------------------------------------------------------------
// The bare server: node:http + ioredis, nothing else. It authenticates every call the minimal
// way (GET of the token's index entry), then: getMyInfo HGETALL; updateMyInfo HSET + PUBLISH in
// one pipeline; getUsers(150) HGETALL + SISMEMBER per account in one pipeline; search
// ZRANGEBYLEX per directory partition + 20 HGETALL in one pipeline.

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function bareServer(redisUrl: string) {
  const redis = new Redis(redisUrl);
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const input = (url: string): unknown =>
    JSON.parse(decodeURIComponent(new URL(url, 'http://x').searchParams.get('input') ?? 'null'));
  const readBody = async (req: IncomingMessage) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    return body;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    if (path === '/healthz') return send(res, 200, { status: (await redis.ping()) && 'ok' });
    const token = (req.headers.authorization ?? '').slice('Bearer '.length);
    // The token index holds `<account> <ms>`.
    const account = (await redis.get(keys.token(sha256(token))))?.split(' ')[0];
    if (!account) return send(res, 401, { error: 'unknown token' });
    switch (path) {
      case '/trpc/user.getMyInfo':
        return send(res, 200, { result: { data: await redis.hgetall(keys.profile(account)) } });
      case '/trpc/user.updateMyInfo': {
        const patch = JSON.parse(await readBody(req)) as Record<string, string>;
        const fields = { ...patch, updateTime: String(Date.now()) };
        await redis
          .pipeline()
          .hset(keys.profile(account), fields)
          .publish(keys.channel(account), JSON.stringify({ account, fields }))
          .exec();
        return send(res, 200, { result: { data: { account, ...fields } } });
      }
      case '/trpc/user.getUsers': {
        const { accounts } = input(url) as { accounts: string[] };
        const p = redis.pipeline();
        for (const a of accounts) p.hgetall(keys.profile(a)).sismember(keys.friends(a), account);
        const replies = (await p.exec()) ?? [];
        const users = [];
        for (let i = 0; i < accounts.length; i++) {
          const profile = replies[2 * i]![1] as Record<string, string>;
          if (!profile.createTime) continue;
          if (accounts[i] !== account && replies[2 * i + 1]![1] !== 1) {
            for (const f of PRIVATE_FIELDS) delete profile[f];
          }
          users.push({ account: accounts[i], ...profile });
        }
        return send(res, 200, { result: { data: users } });
      }
      case '/trpc/user.search': {
        const { query, limit = 20 } = input(url) as { query: string; limit?: number };
        const hex = Buffer.from(normalizeForSearch(query)).toString('hex');
        // The directory is split into PARTITIONS sorted sets: the first `limit` of each, merged.
        const lists = await redis
          .pipeline(
            ALL_PARTITIONS.map((part) => [
              'zrangebylex',
              keys.directory(part),
              `[${hex}`,
              `(${hex}g`,
              'LIMIT',
              '0',
              String(limit),
            ]),
          )
          .exec();
        const members = (lists ?? [])
          .flatMap(([, list]) => list as string[])
          .sort()
          .slice(0, limit);
        const found = members.map((m) => m.slice(m.indexOf('.', 0) + 3));
        const p = redis.pipeline();
        for (const a of found) p.hgetall(keys.profile(a));
        const replies = (await p.exec()) ?? [];
        const users = replies.map(([, profile], i) => {
          const fields = profile as Record<string, string>;
          for (const f of PRIVATE_FIELDS) delete fields[f];
          return { account: found[i], ...fields };
        });
        return send(res, 200, { result: { data: { users } } });
      }
      default:
        return send(res, 404, { error: 'not found' });
    }
  };
  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: String(error) }));
  });
}

// The driver asks for the CPU time before and after a round (CPU per request).
process.on('message', (m: unknown) => m === 'cpu' && send({ cpu: process.cpuUsage() }));
if (role === 'bare') {
  const server = bareServer(redisUrl);
  server.listen(0, '127.0.0.1', () => send({ ready: (server.address() as AddressInfo).port }));
  process.on('SIGTERM', () => process.exit(0));
} else {
  const running = await startServer({
    port: 0,
    host: '127.0.0.1',
    redisUrl: redisUrl || undefined,
    adminSecret: process.env.BENCH_ADMIN_SECRET!,
    seedUsers: Number(process.env.BENCH_SEED_USERS ?? 0),
    logger: createLogger('info'),
  });
  void running.seeding.then(() => send({ seeded: true }));
  send({ ready: running.port });
  process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
}
