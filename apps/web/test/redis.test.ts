/**
 * The web app against the API in Redis mode (a redis-server of its own on a spare port, stopped
 * by PID): no demo accounts on the sign-in page; the live subscription resumes through the web
 * origin's /trpc proxy with its last event id after the API restarts, and the page catches up on
 * a change made while it was down; and two API instances behind one URL (an HTTP proxy that
 * sends subscriptions to one and everything else to the other) serve one browser session, and a
 * change written through one reaches a page live through the other.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  browserAvailable,
  freePort,
  launchBrowser,
  signIn,
  startApi,
  startWeb,
  until,
  waitLive,
  watchConsole,
  type Api,
  type Web,
} from './stack';

const REDIS = '/usr/bin/redis-server';
const haveRedis = existsSync(REDIS);
if (!haveRedis) {
  if (process.env.CI === 'true')
    console.error(`\n[namecard/web] ${REDIS} missing; CI=true: FAILS.\n`);
  else console.warn(`\n[namecard/web] WARNING: Redis-mode browser tests SKIPPED: no ${REDIS}.\n`);
}
const run =
  browserAvailable('the Redis-mode browser tests') && (haveRedis || process.env.CI === 'true');

/**
 * One URL in front of two API instances, as a load balancer would be: live subscriptions go to
 * the second, everything else (reads and writes) to the first, so a change written through one
 * instance can only reach the page through the other.
 */
async function splitProxy(writes: number, live: number): Promise<{ server: Server; port: number }> {
  const server = createHttpServer((req, res) => {
    const port = req.url?.startsWith('/trpc/user.onChange') ? live : writes;
    const upstream = httpRequest(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

describe.skipIf(!run)('web app (Redis mode)', () => {
  let redis: ChildProcess;
  let redisUrl: string;
  let browser: Browser;
  const adminSecret = `web-redis-admin-${crypto.randomUUID()}`;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const port = await freePort();
    redis = spawn(
      REDIS,
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    redisUrl = `redis://127.0.0.1:${port}/0`;
    await until('redis-server', async () => {
      const s = connect(port, '127.0.0.1');
      return new Promise<boolean>((resolve) => {
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
    });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    for (const stop of stops.reverse()) await stop();
    redis?.kill('SIGTERM');
  });

  it('shows no demo accounts, and resumes the live subscription with its last event id after the API restarts', async () => {
    const apiPort = await freePort();
    const webPort = await freePort();
    const origin = `http://localhost:${webPort}`;
    let api: Api = await startApi({ port: apiPort, redisUrl, webOrigin: origin, adminSecret });
    stops.push(() => api.stop());
    const web: Web = await startWeb(`http://127.0.0.1:${apiPort}`, webPort);
    stops.push(() => web.stop());
    const admin = adminClient(api);
    const fay = await admin.admin.createAccount.mutate({
      account: 'fay',
      profile: { nick: 'Fay Before' },
    });
    const gus = await admin.admin.createAccount.mutate({
      account: 'gus',
      profile: { nick: 'Gus' },
    });

    const ctx = await browser.newContext();
    const problems: string[] = [];
    const signin = await ctx.newPage();
    await signin.goto(`${web.url}/signin`);
    await signin.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await signin.getByRole('heading', { name: 'Demo accounts' }).count()).toBe(0);
    await signIn(ctx, web, 'gus', gus.token);

    const page = await ctx.newPage();
    watchConsole(page, problems);
    const subscriptions: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/trpc/user.onChange')) subscriptions.push(decodeURIComponent(r.url()));
    });
    await page.goto(`${web.url}/users/fay`);
    await page.getByRole('heading', { name: 'Fay Before' }).waitFor();
    await waitLive(page);

    // The API goes away; meanwhile another instance on the same Redis takes a change.
    await api.stop();
    await page.locator('[data-live="reconnecting"]').waitFor({ timeout: 15_000 });
    // Meanwhile an action says the API is away instead of failing silently.
    await page.getByRole('button', { name: 'Add friend' }).click();
    await page
      .getByRole('alert')
      .getByText(/the Namecard API does not answer/)
      .waitFor();
    const other = await startApi({ redisUrl, webOrigin: origin, adminSecret });
    stops.push(() => other.stop());
    await adminClient(other).admin.updateUser.mutate({
      account: 'fay',
      patch: { nick: 'Fay After' },
    });
    await other.stop();

    // The API comes back on its port: the page resumes from its last event id and catches up.
    api = await startApi({ port: apiPort, redisUrl, webOrigin: origin, adminSecret });
    await page.getByRole('heading', { name: 'Fay After' }).waitFor({ timeout: 20_000 });
    await waitLive(page);
    expect(subscriptions.at(-1)).toMatch(/"lastEventId":"n24_[0-9a-z]+_[0-9a-z.]+"/);
    expect(fay.account).toBe('fay');
    expect(problems).toEqual([]);
    await ctx.close();
    await web.stop();
    await api.stop();
  });

  it('works against two API instances behind one URL: a change written through one reaches the page through the other', async () => {
    const webPort = await freePort();
    const origin = `http://localhost:${webPort}`;
    const a = await startApi({ redisUrl, webOrigin: origin, adminSecret });
    stops.push(() => a.stop());
    const b = await startApi({ redisUrl, webOrigin: origin, adminSecret });
    stops.push(() => b.stop());
    const lb = await splitProxy(a.port, b.port);
    stops.push(() => new Promise((r) => lb.server.close(() => r())));
    const web = await startWeb(`http://127.0.0.1:${lb.port}`, webPort);
    stops.push(() => web.stop());
    const admin = adminClient(a);
    const hal = await admin.admin.createAccount.mutate({
      account: 'hal',
      profile: { nick: 'Hal' },
    });
    const ivy = await admin.admin.createAccount.mutate({
      account: 'ivy',
      profile: { nick: 'Ivy' },
    });

    const writer = await browser.newContext();
    const reader = await browser.newContext();
    await signIn(writer, web, 'hal', hal.token);
    await signIn(reader, web, 'ivy', ivy.token);
    const watching = await reader.newPage();
    await watching.goto(`${web.url}/users?q=hal`);
    await watching.getByRole('link', { name: /Hal/ }).waitFor();
    await waitLive(watching);
    const me = await writer.newPage();
    await me.goto(`${web.url}/me`);
    for (let i = 1; i <= 3; i++) {
      await me.getByLabel('Nick').fill(`Hal ${i}`);
      await me.getByRole('button', { name: 'Save' }).click();
      await me.getByText('Saved.').waitFor();
      await watching.getByRole('link', { name: new RegExp(`Hal ${i}`) }).waitFor({ timeout: 2000 });
    }
    await writer.close();
    await reader.close();
  });
});
