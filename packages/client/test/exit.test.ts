/** close() leaves nothing open: a process that used the client ends by itself. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestServer, type TestServer } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** Runs the fixture; resolves with its exit code (null if it had to be killed), output, and ms from "closed" to exit. */
async function runFixture(env: Record<string, string>) {
  const script = fileURLToPath(new URL('./fixtures/exit-after-close.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('closed')) closedAt ||= Date.now();
  });
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, 20_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, out, lag: Date.now() - closedAt };
}

test('after close() a live client lets the Node process exit on its own, at once', async () => {
  const run = await runFixture({ NAMECARD_URL: server.url, NAMECARD_TOKEN: server.tokens.alice });
  expect(run.out).toContain('closed closed');
  expect(run.code, run.out).toBe(0);
  // The exit follows close() at once, not after some keep-alive or reconnect timer.
  expect(run.lag).toBeLessThan(1500);
});

test('close() while the initial sync is being retried (server unreachable) also lets the process exit', async () => {
  // A port that refuses connections: bind one, note it, close it.
  const probe = createServer();
  const port = await new Promise<number>((resolve) =>
    probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
  );
  await new Promise((resolve) => probe.close(resolve));
  const run = await runFixture({
    NAMECARD_URL: `http://127.0.0.1:${port}`,
    NAMECARD_TOKEN: 'x'.repeat(20),
    EXIT_MODE: 'unreachable',
  });
  expect(run.out).toContain('status starting');
  expect(run.out).toContain('closed closed');
  expect(run.code, run.out).toBe(0);
  expect(run.lag).toBeLessThan(1500);
});
