/**
 * The client in a real browser: Debian's Chromium (headless, through playwright-core) loads a page
 * from another origin that imports the client bundled for browsers, signs in with a token, and
 * receives the initial sync and a live change over SSE (the `eventsource` package's fetch, with
 * the Authorization header: CORS preflights included). Skipped with a warning where
 * /usr/bin/chromium is missing; under CI=true it fails instead.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamecardTrpc } from '../src';
import { startTestServer, type TestServer } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
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

/** What the page's script records (read with `tab.evaluate`, which runs in the page). */
interface PageGlobals {
  namecard?: { events: string[][]; status: string; error: string | null; ready?: boolean };
}

const haveChromium = existsSync(CHROMIUM);
const mustRun = process.env.CI === 'true';
if (!haveChromium) {
  const what = `${CHROMIUM} not found (apt-get install chromium)`;
  if (mustRun) console.error(`\n[namecard/client] ${what}; CI=true, so the browser test FAILS.\n`);
  else console.warn(`\n[namecard/client] WARNING: browser test SKIPPED: ${what}.\n`);
}

/** Serves one page and the client bundle on a port of its own (another origin than the API). */
async function servePage(bundle: string): Promise<{ server: Server; origin: string }> {
  const html = `<!doctype html><meta charset="utf-8"><title>namecard client</title>
<script type="module" src="/client.js"></script>`;
  const server = createServer((req, res) => {
    if (req.url === '/client.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe.skipIf(!haveChromium && !mustRun)('in a browser (Chromium)', () => {
  let api: TestServer;
  let page: { server: Server; origin: string };
  let browser: Browser;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing and CI=true: this test must run`);
    // The page's script: the real client, bundled for browsers, reporting into window.namecard.
    const entry = `
      import { createNamecardClient } from ${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))};
      const params = new URLSearchParams(location.hash.slice(1));
      const seen = (window.namecard = { events: [], status: 'starting', error: null });
      const client = createNamecardClient({
        url: params.get('api'),
        token: params.get('token'),
        onmyinfo: (p) => seen.events.push(['onmyinfo', p.account]),
        onusers: (ps) => seen.events.push(['onusers', ps.map((p) => p.account).sort().join(',')]),
        onupdateuser: (p) => seen.events.push(['onupdateuser', p.account, p.sign]),
        onstatus: (s) => (seen.status = s),
        onerror: (e) => (seen.error = String(e)),
      });
      client.ready.then(() => (seen.ready = true), (e) => (seen.error = String(e)));
    `;
    const out = await build({
      stdin: {
        contents: entry,
        resolveDir: fileURLToPath(new URL('.', import.meta.url)),
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    page = await servePage(out.outputFiles[0]!.text);
    api = await startTestServer({ webOrigins: [page.origin] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    page?.server.close();
    await api?.close();
  });

  it('syncs at start, then gets a friend change live, across origins', async () => {
    const tab = await browser.newPage();
    const failed: string[] = [];
    tab.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
    await tab.goto(`${page.origin}/#api=${encodeURIComponent(api.url)}&token=${api.tokens.alice}`);
    await tab.waitForFunction(
      () => (globalThis as unknown as PageGlobals).namecard?.ready === true,
      null,
      {
        timeout: 15_000,
      },
    );
    expect(
      await tab.evaluate(() => (globalThis as unknown as PageGlobals).namecard!.events),
    ).toEqual([
      ['onmyinfo', 'alice'],
      ['onusers', 'bob,carol'],
    ]);
    expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).namecard!.status)).toBe(
      'live',
    );

    await createNamecardTrpc({ url: api.url, token: api.tokens.bob }).user.updateMyInfo.mutate({
      sign: 'hello browser',
    });
    await tab.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).namecard!.events.some(
          (e) => e[0] === 'onupdateuser',
        ),
      null,
      { timeout: 10_000 },
    );
    expect(
      await tab.evaluate(() => (globalThis as unknown as PageGlobals).namecard!.events.at(-1)),
    ).toEqual(['onupdateuser', 'bob', 'hello browser']);
    expect(
      await tab.evaluate(() => (globalThis as unknown as PageGlobals).namecard!.error),
    ).toBeNull();
    // The token travelled only in headers: the page's cookies hold nothing.
    expect(await tab.context().cookies()).toEqual([]);
    await tab.close();
  }, 60_000);
});
