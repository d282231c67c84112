/**
 * The web app in a real browser (Debian's Chromium through playwright-core) against the built
 * stack in memory mode: `next start` and `node apps/server/dist/index.js`, each on a free port.
 * Covers the checks of issue 6 one by one; with NAMECARD_SCREENSHOTS=1 it also writes the
 * README's screenshots (docs/screenshots/, 1280 and 390 px wide).
 */
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  axeViolations,
  browserAvailable,
  freePort,
  launchBrowser,
  screenshots,
  signIn,
  startApi,
  startWeb,
  until,
  userClient,
  waitLive,
  watchConsole,
  type Admin,
  type Api,
  type Web,
} from './stack';

const SEED = 60;

describe.skipIf(!browserAvailable('the web browser tests'))('web app (memory mode)', () => {
  let api: Api;
  let web: Web;
  let admin: Admin;
  let browser: Browser;
  const problems: string[] = [];
  /** Tokens of the accounts this suite creates. */
  const tokens: Record<string, string> = {};

  async function context(account?: string): Promise<BrowserContext> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    if (account) await signIn(ctx, web, account, tokens[account] ?? api.tokens[account]!);
    return ctx;
  }
  async function open(ctx: BrowserContext, path: string): Promise<Page> {
    const page = await ctx.newPage();
    watchConsole(page, problems);
    await page.goto(`${web.url}${path}`);
    return page;
  }
  const profile = async (account: string) =>
    (await admin.admin.getUsers.query({ accounts: [account] }))[0]!;

  beforeAll(async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    api = await startApi({ seedUsers: SEED, webOrigin: origin });
    web = await startWeb(api.url, port);
    admin = adminClient(api);
    const people = [
      {
        account: 'dave',
        profile: { nick: 'Dave Lin', email: 'dave@example.com', tel: '+1-555-0100' },
      },
      {
        account: 'erin',
        profile: {
          nick: 'Erin Shaw',
          email: 'erin@example.com',
          tel: '+1-555-0101',
          sign: 'Climbing and tea',
        },
      },
      { account: 'zh_ming', profile: { nick: '龘小明', sign: '你好' } },
      { account: 'zoe_u', profile: { nick: 'Zoé Ünique', sign: 'Accents welcome' } },
    ];
    for (const p of people) tokens[p.account] = (await admin.admin.createAccount.mutate(p)).token;
    // The generated users are seeded in the background: wait until all are in the directory.
    const alice = userClient(api, api.tokens.alice!);
    await until(
      'the seeded users',
      async () =>
        (await alice.user.search.query({ query: 'user', limit: 100 })).users.length === SEED,
    );
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await web?.stop();
    await api?.stop();
  });

  it('a signed-out visit to /me goes to sign in, a demo account signs in in one click, and it returns to /me', async () => {
    const ctx = await context();
    const page = await open(ctx, '/me');
    await expect.poll(() => page.url()).toBe(`${web.url}/signin?next=%2Fme`);
    await expect(page.getByRole('heading', { name: 'Demo accounts' }).isVisible()).resolves.toBe(
      true,
    );
    await screenshots(page, 'signin');
    await page.getByRole('button', { name: /Alice Liddell/ }).click();
    await page.waitForURL(`${web.url}/me`);
    await page.getByLabel('Nick').waitFor();
    expect(await page.getByLabel('Nick').inputValue()).toBe('Alice Liddell');
    // The session is an HttpOnly cookie; nothing readable by scripts holds a token.
    const cookies = await ctx.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([
      ['nc_session', true, 'Lax'],
    ]);
    expect(
      await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]),
    ).toEqual([0, 0, '']);
    await ctx.close();
  });

  it('signs in with account and token using only the keyboard, and refuses a wrong token', async () => {
    const ctx = await context();
    const page = await open(ctx, '/friends');
    await page.waitForURL(/\/signin\?next=%2Ffriends$/);
    await page.getByLabel('Account', { exact: true }).focus();
    await page.keyboard.type('dave');
    await page.keyboard.press('Tab');
    await page.keyboard.type('not-the-right-token-at-all');
    await page.keyboard.press('Enter');
    await page.getByText('Wrong account or token.').waitFor();
    await page.getByLabel('Token').fill('');
    await page.getByLabel('Token').focus();
    await page.keyboard.type(tokens.dave!);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${web.url}/friends`);
    await page.getByRole('heading', { name: 'Friends' }).waitFor();
    // An outside `next` is never followed.
    await page.goto(`${web.url}/signin?next=//evil.example/x`);
    await page.waitForURL(`${web.url}/me`);
    await ctx.close();
  });

  it('signs out; another tab of the same browser goes to sign in at its next action', async () => {
    const ctx = await context('erin');
    const first = await open(ctx, '/users');
    const second = await open(ctx, '/me');
    await second.getByLabel('Nick').waitFor();
    await waitLive(first);
    await waitLive(second);
    await first.getByRole('button', { name: 'Sign out' }).click();
    await first.waitForURL(`${web.url}/signin`);
    expect(await ctx.cookies()).toEqual([]);
    await second.getByLabel('Signature').fill('after sign-out');
    await second.getByRole('button', { name: 'Save' }).click();
    await second.waitForURL(`${web.url}/signin?next=%2Fme`);
    expect((await profile('erin')).sign).not.toBe('after sign-out');
    await ctx.close();
  });

  it('edits nick, signature and birth date, saves, and shows them after a reload', async () => {
    const ctx = await context('carol');
    const page = await open(ctx, '/me');
    await page.getByLabel('Nick').fill('Carol 更新');
    await page.getByLabel('Signature').fill('Edited in the browser');
    await page.getByLabel('Birth date').fill('1990-02-03');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    await page.reload();
    expect(await page.getByLabel('Nick').inputValue()).toBe('Carol 更新');
    expect(await page.getByLabel('Signature').inputValue()).toBe('Edited in the browser');
    expect(await page.getByLabel('Birth date').inputValue()).toBe('1990-02-03');
    const stored = await profile('carol');
    expect([stored.nick, stored.sign, stored.birth]).toEqual([
      'Carol 更新',
      'Edited in the browser',
      '1990-02-03',
    ]);
    // Every field has a visible label named after it.
    for (const label of [
      'Nick',
      'Avatar',
      'Signature',
      'Gender',
      'Email',
      'Birth date',
      'Phone',
      'Custom',
    ]) {
      expect(await page.getByLabel(label, { exact: true }).count()).toBe(1);
    }
    await screenshots(page, 'me');
    await ctx.close();
  });

  it('shows the message of each rejected field and saves nothing', async () => {
    const ctx = await context('dave');
    const page = await open(ctx, '/me');
    const before = await profile('dave');
    let sent = 0;
    page.on('request', (r) => {
      if (r.url().includes('user.updateMyInfo')) sent++;
    });
    await page.getByLabel('Avatar').fill('javascript:alert(1)');
    await page.getByLabel('Nick').fill('n'.repeat(65));
    await page.getByLabel('Custom').fill('{"theme": dark}');
    await page.getByText('must be an http: or https: URL').waitFor();
    await page.getByText('must be at most 64 characters').waitFor();
    await page.getByText(/must be valid JSON/).waitFor();
    expect(await page.getByText('65/64').count()).toBe(1);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Not saved: see the fields marked below.').waitFor();
    await screenshots(page, 'me-errors');
    expect(sent).toBe(0);
    expect(await profile('dave')).toEqual(before);

    // If the server still rejects (here a request altered on its way), its per-field message
    // shows under the field, and nothing is saved either.
    await page.getByRole('button', { name: 'Discard changes' }).click();
    await page.route('**/trpc/user.updateMyInfo*', (route) =>
      route.continue({ postData: JSON.stringify({ 0: { nick: 'ok', tel: 'call me maybe' } }) }),
    );
    await page.getByLabel('Nick').fill('ok');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('must contain only digits and + - ( )').waitFor();
    expect(await profile('dave')).toEqual(before);
    await ctx.close();
  });

  it('finds a Chinese nick by its first character and an accented nick without the accent; ?q= reloads', async () => {
    const ctx = await context('alice');
    const page = await open(ctx, '/users');
    const search = page.getByRole('searchbox', { name: 'Search people' });
    expect(await page.getByRole('search').count()).toBe(1);
    await search.fill('龘');
    await page.getByRole('link', { name: /龘小明/ }).waitFor();
    await page.waitForURL(`${web.url}/users?q=${encodeURIComponent('龘')}`);
    await search.fill('zoe un');
    await page.getByRole('link', { name: /Zoé Ünique/ }).waitFor();
    await page.waitForURL(`${web.url}/users?q=zoe%20un`);
    await page.reload();
    await page.getByRole('link', { name: /Zoé Ünique/ }).waitFor();
    expect(await search.inputValue()).toBe('zoe un');
    // Keyboard only: from the search box, Tab reaches the first result and Enter opens it.
    await search.focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe(
      '/users/zoe_u',
    );
    await page.keyboard.press('Enter');
    await page.waitForURL(`${web.url}/users/zoe_u`);
    await page.goBack();
    await search.fill('nobody-by-this-name');
    await page.getByText('No one matches “nobody-by-this-name”.').waitFor();
    await ctx.close();
  });

  it('"Show more" reaches the next page with no repeated row, and the search reloads to the same rows', async () => {
    const ctx = await context('alice');
    const page = await open(ctx, '/users?q=user');
    const rows = page.locator('.user-list .user-row-account');
    await expect.poll(() => rows.count()).toBe(20);
    const first = await rows.allTextContents();
    await screenshots(page, 'users');
    await page.getByRole('button', { name: 'Show more' }).click();
    await expect.poll(() => rows.count()).toBe(40);
    const both = await rows.allTextContents();
    expect(new Set(both).size).toBe(40);
    expect(both.slice(0, 20)).toEqual(first);
    await page.reload();
    await expect.poll(() => rows.count()).toBe(20);
    expect(await rows.allTextContents()).toEqual(first);
    await ctx.close();
  });

  it("a nick change in one browser appears in another's directory row, profile page and friends list within 2 s", async () => {
    const writer = await context('alice');
    const reader = await context('bob');
    const row = await open(reader, '/users?q=alice');
    const card = await open(reader, '/users/alice');
    const friends = await open(reader, '/friends');
    for (const p of [row, card, friends]) {
      await p.getByText('Alice Liddell').first().waitFor();
      await waitLive(p);
    }
    await screenshots(card, 'profile');
    await screenshots(friends, 'friends');
    const me = await open(writer, '/me');
    await waitLive(me);
    await me.getByLabel('Nick').fill('Alice in Chains');
    await me.getByRole('button', { name: 'Save' }).click();
    for (const p of [row, card, friends]) {
      await p.getByText('Alice in Chains').first().waitFor({ timeout: 2000 });
    }
    // My other tab follows too.
    const other = await open(writer, '/users/bob');
    await waitLive(other);
    await me.getByLabel('Nick').fill('Alice Liddell');
    await me.getByRole('button', { name: 'Save' }).click();
    await other.locator('.me-name', { hasText: 'Alice Liddell' }).waitFor({ timeout: 2000 });
    await card.getByRole('heading', { name: 'Alice Liddell' }).waitFor({ timeout: 2000 });
    await writer.close();
    await reader.close();
  });

  it('does not lose a change made between the first paint and the start of the live subscription', async () => {
    const ctx = await context('bob');
    const page = await ctx.newPage();
    watchConsole(page, problems);
    // Hold the page's subscription request until the change is made (it then goes through).
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/trpc/user.onChange*', async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${web.url}/users/zh_ming`);
    await page.getByRole('heading', { name: '龘小明' }).waitFor();
    await admin.admin.updateUser.mutate({
      account: 'zh_ming',
      patch: { sign: 'changed before live' },
    });
    release();
    await waitLive(page);
    await page.getByText('changed before live').waitFor();
    await ctx.close();
  });

  it('adds and removes a friend; a friend sees my email, a stranger does not', async () => {
    const erin = await context('erin');
    const dave = await context('dave');
    const erinsView = await open(erin, '/users/dave');
    const davesView = await open(dave, '/users/erin');
    await davesView.getByRole('heading', { name: 'Erin Shaw' }).waitFor();
    expect(await davesView.getByText('erin@example.com').count()).toBe(0);
    expect(await davesView.getByText('Email and phone are shown only').count()).toBe(1);

    await erinsView.getByRole('button', { name: 'Add friend' }).click();
    await erinsView.getByRole('button', { name: 'Remove friend' }).waitFor();
    const list = await open(erin, '/friends');
    await list.getByRole('link', { name: /Dave Lin/ }).waitFor();
    await davesView.reload();
    await davesView.getByText('erin@example.com').waitFor();
    await davesView.getByText('+1-555-0101').waitFor();
    // A stranger (erin did not add alice) still does not see it.
    const stranger = await open(await context('alice'), '/users/erin');
    await stranger.getByRole('heading', { name: 'Erin Shaw' }).waitFor();
    expect(await stranger.getByText('erin@example.com').count()).toBe(0);

    await erinsView.getByRole('button', { name: 'Remove friend' }).click();
    await erinsView.getByRole('button', { name: 'Add friend' }).waitFor();
    await davesView.reload();
    await davesView.getByRole('heading', { name: 'Erin Shaw' }).waitFor();
    expect(await davesView.getByText('erin@example.com').count()).toBe(0);
    await list.reload();
    await list.getByText('You have not added anyone yet.').waitFor();
    await erin.close();
    await dave.close();
  });

  it('answers an unknown account with HTTP 404 and the not-found page', async () => {
    const ctx = await context('alice');
    const page = await ctx.newPage();
    watchConsole(page, problems);
    const res = await page.goto(`${web.url}/users/no_such_user`);
    expect(res?.status()).toBe(404);
    await page.getByRole('heading', { name: 'No such page or person' }).waitFor();
    await screenshots(page, 'not-found');
    await ctx.close();
  });

  it('renders profile text as text, and a broken avatar as initials', async () => {
    await admin.admin.updateUser.mutate({
      account: 'zoe_u',
      patch: {
        sign: '<img src=x onerror="window.pwned=1"><b>bold</b>',
        avatar: `${web.url}/no-such-avatar.png`,
      },
    });
    const ctx = await context('alice');
    const page = await open(ctx, '/users/zoe_u');
    await page.getByText('<img src=x onerror="window.pwned=1"><b>bold</b>').waitFor();
    expect(await page.locator('.hero b').count()).toBe(0);
    await page.locator('.hero .avatar-initials', { hasText: 'ZÜ' }).waitFor();
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    await ctx.close();
  });

  it('refuses cross-site posts that carry the cookie and sends the security headers', async () => {
    const ctx = await context('alice');
    const before = await profile('alice');
    // A page on another site that posts a form to the web origin's /trpc.
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<form id="f" method="POST" enctype="text/plain" action="${web.url}/trpc/user.updateMyInfo">
        <input name='{"nick":"pwned","x":"' value='"}'></form><script>f.submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await page.waitForURL(/\/trpc\/user\.updateMyInfo/);
    evil.close();
    expect((await profile('alice')).nick).toBe(before.nick);

    // The same with the cookie attached on purpose (as an older browser without SameSite would).
    const cookie = (await ctx.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const attempts: [string, string][] = [
      ['text/plain', '{"nick":"pwned"}'],
      ['application/x-www-form-urlencoded', 'nick=pwned'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\nContent-Disposition: form-data; name="nick"\r\n\r\npwned\r\n--x--\r\n',
      ],
      ['application/json', '{"nick":"pwned"}'],
    ];
    for (const [type, body] of attempts) {
      const res = await fetch(`${web.url}/trpc/user.updateMyInfo`, {
        method: 'POST',
        headers: { cookie, 'content-type': type, origin: 'http://evil.example' },
        body,
      });
      expect(res.status, type).toBe(403);
    }
    expect((await profile('alice')).nick).toBe(before.nick);
    // The /trpc proxy does not pass on (or hold in memory) an oversized body.
    const big = await fetch(`${web.url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: web.url },
      body: JSON.stringify({ sign: 'x'.repeat(300_000) }),
    });
    expect(big.status).toBe(413);

    const res = await fetch(`${web.url}/users`, { headers: { cookie }, redirect: 'manual' });
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self' 'nonce-[^']+' 'strict-dynamic'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('strict-origin-when-cross-origin');
    expect(res.headers.get('permissions-policy')).toContain('camera=()');
    await ctx.close();
  });

  it('has no WCAG A/AA problems axe-core can find, at desktop and phone widths, light and dark', async () => {
    const ctx = await context('bob');
    const found: string[] = [];
    const pages = [
      '/users?q=user',
      '/users',
      '/users/alice',
      '/friends',
      '/me',
      '/users/no_such_user',
    ];
    for (const path of pages) {
      const page = await open(ctx, path);
      await page.locator('main h1').first().waitFor();
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 800 });
        found.push(...(await axeViolations(page)).map((v) => `${path} @${width}: ${v}`));
      }
      await page.emulateMedia({ colorScheme: 'dark' });
      found.push(...(await axeViolations(page)).map((v) => `${path} dark: ${v}`));
      if (path === '/users?q=user') await screenshots(page, 'users-dark');
      await page.close();
    }
    const signedOut = await open(await context(), '/signin');
    await signedOut.getByRole('heading', { name: 'Demo accounts' }).waitFor();
    found.push(...(await axeViolations(signedOut)).map((v) => `/signin: ${v}`));
    expect(found).toEqual([]);
    await ctx.close();
  });

  it('saw no Content-Security-Policy violation or page error on any page', () => {
    expect(problems).toEqual([]);
  });
});
