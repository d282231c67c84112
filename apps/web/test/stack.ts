/**
 * The built stack for browser tests: the API as `node apps/server/dist/index.js` and the web as
 * `next start` (both must be built first: turbo's `@namecard/web#test` depends on both builds),
 * real processes on free ports, stopped by PID; Debian's Chromium through playwright-core.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AppRouter } from '@namecard/api';
import { spareTcpPort } from '@namecard/db/testing';
import { createTRPCClient, httpLink } from '@trpc/client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WEB_DIR = fileURLToPath(new URL('../', import.meta.url));
const SERVER_ENTRY = `${ROOT}apps/server/dist/index.js`;

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether the browser suites run; without Chromium they skip loudly, and fail under CI=true. */
export function browserAvailable(suite: string): boolean {
  const have = existsSync(CHROMIUM);
  if (!have) {
    const what = `${CHROMIUM} not found (apt-get install chromium)`;
    if (process.env.CI === 'true') {
      console.error(`\n[namecard/web] ${what}; CI=true, so ${suite} FAILS.\n`);
      return true; // run, and fail at launch
    }
    console.warn(`\n[namecard/web] WARNING: ${suite} SKIPPED: ${what}.\n`);
  }
  return have;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/** A free TCP port (for a process that must come back on the same port after a restart). */
export const freePort = spareTcpPort;

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string>): Proc {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitFor<T>(
  what: string,
  proc: Proc,
  probe: () => T | null | Promise<T | null>,
  ms = 60_000,
) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited:\n${proc.output()}`);
    const value = await Promise.resolve(probe()).catch(() => null);
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start in ${ms} ms:\n${proc.output()}`);
}

export interface Api extends Proc {
  url: string;
  port: number;
  adminSecret: string;
  /** Demo tokens printed at start (memory mode). */
  tokens: Record<string, string>;
}

export async function startApi(options: {
  port?: number;
  redisUrl?: string;
  seedUsers?: number;
  webOrigin: string;
  adminSecret?: string;
}): Promise<Api> {
  const adminSecret = options.adminSecret ?? `web-test-admin-${crypto.randomUUID()}`;
  const proc = run('node', [SERVER_ENTRY], ROOT, {
    PORT: String(options.port ?? 0),
    HOST: '127.0.0.1',
    REDIS_URL: options.redisUrl ?? '',
    NAMECARD_ADMIN_SECRET: adminSecret,
    NAMECARD_SEED_USERS: String(options.seedUsers ?? 0),
    NAMECARD_WEB_ORIGIN: options.webOrigin,
    LOG_LEVEL: 'warn',
  });
  const port = await waitFor('the API', proc, () => {
    const m = /Namecard API on http:\/\/localhost:(\d+)\//.exec(proc.output());
    return m ? Number(m[1]) : null;
  });
  const url = `http://127.0.0.1:${port}`;
  const tokens: Record<string, string> = {};
  for (const m of proc.output().matchAll(/^\s+(\S+)\s+token (\S+)/gm)) tokens[m[1]!] = m[2]!;
  return { ...proc, url, port, adminSecret, tokens };
}

export interface Web extends Proc {
  /** http://localhost:<port> */
  url: string;
}

/** `next start` of the built app, talking to the API at `apiUrl`. */
export async function startWeb(apiUrl: string, port?: number): Promise<Web> {
  const p = port ?? (await freePort());
  const proc = run(
    `${ROOT}node_modules/.bin/next`,
    ['start', '-p', String(p), '-H', '127.0.0.1'],
    WEB_DIR,
    {
      NAMECARD_API_URL: apiUrl,
      NEXT_TELEMETRY_DISABLED: '1',
    },
  );
  const url = `http://localhost:${p}`;
  await waitFor('next start', proc, async () => ((await fetch(`${url}/signin`)).ok ? true : null));
  return { ...proc, url };
}

export type Admin = ReturnType<typeof adminClient>;

export function adminClient(api: { url: string; adminSecret: string }) {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${api.url}/trpc`, headers: { 'x-namecard-admin': api.adminSecret } })],
  });
}

/** Signs a browser context in through the web origin's own /trpc (the cookie lands in its jar). */
export async function signIn(context: BrowserContext, web: Web, account: string, token: string) {
  const res = await context.request.post(`${web.url}/trpc/auth.signIn`, {
    data: { account, token },
    headers: { origin: web.url },
  });
  if (!res.ok())
    throw new Error(`sign-in of ${account} failed: ${res.status()} ${await res.text()}`);
}

/** Waits until the page's live subscription says it is live (the header's badge). */
export async function waitLive(page: Page) {
  await page.locator('[data-live="live"]').waitFor({ timeout: 15_000 });
}

/** Collects Content-Security-Policy violations and page errors reported in the console. */
export function watchConsole(page: Page, into: string[]) {
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) into.push(m.text());
  });
  page.on('pageerror', (e) => into.push(`pageerror: ${e.message}`));
}

/** A typed client signed in with a user's token (to check what the API really holds). */
export function userClient(api: { url: string }, token: string) {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${api.url}/trpc`, headers: { authorization: `Bearer ${token}` } })],
  });
}

const WIDTHS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];

/**
 * Screenshots of the page at desktop and phone widths, into docs/screenshots/<name>-<width>.png,
 * only when NAMECARD_SCREENSHOTS=1 (so an ordinary test run does not rewrite the pictures).
 */
export async function screenshots(page: Page, name: string) {
  if (process.env.NAMECARD_SCREENSHOTS !== '1') return;
  const before = page.viewportSize();
  for (const size of WIDTHS) {
    await page.setViewportSize(size);
    await page.evaluate(() => document.fonts.ready);
    // The whole page in one viewport (a full-page capture would paint the sticky header mid-page).
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: size.width, height: Math.max(size.height, height) });
    await page.screenshot({ path: `${ROOT}docs/screenshots/${name}-${size.width}.png` });
  }
  if (before) await page.setViewportSize(before);
}

/** Polls until `probe` returns true (for setup, where vitest's expect.poll is not available). */
export async function until(what: string, probe: () => Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/**
 * Accessibility problems axe-core finds on the page (WCAG 2.x A and AA rules), as
 * "rule: target" lines. Evaluated through the DevTools protocol, which the page's CSP allows.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(o: object): Promise<AxeResult> } }).axe;
    const result = await axe.run({ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] });
    return result.violations.flatMap((v) =>
      v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}`),
    );
  });
}

interface AxeResult {
  violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
}
