/**
 * The published package, used the way a team outside this repository would: `npm pack` (which
 * builds it), `npm install <tarball>` into a new project under the OS temp directory (the npm
 * registry provides the dependencies), then, there:
 *
 * - NetEase IM's user-profile sample (issue 7's text, verbatim but for the connection options)
 *   runs under plain `node` against a real server (memory mode, port 0), and NIM's callbacks come
 *   in NIM's order with the right data;
 * - `tsc` type-checks a small consumer with `moduleResolution` `bundler` and `node16`, where a
 *   wrong procedure input is a type error;
 * - esbuild bundles both entry points for a browser.
 *
 * Takes about a minute (the build and `npm install` dominate). Needs the npm registry.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createNamecardTrpc } from '../src';
import { adminClient, createAccounts, startTestServer, waitFor, type TestServer } from './helpers';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const tsc = join(repo, 'node_modules/typescript/bin/tsc');

/** Issue 7's sample, as written there: only `url` and `token` are replaced before it runs. */
const SAMPLE = `var nim = NIM.getInstance({ url: 'http://localhost:4000', account: 'alice', token: '...',
  onmyinfo: onMyInfo, onupdatemyinfo: onUpdateMyInfo, onusers: onUsers, onupdateuser: onUpdateUser });
function onMyInfo(user) { data.myInfo = user; updateMyInfoUI(); }
function onUpdateMyInfo(user) { data.myInfo = NIM.util.merge(data.myInfo, user); updateMyInfoUI(); }
function onUsers(users) { data.users = nim.mergeUsers(data.users, users); }
function onUpdateUser(user) { data.users = nim.mergeUsers(data.users, user); }
nim.updateMyInfo({ nick: 'newNick', avatar: 'http://newAvatar', sign: 'newSign', gender: 'male',
  email: 'new@email.com', birth: '1900-01-01', tel: '13523578129',
  custom: '{type: "newCustom", value: "new"}', done: updateMyInfoDone });
function updateMyInfoDone(error, user) { if (!error) { onUpdateMyInfo(user); } }
nim.getUser({ account: 'account', done: getUserDone });
nim.getUsers({ accounts: ['account1', 'account2'], done: getUsersDone });
`;

/**
 * Around the sample: what the guide leaves to the app (`data`, `updateMyInfoUI`, the two done
 * functions it does not show), and a recorder that wraps the callbacks the sample hands to
 * `NIM.getInstance` and the `done` of each call, printing one JSON line per call. Stdin closing
 * means: print `data`, destroy the instance, and end (the process must exit by itself).
 */
const harness = (sample: string) => `import NIM from '@namecard/client/nim';
const say = (...line) => process.stdout.write(JSON.stringify(line) + '\\n');
const plainError = (e) => e && { code: e.code, message: e.message, fieldErrors: e.fieldErrors, isError: e instanceof Error };
const getInstance = NIM.getInstance.bind(NIM);
NIM.getInstance = (options) => {
  const spied = { ...options };
  for (const [key, fn] of Object.entries(options)) {
    if (key.startsWith('on') && typeof fn === 'function') spied[key] = (...args) => { say(key, ...args); return fn(...args); };
  }
  return getInstance(spied);
};
for (const api of ['updateMyInfo', 'getUser', 'getUsers']) {
  const original = NIM.prototype[api];
  NIM.prototype[api] = function (options) {
    const done = options.done;
    return original.call(this, { ...options, done: (error, result) => { say('done:' + api, plainError(error), result); return done(error, result); } });
  };
}
var data = {};
function updateMyInfoUI() {}
function getUserDone(error, user) {}
function getUsersDone(error, users) {}

${sample}
process.stdin.resume();
process.stdin.on('end', () => {
  say('data', data);
  nim.destroy({ done: () => say('destroyed') });
});
`;

const CONSUMER = `import { createNamecardClient, createNamecardTrpc, type AppRouter, type Profile, type RouterInputs } from '@namecard/client';
import NIM, { NIMError, type NIMUser } from '@namecard/client/nim';
import { createTRPCClient, httpLink } from '@trpc/client';

const trpc = createNamecardTrpc({ url: 'http://localhost:4000', token: 't' });
export async function useIt(): Promise<string> {
  const me: Profile = await trpc.user.getMyInfo.query();
  const patch: RouterInputs['user']['updateMyInfo'] = { nick: 'x', gender: 'male' };
  await trpc.user.updateMyInfo.mutate(patch);
  const page = await trpc.user.search.query({ query: 'jo', limit: 5 });
  const sync = await trpc.user.sync.query();
  // @ts-expect-error accounts must be a list of accounts
  await trpc.user.getUsers.query({ accounts: 'bob' });
  // @ts-expect-error gender is 'unknown' | 'male' | 'female' (or '' to reset)
  await trpc.user.updateMyInfo.mutate({ gender: 'other' });
  // @ts-expect-error unknown procedure
  await trpc.user.deleteEverything.mutate();
  const raw = createTRPCClient<AppRouter>({ links: [httpLink({ url: 'http://localhost:4000/trpc' })] });
  const friends: string[] = await raw.friend.list.query();
  const client = createNamecardClient({ url: 'http://localhost:4000', token: 't', onupdateuser: (p: Profile) => p.nick });
  await client.close();
  const nim = NIM.getInstance({ url: 'http://localhost:4000', account: 'a', token: 't' });
  const user: NIMUser = await nim.getUser({ account: 'b', done: (e: NIMError | null, u: NIMUser | null) => e?.code ?? u?.gender });
  return me.nick + page.users.length + sync.myInfo.gender + friends.length + user.birth;
}
`;

const tsconfig = (module: string, moduleResolution: string, skipLibCheck: boolean) =>
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2023', 'ESNext.Disposable', 'DOM'],
      module,
      moduleResolution,
      strict: true,
      noEmit: true,
      skipLibCheck,
      types: ['node'],
    },
    files: ['consumer.ts'],
  });

let server: TestServer;
let dir: string;
let tarball: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'namecard-client-consumer-'));
  // npm pack runs the package's prepack script: the build.
  const { stdout } = await run(
    'npm',
    ['pack', '-w', '@namecard/client', '--pack-destination', dir, '--json'],
    // Plain output: the build's log (before the JSON) may otherwise hold colour codes with `[`.
    {
      cwd: repo,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    },
  );
  // npm's JSON is the last part of stdout and starts on a line of its own.
  const packed = JSON.parse(stdout.slice(stdout.lastIndexOf('\n[') + 1)) as {
    filename: string;
  }[];
  tarball = join(dir, packed[0]!.filename);
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run(
    'npm',
    ['install', tarball, '@types/node@^20.19.0', '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: dir, maxBuffer: 16 * 1024 * 1024 },
  );
  server = await startTestServer();
  await createAccounts(server, ['account', 'account1', 'account2']);
}, 300_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed package in a project outside the repository', () => {
  test('installs only its npm dependencies; its package.json points at built files only', async () => {
    const { stdout } = await run('npm', ['ls', '--all', '--json'], { cwd: dir });
    const names = new Set<string>();
    const walk = (deps: Record<string, { dependencies?: object }> | undefined) => {
      for (const [name, dep] of Object.entries(deps ?? {})) {
        names.add(name);
        walk(dep.dependencies as Record<string, { dependencies?: object }> | undefined);
      }
    };
    walk(
      (JSON.parse(stdout) as { dependencies?: Record<string, { dependencies?: object }> })
        .dependencies,
    );
    expect(names).toContain('@namecard/client');
    expect(names).toContain('@trpc/client');
    expect(names).toContain('eventsource');
    for (const absent of ['@namecard/api', '@namecard/db', 'ioredis', 'ioredis-mock', 'zod']) {
      expect(names, absent).not.toContain(absent);
    }
    const manifest = await readFile(
      join(dir, 'node_modules/@namecard/client/package.json'),
      'utf8',
    );
    const pkg = JSON.parse(manifest) as { exports: object; dependencies: object; files: string[] };
    const targets: string[] = [];
    const collect = (node: unknown) => {
      if (typeof node === 'string') targets.push(node);
      else for (const value of Object.values(node as object)) collect(value);
    };
    collect(pkg.exports);
    expect(targets.filter((t) => !t.startsWith('./dist/') && t !== './package.json')).toEqual([]);
    expect(targets).toContain('./dist/nim.d.ts');
    expect(pkg.files).toEqual(['dist']);
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      '@trpc/client',
      '@trpc/server',
      'eventsource',
    ]);
  });

  test("NIM's sample runs under plain node: callbacks in NIM's order, done once per call, live updates", async () => {
    const admin = adminClient(server);
    const [aliceBefore] = await admin.admin.getUsers.query({ accounts: ['alice'] });
    const sample = SAMPLE.replace("url: 'http://localhost:4000'", `url: '${server.url}'`).replace(
      "token: '...'",
      `token: '${server.tokens.alice}'`,
    );
    // Exactly the two connection options changed.
    expect(sample).not.toBe(SAMPLE);
    expect(
      sample.replace(server.url, 'http://localhost:4000').replace(server.tokens.alice, '...'),
    ).toBe(SAMPLE);
    await writeFile(join(dir, 'app.mjs'), harness(sample));

    const child = spawn(process.execPath, ['app.mjs'], {
      cwd: dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: unknown[][] = [];
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout }).on('line', (line) =>
      lines.push(JSON.parse(line) as unknown[]),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const names = () => lines.map((l) => String(l[0]));
    const one = (name: string) => {
      const found = lines.filter((l) => l[0] === name);
      expect(found, `${name} once`).toHaveLength(1);
      return found[0]!;
    };
    try {
      await waitFor(
        () =>
          ['done:updateMyInfo', 'done:getUser', 'done:getUsers'].every((n) => names().includes(n)),
        20_000,
        `the three done calls (got ${JSON.stringify(names())}; stderr ${stderr})`,
      );

      // NIM's order: my profile, then my friends', then the answers to the calls made meanwhile.
      expect(names().slice(0, 2)).toEqual(['onmyinfo', 'onusers']);
      expect(one('onmyinfo')[1]).toMatchObject({ account: 'alice', nick: aliceBefore!.nick });
      const friends = one('onusers')[1] as { account: string }[];
      expect(friends.map((u) => u.account).sort()).toEqual(['bob', 'carol']);

      // The sample's custom is not JSON: rejected, naming custom; nothing changed.
      const [, updateError, updated] = one('done:updateMyInfo');
      expect(updated).toBeNull();
      expect(updateError).toMatchObject({ code: 414, isError: true });
      expect((updateError as { message: string }).message).toMatch(/^custom: /);
      expect(Object.keys((updateError as { fieldErrors: object }).fieldErrors)).toEqual(['custom']);
      const [aliceAfter] = await admin.admin.getUsers.query({ accounts: ['alice'] });
      expect(aliceAfter).toEqual(aliceBefore);

      const [, userError, user] = one('done:getUser');
      expect(userError).toBeNull();
      expect(user).toMatchObject({ account: 'account', nick: 'Nick account', gender: 'unknown' });
      const [, usersError, users] = one('done:getUsers');
      expect(usersError).toBeNull();
      expect((users as { account: string }[]).map((u) => u.account)).toEqual([
        'account1',
        'account2',
      ]);

      // Another client changes a friend's profile: onupdateuser, live.
      await createNamecardTrpc({
        url: server.url,
        token: server.tokens.bob,
      }).user.updateMyInfo.mutate({ sign: 'changed by bob' });
      await waitFor(() => names().includes('onupdateuser'), 10_000, 'onupdateuser');
      expect(one('onupdateuser')[1]).toMatchObject({ account: 'bob', sign: 'changed by bob' });

      // Another session of mine changes my profile: onupdatemyinfo.
      await createNamecardTrpc({
        url: server.url,
        token: server.tokens.alice,
      }).user.updateMyInfo.mutate({ nick: 'Alice elsewhere' });
      await waitFor(() => names().includes('onupdatemyinfo'), 10_000, 'onupdatemyinfo');
      expect(one('onupdatemyinfo')[1]).toMatchObject({ account: 'alice', nick: 'Alice elsewhere' });
      expect(
        names()
          .slice(2)
          .filter((n) => n.startsWith('on')),
      ).toEqual(['onupdateuser', 'onupdatemyinfo']);

      // What the sample kept in `data`, through NIM.util.merge and nim.mergeUsers.
      child.stdin.end();
      await waitFor(() => names().includes('destroyed'), 10_000, 'destroyed');
      const data = one('data')[1] as {
        myInfo: { nick: string; custom: string };
        users: { account: string; sign: string }[];
      };
      expect(data.myInfo).toMatchObject({ nick: 'Alice elsewhere', custom: aliceBefore!.custom });
      expect(data.users.map((u) => u.account).sort()).toEqual(['bob', 'carol']);
      expect(data.users.find((u) => u.account === 'bob')?.sign).toBe('changed by bob');
      // destroy() leaves nothing open: the process ends by itself.
      expect(await exited, stderr).toBe(0);
      expect(stderr).toBe('');
    } finally {
      child.kill();
    }
  }, 60_000);

  test.each([
    ['bundler', 'ESNext', 'Bundler'],
    ['node16', 'Node16', 'Node16'],
  ])(
    'tsc (%s) type-checks a consumer end to end; a wrong input is a type error',
    async (name, module, resolution) => {
      await writeFile(join(dir, 'consumer.ts'), CONSUMER);
      await writeFile(join(dir, `tsconfig.${name}.json`), tsconfig(module, resolution, true));
      const checked = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], {
        cwd: dir,
      }).then(
        () => '',
        (error: { stdout: string }) => error.stdout,
      );
      expect(checked).toBe('');

      // Without skipLibCheck, nothing in @namecard/client's declarations (or the consumer) errs; what
      // remains is in @trpc/server's own (its ws adapter), as for any @trpc/client user.
      await writeFile(
        join(dir, `tsconfig.${name}-strict.json`),
        tsconfig(module, resolution, false),
      );
      const strict = await run(process.execPath, [tsc, '-p', `tsconfig.${name}-strict.json`], {
        cwd: dir,
      }).then(
        () => '',
        (error: { stdout: string }) => error.stdout,
      );
      const errors = strict.split('\n').filter((l) => /error TS\d+/.test(l));
      expect(errors.filter((l) => !l.startsWith('node_modules/@trpc/server/'))).toEqual([]);

      // The check can fail: a wrong input that is not expected is reported.
      await writeFile(
        join(dir, 'consumer.ts'),
        CONSUMER.replace('// @ts-expect-error accounts must be a list of accounts\n', ''),
      );
      const failing = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], {
        cwd: dir,
      }).then(
        () => '',
        (error: { stdout: string }) => error.stdout,
      );
      expect(failing).toMatch(
        /consumer\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'string\[\]'/,
      );
    },
    // Three whole tsc runs: about 8 s alone, but over a minute while every package's tests share
    // two cores (seen under `npm test`). A guard against a hang, not a speed check.
    240_000,
  );

  test('a browser bundler bundles both entry points from the installed package', async () => {
    const out = await build({
      stdin: {
        contents: `import { createNamecardClient } from '@namecard/client';
          import NIM from '@namecard/client/nim';
          globalThis.namecard = { createNamecardClient, NIM };`,
        resolveDir: dir,
        loader: 'js',
      },
      absWorkingDir: dir,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      minify: true,
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]!.text;
    expect(code).toContain('getInstance');
    expect(code).not.toMatch(/ioredis|from"node:|require\("/);
    expect(code.length).toBeLessThan(80_000);
  });
});
