/**
 * Live fan-out benchmark: one profile change delivered to 1,000, 5,000 and 10,000 SSE subscribers
 * of one server instance (`user.onChange` with `accounts: [writer]`), next to a bare baseline
 * measured in the same run: a `node:http` + ioredis server that SUBSCRIBEs and writes one prebuilt
 * frame per response (bench/fanout-server.ts). Each server runs in a child process of its own
 * (with --expose-gc, so heap is measured in the server after a forced GC); the subscribers are
 * lean raw-HTTP SSE connections from this process, plus one official tRPC client
 * (`httpSubscriptionLink`) among them as a check.
 *
 * Per case: delivery latency (the writer's call -> each subscriber reads the frame), p50/p99 over
 * the subscribers of each change, the median over several changes; the writer's own
 * `updateMyInfo` meanwhile (from a process of its own, bench/fanout-writer.ts) vs the same write
 * with no subscribers; retained heap and RSS per idle subscriber after a forced GC. A
 * redis-server of its own. NAMECARD_FANOUT_CPU_PROF=<dir> and NAMECARD_FANOUT_HEAP_SNAPSHOT=<dir>
 * profile the server children.
 *
 *   npm run bench -w @namecard/server        (or: npx tsx bench/fanout.ts; NAMECARD_FANOUT_SIZES=1000,5000)
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type AppRouter } from '@namecard/api';
import { reportRows, type BenchRow } from '@namecard/db/bench-report';
import { benchRedis } from '@namecard/db/testing';
import { createTRPCClient, httpSubscriptionLink } from '@trpc/client';
import { EventSource } from 'eventsource';

/** Subscriber counts at which tRPC's own adapter is measured too (it is slow past these). */
const TRPC_SIZES = (process.env.NAMECARD_FANOUT_TRPC_SIZES ?? '1000').split(',').map(Number);
const SIZES = (process.env.NAMECARD_FANOUT_SIZES ?? '1000,5000,10000').split(',').map(Number);
const ROUNDS: Record<number, number> = { 1000: 7, 5000: 5, 10000: 3 };
const ADMIN = 'bench-admin-secret-0123456789';
/** Subscriptions per viewer account (the server allows 1,000). */
const PER_VIEWER = 250;
const CONNECT_CONCURRENCY = 100;
const DELIVERY_TIMEOUT_MS = 120_000;

const serverDir = fileURLToPath(new URL('..', import.meta.url));
/**
 * The server child runs bundled as production runs it (build.mjs: esbuild, no keepNames), not
 * under tsx, whose per-function name helper gives every closure a property store (~250 bytes
 * per closure, which would be counted as the subscribers' memory).
 */
const serverScript = 'dist/bench/fanout-server.js';
execFileSync(process.execPath, ['build.mjs', 'bench/fanout-server.ts', serverScript], {
  cwd: serverDir,
  stdio: 'ignore',
});

interface Mem {
  heapUsed: number;
  rss: number;
}

interface Child {
  port: number;
  mem(): Promise<Mem>;
  stop(): void;
}

async function startChild(mode: 'namecard' | 'bare', redisUrl: string): Promise<Child> {
  const proc: ChildProcess = fork(serverScript, [mode, redisUrl, ADMIN], {
    cwd: serverDir,
    execArgv: [
      '--expose-gc',
      // NAMECARD_FANOUT_CPU_PROF=<dir>: a CPU profile of each server child, written when it is stopped.
      ...(process.env.NAMECARD_FANOUT_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.NAMECARD_FANOUT_CPU_PROF}`]
        : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${mode} server exited (${code})`)));
    proc.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'listening') resolve(m.port!);
    });
  });
  return {
    port,
    mem: () =>
      new Promise<Mem>((resolve) => {
        const on = (m: { type: string } & Mem) => {
          if (m.type !== 'mem') return;
          proc.off('message', on);
          resolve({ heapUsed: m.heapUsed, rss: m.rss });
        };
        proc.on('message', on);
        proc.send({ type: 'mem' });
      }),
    stop: () => {
      proc.removeAllListeners('exit');
      // SIGINT lets a CPU profile be written (fanout-server.ts exits on it).
      proc.kill(process.env.NAMECARD_FANOUT_CPU_PROF ? 'SIGINT' : 'SIGKILL');
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** One HTTP call; resolves with the status, the body and the time it took (ms). */
function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text, ms: performance.now() - t0 }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = { 'content-type': 'application/json' };

/** The writer: a process of its own (bench/fanout-writer.ts), one call at a time. */
const writer = fork(fileURLToPath(new URL('./fanout-writer.ts', import.meta.url)), [], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});

function writerCall(port: number, path: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; body: string; ms: number }>((resolve) => {
    writer.once('message', (m: { status: number; body: string; ms: number }) => resolve(m));
    writer.send({ type: 'write', port, path, headers, body });
  });
}

async function createAccount(port: number, account: string): Promise<string> {
  const r = await call(
    port,
    'POST',
    '/trpc/admin.createAccount',
    { ...json, 'x-namecard-admin': ADMIN },
    JSON.stringify({ account }),
  );
  if (r.status !== 200) throw new Error(`createAccount ${account}: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { result: { data: { token: string } } }).result.data.token;
}

/**
 * A lean SSE subscriber on a raw socket: it only looks for the current round's marker in what
 * arrives (keeping a short tail, in case a frame is split across reads).
 */
interface Subscriber {
  socket: Socket;
  ready: Promise<void>;
  /** Round markers seen (one per delivered change). */
  seen: number;
}

const round = { marker: '\u0000', t0: 0, got: 0, latencies: [] as number[] };

function openSubscriber(port: number, path: string, headers: string, readyText: string) {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  let tail = '';
  let isReady = false;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const sub: Subscriber = {
    socket,
    seen: 0,
    ready: new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    }),
  };
  let lastMarker = '';
  socket.on('data', (chunk: string) => {
    const text = tail + chunk;
    tail = text.slice(-64);
    if (!isReady) {
      if (text.includes(readyText)) {
        isReady = true;
        resolveReady();
      } else if (/^HTTP\/1\.1 [^2]/.test(text)) rejectReady(new Error(text.slice(0, 300)));
      return;
    }
    if (lastMarker !== round.marker && text.includes(round.marker)) {
      lastMarker = round.marker;
      sub.seen++;
      round.got++;
      round.latencies.push(performance.now() - round.t0);
    }
  });
  socket.on('error', (error) => rejectReady(error));
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n${headers}\r\n`,
  );
  return sub;
}

async function inBatches<T>(count: number, size: number, open: (i: number) => Promise<T>) {
  const out: T[] = [];
  for (let i = 0; i < count; i += size) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + size); j++) batch.push(open(j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

interface CaseResult {
  deliveryP50: number;
  deliveryP99: number;
  lost: number;
  writeAlone: number;
  writeDuring: number;
  writeMax: number;
  heapPerSub: number;
  rssPerSub: number;
  connectS: number;
  officialOk: boolean | null;
}

/**
 * `namecard`: the server, subscribers on `/trpc/user.onChange` (the lean SSE path); `trpc`: the
 * same server, subscribers on `/trpc/user%2EonChange`, which tRPC's standalone adapter serves (as
 * every subscription was before the lean path); `bare`: the baseline.
 */
type Mode = 'namecard' | 'trpc' | 'bare';

async function runCase(
  mode: Mode,
  n: number,
  rounds: number,
  redisUrl: string,
): Promise<CaseResult> {
  const child = await startChild(mode === 'bare' ? 'bare' : 'namecard', redisUrl);
  const { port } = child;
  try {
    const tag = Math.random().toString(36).slice(2, 7);
    let writerToken = '';
    let writer = 'writer';
    let viewerTokens: string[] = [];
    if (mode !== 'bare') {
      writer = `w${tag}`;
      writerToken = await createAccount(port, writer);
      const viewers = Math.ceil(n / PER_VIEWER);
      viewerTokens = await inBatches(viewers, 20, (i) => createAccount(port, `v${tag}-${i}`));
    }
    const write = (sign: string) =>
      writerCall(
        port,
        mode === 'bare' ? '/write' : '/trpc/user.updateMyInfo',
        mode === 'bare' ? json : { ...json, authorization: `Bearer ${writerToken}` },
        JSON.stringify({ sign }),
      );
    // The write alone, nobody subscribed.
    const alone: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await write(`alone-${i}`);
      if (r.status !== 200) throw new Error(`write: ${r.status} ${r.body}`);
      if (i >= 10) alone.push(r.ms);
    }
    alone.sort((a, b) => a - b);

    const before = await child.mem();
    const started = performance.now();
    const input = encodeURIComponent(JSON.stringify({ accounts: [writer] }));
    const subs = await inBatches(n, CONNECT_CONCURRENCY, async (i) => {
      const sub =
        mode === 'bare'
          ? openSubscriber(port, '/sub', '', ': ready')
          : openSubscriber(
              port,
              `/trpc/${mode === 'trpc' ? 'user%2EonChange' : 'user.onChange'}?input=${input}`,
              `Authorization: Bearer ${viewerTokens[Math.floor(i / PER_VIEWER)]}\r\n`,
              '"type":"ready"',
            );
      await sub.ready;
      return sub;
    });
    const connectS = (performance.now() - started) / 1000;

    // One official client among them (Namecard only): it must see every change too.
    const officialSigns = new Set<string>();
    let official: { unsubscribe(): void } | null = null;
    if (mode === 'namecard') {
      const trpc = createTRPCClient<AppRouter>({
        links: [
          httpSubscriptionLink({
            url: `http://127.0.0.1:${port}/trpc`,
            EventSource,
            eventSourceOptions: () => ({
              fetch: (url, init) =>
                fetch(url, {
                  ...init,
                  headers: {
                    ...(init?.headers as Record<string, string>),
                    authorization: `Bearer ${viewerTokens[0]}`,
                  },
                }),
            }),
          }),
        ],
      });
      let officialReady = false;
      official = trpc.user.onChange.subscribe(
        { accounts: [writer] },
        {
          onData: ({ data }) => {
            if (data.type === 'ready') officialReady = true;
            if (data.type === 'profile') officialSigns.add(data.profile.sign);
          },
        },
      );
      await waitUntil(() => officialReady, 30_000, 'the official client to be ready');
    }

    const deliver = async (marker: string) => {
      round.marker = marker;
      round.got = 0;
      round.latencies = [];
      round.t0 = performance.now();
      const w = await write(marker);
      if (w.status !== 200) throw new Error(`write: ${w.status} ${w.body}`);
      await waitUntil(() => round.got >= n, DELIVERY_TIMEOUT_MS, `${n} deliveries`).catch(
        () => undefined,
      );
      return { writeMs: w.ms, latencies: round.latencies, got: round.got };
    };

    // Warm-up change (first sight of the writer per subscriber), then memory while idle.
    await deliver(`warm-${tag}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await child.mem();

    const p50s: number[] = [];
    const p99s: number[] = [];
    const writes: number[] = [];
    const markers = Array.from({ length: rounds }, (_, r) => `fan-${tag}-${r}`);
    let lost = 0;
    for (const marker of markers) {
      const result = await deliver(marker);
      const sorted = result.latencies.sort((a, b) => a - b);
      p50s.push(pct(sorted, 0.5));
      p99s.push(pct(sorted, 0.99));
      writes.push(result.writeMs);
      lost += n - result.got;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const list of [p50s, p99s, writes]) list.sort((a, b) => a - b);
    if (official) {
      const all = () => markers.every((m) => officialSigns.has(m));
      await waitUntil(all, 10_000, 'the official client').catch(() => undefined);
      official.unsubscribe();
    }
    for (const sub of subs) sub.socket.destroy();
    return {
      // Each round's percentiles over its subscribers; the median round (the machine is shared).
      deliveryP50: pct(p50s, 0.5),
      deliveryP99: pct(p99s, 0.5),
      writeMax: writes[writes.length - 1]!,
      lost,
      writeAlone: pct(alone, 0.5),
      writeDuring: pct(writes, 0.5),
      heapPerSub: (after.heapUsed - before.heapUsed) / n,
      rssPerSub: (after.rss - before.rss) / n,
      connectS,
      officialOk: official ? markers.every((m) => officialSigns.has(m)) : null,
    };
  } finally {
    child.stop();
  }
}

const f = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const msText = (x: number) => (x >= 1000 ? `${f(x / 1000, 2)} s` : `${f(x, x < 10 ? 1 : 0)} ms`);
const kb = (bytes: number) => `${f(bytes / 1024, 1)} KB`;

async function main() {
  const redis = await benchRedis(7);
  const rows: BenchRow[] = [];
  const table: Record<string, string | number>[] = [];
  try {
    for (const n of SIZES) {
      const rounds = ROUNDS[n] ?? 3;
      // Alternate which goes first, so neither always meets a cooler machine.
      const order: Mode[] =
        SIZES.indexOf(n) % 2 === 0 ? ['bare', 'namecard'] : ['namecard', 'bare'];
      if (TRPC_SIZES.includes(n)) order.push('trpc');
      const results: Partial<Record<Mode, CaseResult>> = {};
      for (const mode of order) results[mode] = await runCase(mode, n, rounds, redis.url);
      const nc = results.namecard!;
      const bare = results.bare!;
      for (const [mode, r] of Object.entries(results)) {
        table.push({
          subscribers: n,
          server: mode === 'trpc' ? "namecard via tRPC's adapter" : mode,
          'delivery p50': msText(r.deliveryP50),
          'delivery p99': msText(r.deliveryP99),
          lost: r.lost,
          'write alone p50': msText(r.writeAlone),
          'write during fan-out': `${msText(r.writeDuring)} (max ${msText(r.writeMax)})`,
          'heap/sub': kb(r.heapPerSub),
          'RSS/sub': kb(r.rssPerSub),
          'connect s': f(r.connectS, 1),
          official: r.officialOk === null ? '-' : r.officialOk ? 'ok' : 'MISSED',
        });
      }
      const subs = `${f(n)} subscribers`;
      rows.push(
        {
          suite: 'fanout',
          case: `one change to ${subs}: delivery p50 / p99`,
          namecard: `${msText(nc.deliveryP50)} / ${msText(nc.deliveryP99)}${nc.lost ? `, ${nc.lost} lost` : ''}`,
          bare: `${msText(bare.deliveryP50)} / ${msText(bare.deliveryP99)}`,
          ratio: Number((nc.deliveryP99 / bare.deliveryP99).toFixed(2)),
          better: 'lower',
          values: {
            p50: nc.deliveryP50,
            p99: nc.deliveryP99,
            bareP50: bare.deliveryP50,
            bareP99: bare.deliveryP99,
            lost: nc.lost,
            rounds,
          },
          notes: `ratio of p99; each change's percentiles over its subscribers, the median of ${rounds} changes${nc.officialOk === false ? '; the official client MISSED a change' : ''}`,
        },
        {
          suite: 'fanout',
          case: `the writer's updateMyInfo during the fan-out to ${subs}`,
          namecard: msText(nc.writeDuring),
          bare: `${msText(nc.writeAlone)} (the same write, no subscribers)`,
          ratio: Number((nc.writeDuring / nc.writeAlone).toFixed(2)),
          better: 'lower',
          values: {
            during: nc.writeDuring,
            max: nc.writeMax,
            alone: nc.writeAlone,
            bareWrite: bare.writeDuring,
          },
          notes: `median of ${rounds} changes (max ${msText(nc.writeMax)}) vs the median of 30 writes before anyone subscribed`,
        },
        {
          suite: 'fanout',
          case: `retained heap per idle subscriber (${subs}, after a forced GC)`,
          namecard: `${kb(nc.heapPerSub)} (RSS ${kb(nc.rssPerSub)})`,
          bare: `${kb(bare.heapPerSub)} (RSS ${kb(bare.rssPerSub)})`,
          ratio: Number((nc.heapPerSub / bare.heapPerSub).toFixed(2)),
          better: 'lower',
          notes: 'the target is at most 20 KB per idle subscriber',
          values: {
            heap: nc.heapPerSub,
            rss: nc.rssPerSub,
            bareHeap: bare.heapPerSub,
            bareRss: bare.rssPerSub,
          },
        },
      );
      const adapter = results.trpc;
      if (adapter) {
        rows.push({
          suite: 'fanout',
          case: `one change to ${subs} through tRPC's standalone adapter (what the lean path replaced)`,
          namecard: `${msText(adapter.deliveryP50)} / ${msText(adapter.deliveryP99)}, heap ${kb(adapter.heapPerSub)} per subscriber`,
          bare: `${msText(bare.deliveryP50)} / ${msText(bare.deliveryP99)}, heap ${kb(bare.heapPerSub)}`,
          ratio: Number((adapter.deliveryP99 / bare.deliveryP99).toFixed(2)),
          better: 'lower',
          values: {
            p50: adapter.deliveryP50,
            p99: adapter.deliveryP99,
            heap: adapter.heapPerSub,
            writeDuring: adapter.writeDuring,
            writeAlone: adapter.writeAlone,
          },
          notes:
            'the same server, subscribers on /trpc/user%2EonChange (tRPC decodes it; the lean path does not take it)',
        });
      }
    }
  } finally {
    await redis.release();
    agent.destroy();
    writer.disconnect();
  }
  console.log('\nLive fan-out: one change to many SSE subscribers of one server (same run)');
  console.table(table);
  reportRows(rows);
}

await main();
