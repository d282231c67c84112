/**
 * The server side of bench/fanout.ts, run in a child process of its own (so the thousands of
 * clients' CPU and memory are not counted, and heap is measured in the server): either a Namecard
 * server (startServer, Redis mode) or the bare baseline, a `node:http` + ioredis server that
 * SUBSCRIBEs to one channel and writes one prebuilt SSE frame per response.
 *
 *   node --expose-gc dist/bench/fanout-server.js <namecard|bare> <redisUrl> <adminSecret>
 *   (bundled by bench/fanout.ts with build.mjs, as the production server is)
 *
 * It sends `{ type: 'listening', port }` over IPC once it listens and answers `{ type: 'mem' }`
 * with its heap and RSS after a forced full GC.
 */
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { writeHeapSnapshot } from 'node:v8';
import { createRedis } from '@namecard/db';
import { startServer } from '../src/app';
import { createLogger } from '../src/logger';

const [mode, redisUrl, adminSecret] = process.argv.slice(2);
if (!process.send || !redisUrl || !adminSecret || (mode !== 'namecard' && mode !== 'bare')) {
  console.error('usage (as a forked child): fanout-server.ts <namecard|bare> <redisUrl> <secret>');
  process.exit(2);
}
const send = (message: unknown) => process.send!(message);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('fanout-server.ts needs node --expose-gc');

/** The bare baseline: one channel, one prebuilt frame written to every open response. */
async function startBare(url: string): Promise<number> {
  const redis = createRedis({ url });
  const subscriber = redis.duplicate();
  const open = new Set<ServerResponse>();
  subscriber.on('message', (_channel: string, message: string) => {
    const frame = `data: ${message}\n\n`;
    for (const res of open) res.write(frame);
  });
  await subscriber.subscribe('bench:changes');
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/sub') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write(': ready\n\n');
      open.add(res);
      res.once('close', () => open.delete(res));
      return;
    }
    if (req.method === 'POST' && req.url === '/write') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const { sign } = JSON.parse(body) as { sign: string };
        const profile = { account: 'writer', sign, updateTime: Date.now() };
        // The same Redis work as a Namecard write, minus its bookkeeping: the fields and a publish.
        void redis
          .multi()
          .hset('bench:profile', 'sign', sign, 'updateTime', String(profile.updateTime))
          .publish('bench:changes', JSON.stringify({ type: 'profile', account: 'writer', profile }))
          .exec()
          .then(() => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify(profile));
          });
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const port =
  mode === 'bare'
    ? await startBare(redisUrl)
    : (
        await startServer({
          port: 0,
          host: '127.0.0.1',
          redisUrl,
          adminSecret,
          // Many subscribers per viewer account (the bench spreads them over a few accounts).
          subscriptionsPerAccount: 1000,
          logger: createLogger('silent'),
        })
      ).port;

process.on('message', (message: { type: string }) => {
  if (message.type === 'mem') {
    gc();
    gc();
    // NAMECARD_FANOUT_HEAP_SNAPSHOT=<dir>: a heap snapshot at each measurement, to see what is retained.
    const dir = process.env.NAMECARD_FANOUT_HEAP_SNAPSHOT;
    if (dir) writeHeapSnapshot(`${dir}/${mode}-${process.pid}-${Date.now()}.heapsnapshot`);
    const { heapUsed, rss } = process.memoryUsage();
    send({ type: 'mem', heapUsed, rss });
  }
});
process.once('SIGINT', () => process.exit(0));
send({ type: 'listening', port });
