/**
 * The built server as a process: `node dist/index.js` with settings from the environment. What it
 * prints at start, that it serves, that SIGTERM lets requests in flight finish and exits 0, and
 * that bad settings stop it with a clear message and a non-zero exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spareTcpPort } from '@namecard/db/testing';
import { clientFor, describeRealRedis, realRedisUrl } from './helpers';

const serverDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const redis = await realRedisUrl();

/** A port that was free a moment ago (listen on 0, read it, close). */

interface ServerProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout matches, rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Processes to SIGKILL after the current test (and after the file). */
const perTest = new Set<ChildProcess>();
const perFile = new Set<ChildProcess>();

/**
 * Runs the built server with exactly these settings (nothing inherited but PATH). It is killed
 * after the test that started it, or with `perFileProcess` after the file.
 */
function spawnServer(env: Record<string, string>, { perFileProcess = false } = {}): ServerProcess {
  const child = spawn(process.execPath, ['dist/index.js'], {
    cwd: serverDir,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  (perFileProcess ? perFile : perTest).add(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const l of listeners) l();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      perTest.delete(child);
      perFile.delete(child);
      // Let the pipes drain so stdout()/stderr() are complete.
      setImmediate(() => resolve({ code, signal }));
    });
  });
  const waitFor = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(out);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${pattern}; stdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      void exited.then(({ code }) => {
        done();
        reject(
          new Error(
            `server exited (${code}) before printing ${pattern}; stdout:\n${out}\nstderr:\n${err}`,
          ),
        );
      });
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  return { child, stdout: () => out, stderr: () => err, exited, waitFor };
}

/** Rejects if the process has not exited within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** True once nothing accepts connections on the port any more. */
async function refusesConnections(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    await res.body?.cancel();
    return false;
  } catch {
    return true;
  }
}

/**
 * A `user.updateMyInfo` POST whose body is held back: resolves once the server has read the
 * headers (it answered `Expect: 100-continue`) and half the body is sent; `finish()` sends the
 * rest and resolves with the response.
 */
async function startSlowUpdate(url: string, token: string, patch: Record<string, string>) {
  const body = JSON.stringify(patch);
  const half = Math.floor(body.length / 2);
  const req = request(`${url}/trpc/user.updateMyInfo`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      expect: '100-continue',
    },
  });
  const response = new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>(
    (resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
    },
  );
  response.catch(() => {}); // awaited through finish()
  await new Promise<void>((resolve) => req.once('continue', resolve));
  req.write(body.slice(0, half));
  await new Promise((r) => setTimeout(r, 50));
  return {
    finish: () => {
      req.end(body.slice(half));
      return response;
    },
  };
}

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['build.mjs'], { cwd: serverDir });
});

afterEach(() => {
  for (const child of perTest) child.kill('SIGKILL');
});

afterAll(() => {
  for (const child of [...perTest, ...perFile]) child.kill('SIGKILL');
});

describe('memory mode process', () => {
  let port: number;
  let server: ServerProcess;
  let tokens: Record<string, string>;
  let adminSecret: string;

  beforeAll(async () => {
    port = await spareTcpPort();
    server = spawnServer(
      { PORT: String(port), HOST: '127.0.0.1', NAMECARD_SEED_USERS: '50' },
      { perFileProcess: true },
    );
    await server.waitFor(/^Try: curl .*$/m, 20_000);
    await server.waitFor(/"msg":"listening"/);
    // The generated users are written in the background after the banner.
    await server.waitFor(/"msg":"demo users seeded"/, 20_000);
    const out = server.stdout();
    tokens = Object.fromEntries(
      [...out.matchAll(/^ {2}(\w+)\s+token (\S+)/gm)].map((m) => [m[1]!, m[2]!]),
    );
    adminSecret = /^Admin secret .*: (\S+)$/m.exec(out)?.[1] ?? '';
  });

  it('prints where it listens, a made-up admin secret and the demo tokens', () => {
    const out = server.stdout();
    expect(out).toContain(`Namecard API on http://localhost:${port}/trpc`);
    expect(out).toContain('mode: memory');
    expect(out).toContain('Seeding 50 generated users');
    expect(Object.keys(tokens).sort()).toEqual(['alice', 'bob', 'carol']);
    for (const token of Object.values(tokens)) expect(token.length).toBeGreaterThanOrEqual(16);
    expect(adminSecret.length).toBeGreaterThanOrEqual(16);
    expect(out).toContain(
      `curl -H 'Authorization: Bearer ${tokens.alice}' http://localhost:${port}/trpc/user.getMyInfo`,
    );
    // Logs are JSON lines on stdout, the message on stderr is empty.
    expect(out).toMatch(/^\{.*"msg":"listening".*\}$/m);
    expect(server.stderr()).toBe('');
  });

  it('answers /healthz, typed calls with a printed token and admin calls with the printed secret', async () => {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', mode: 'memory', redis: true });

    const url = `http://127.0.0.1:${port}`;
    expect((await clientFor(url, { token: tokens.alice! }).user.getMyInfo.query()).account).toBe(
      'alice',
    );
    expect(
      (await clientFor(url, { token: tokens.carol! }).user.getUser.query({ account: 'bob' })).nick,
    ).toBe('Bob 鲍勃');

    const admin = clientFor(url, { adminSecret });
    const users = await admin.admin.getUsers.query({
      accounts: ['user0001', 'user0050', 'user0051', 'alice'],
    });
    expect(users.map((u) => u.account)).toEqual(['user0001', 'user0050', 'alice']);
  });

  it('on SIGTERM stops accepting, lets a request in flight finish, and exits 0', async () => {
    const url = `http://127.0.0.1:${port}`;
    // Some ordinary requests first, on kept-alive connections that are idle when SIGTERM comes.
    const warm = await Promise.all(
      Array.from({ length: 20 }, () =>
        clientFor(url, { token: tokens.bob! }).user.getMyInfo.query(),
      ),
    );
    expect(warm.every((p) => p.account === 'bob')).toBe(true);

    // A slow upload: the server has the headers (it answered 100-continue) but only half the body.
    const upload = await startSlowUpdate(url, tokens.bob!, { sign: 'written while shutting down' });

    server.child.kill('SIGTERM');
    // The listener closes while the upload is still open...
    await expect.poll(() => refusesConnections(port), { timeout: 5000, interval: 50 }).toBe(true);
    expect(server.child.exitCode).toBeNull();

    // ...and the request in flight still completes and gets its answer.
    const { status, text } = await within(
      upload.finish(),
      5000,
      'response to the request in flight',
    );
    expect(status).toBe(200);
    const result = (JSON.parse(text) as { result: { data: { account: string; sign: string } } })
      .result.data;
    expect(result).toMatchObject({ account: 'bob', sign: 'written while shutting down' });

    // (Up to keepAliveTimeout later: see the KNOWN BUG test below.)
    const exit = await within(server.exited, 8000, 'exit after SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toMatch(/"msg":"shutting down: finishing requests in flight"/);
    expect(server.stdout()).toMatch(/"msg":"stopped"/);
    expect(server.stdout()).not.toMatch(/still open after the grace period/);
  });

  // A request in flight at SIGTERM must not leave a keep-alive connection that could carry new
  // requests during the shutdown: its response says `Connection: close`.
  it('while shutting down, answers the request in flight with Connection: close', async () => {
    const port2 = await spareTcpPort();
    const second = spawnServer({
      PORT: String(port2),
      HOST: '127.0.0.1',
      NAMECARD_SEED_USERS: '0',
    });
    const token = (await second.waitFor(/^ {2}alice\s+token (\S+)/m))[1]!;
    await second.waitFor(/"msg":"listening"/);
    const upload = await startSlowUpdate(`http://127.0.0.1:${port2}`, token, {
      sign: 'last words',
    });
    second.child.kill('SIGTERM');
    await expect.poll(() => refusesConnections(port2), { timeout: 5000, interval: 50 }).toBe(true);
    const { status, headers } = await within(
      upload.finish(),
      5000,
      'response to the request in flight',
    );
    expect(status).toBe(200);
    expect(headers.connection).toBe('close');
  });
});

describe('bad settings stop the process with a message', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      'Redis mode without NAMECARD_ADMIN_SECRET',
      { REDIS_URL: 'redis://127.0.0.1:6379/8' },
      /NAMECARD_ADMIN_SECRET/,
    ],
    [
      'a REDIS_URL that is not a redis:// URL',
      { REDIS_URL: '127.0.0.1:6379', NAMECARD_ADMIN_SECRET: 'a-long-enough-admin-secret' },
      /REDIS_URL/,
    ],
    [
      'an http:// REDIS_URL',
      { REDIS_URL: 'http://127.0.0.1:6379', NAMECARD_ADMIN_SECRET: 'a-long-enough-admin-secret' },
      /REDIS_URL/,
    ],
    ['a short NAMECARD_ADMIN_SECRET', { NAMECARD_ADMIN_SECRET: 'short' }, /NAMECARD_ADMIN_SECRET/],
    ['a PORT that is not a number', { PORT: 'eighty' }, /PORT/],
    ['a PORT out of range', { PORT: '70000' }, /PORT/],
  ];
  it.each(cases)('%s', async (_label, env, message) => {
    const server = spawnServer({ PORT: '0', HOST: '127.0.0.1', NAMECARD_SEED_USERS: '0', ...env });
    const exit = await within(server.exited, 10_000, 'exit');
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(server.stderr()).toMatch(message);
    expect(server.stderr()).toMatch(
      /^namecard-server: bad environment|^namecard-server: Redis mode needs/m,
    );
    expect(server.stderr()).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(server.stdout()).not.toContain('Namecard API on');
  });
});

describe('Redis mode process with Redis unreachable', () => {
  const startWithDeadRedis = async () => {
    const port = await spareTcpPort();
    const deadRedis = await spareTcpPort();
    const server = spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: `redis://127.0.0.1:${deadRedis}/8`,
      NAMECARD_ADMIN_SECRET: 'a-long-enough-admin-secret',
    });
    await server.waitFor(/Namecard API on .*mode: redis/);
    return { port, server };
  };

  it('still starts, prints no secrets and reports degraded health', async () => {
    const { port, server } = await startWithDeadRedis();
    expect(server.stdout()).not.toContain('Admin secret');
    expect(server.stdout()).not.toContain('token');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'degraded', mode: 'redis', redis: false });
  });

  // closeDb() must not QUIT a client that is not connected: QUIT would wait behind the queued
  // PING of a /healthz check (as a liveness probe sends) until every reconnection try failed.
  it('exits promptly on SIGTERM after a health check', async () => {
    const { port, server } = await startWithDeadRedis();
    await (await fetch(`http://127.0.0.1:${port}/healthz`)).body?.cancel();
    server.child.kill('SIGTERM');
    expect(await within(server.exited, 2000, 'exit after SIGTERM with Redis away')).toEqual({
      code: 0,
      signal: null,
    });
  });
});

describeRealRedis('Redis mode process', redis, (url) => {
  it('starts without seeding or printing secrets and reports healthy', async () => {
    const port = await spareTcpPort();
    const server = spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: url,
      NAMECARD_ADMIN_SECRET: 'a-long-enough-admin-secret',
    });
    await server.waitFor(/Namecard API on .*mode: redis/);
    expect(server.stdout()).not.toContain('Admin secret');
    expect(server.stdout()).not.toContain('Seeding');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', mode: 'redis', redis: true });
    server.child.kill('SIGTERM');
    expect(await within(server.exited, 5000, 'exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
  });
});
