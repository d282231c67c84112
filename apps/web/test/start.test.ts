/**
 * `npm start`'s process (scripts/start.mjs, run after the builds this suite depends on): the API
 * answers /healthz while the demo users are still being seeded, the script prints the URL to
 * open once both servers answer, and SIGTERM to it stops everything it started, leaving no
 * server holding a port.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, ROOT, until } from './stack';

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The environment of a new user's shell: memory mode, no admin secret (one is made up). */
function withoutRedis(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { REDIS_URL: _url, NAMECARD_ADMIN_SECRET: _secret, ...rest } = env;
  return rest;
}

describe('npm start (scripts/start.mjs)', () => {
  it('answers /healthz while seeding, prints the URL to open, and SIGTERM stops both servers', async () => {
    const [apiPort, webPort] = [await freePort(), await freePort()];
    const started = Date.now();
    const child = spawn('node', ['scripts/start.mjs'], {
      cwd: ROOT,
      env: {
        ...withoutRedis(process.env),
        PORT: String(apiPort),
        NAMECARD_WEB_PORT: String(webPort),
        // Enough users that seeding is surely still going when the API first answers.
        NAMECARD_SEED_USERS: '20000',
        NEXT_TELEMETRY_DISABLED: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await until('the API to answer /healthz', async () => {
        const res = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
        return res.ok;
      });
      console.log(`[start] /healthz answered ${Date.now() - started} ms after spawn`);
      expect(out, 'the API answered only after seeding had finished').not.toContain(
        'demo users seeded',
      );
      await until('the URL to open', () =>
        Promise.resolve(out.includes(`Open http://localhost:${webPort}`)),
      );
      expect((await fetch(`http://127.0.0.1:${webPort}/signin`)).status).toBe(200);
      expect(out).toMatch(/alice +token \S+/);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000)),
    ]);
    if (code === 'hung') child.kill('SIGKILL');
    expect(code, out).not.toBe('hung');
    expect(await listening(apiPort), 'the API still holds its port').toBe(false);
    expect(await listening(webPort), 'the web app still holds its port').toBe(false);
  });
});
