/**
 * Test helpers: a real Namecard server in this process (memory mode, port 0 unless told), an
 * admin tRPC client for it, a counting `fetch`, and small waiting helpers.
 */
import { type AppRouter } from '@namecard/api';
import { newMemoryName } from '@namecard/db';
import { createTRPCClient, httpLink } from '@trpc/client';
import { startServer, type RunningServer } from '../../../apps/server/src/app';
import { createLogger } from '../../../apps/server/src/logger';
import {
  createNamecardClient,
  type NamecardClient,
  type NamecardClientOptions,
  type Profile,
} from '../src';

export type Demo = 'alice' | 'bob' | 'carol';

export interface TestServer extends RunningServer {
  adminSecret: string;
  memoryName: string;
  /** alice, bob and carol: friends of each other. */
  tokens: Record<Demo, string>;
}

export interface StartOptions {
  /** Restart on the data set (and port) of an earlier server. */
  after?: TestServer;
  port?: number;
  logMaxLen?: number;
  /** Browser origins the server allows (CORS). */
  webOrigins?: string[];
}

export async function startTestServer(options: StartOptions = {}): Promise<TestServer> {
  const { after } = options;
  const memoryName = after?.memoryName ?? newMemoryName();
  const adminSecret = after?.adminSecret ?? `client-test-admin-${crypto.randomUUID()}`;
  const running = await startServer({
    port: options.port ?? 0,
    host: '127.0.0.1',
    memoryName,
    adminSecret,
    seedUsers: 0,
    ...(options.logMaxLen ? { logMaxLen: options.logMaxLen } : {}),
    shutdownGraceMs: 500,
    ...(options.webOrigins ? { webOrigins: options.webOrigins } : {}),
    logger: createLogger(process.env.NAMECARD_TEST_LOG_LEVEL ?? 'silent'),
  });
  let tokens: Record<Demo, string>;
  if (after) tokens = after.tokens;
  else {
    const demo = running.seed?.demo ?? [];
    const token = (account: Demo) => {
      const found = demo.find((d) => d.account === account);
      if (!found) throw new Error(`no demo account ${account}`);
      return found.token;
    };
    tokens = { alice: token('alice'), bob: token('bob'), carol: token('carol') };
  }
  return { ...running, adminSecret, memoryName, tokens };
}

/** An admin tRPC client (X-Namecard-Admin) over plain HTTP. */
export function adminClient(server: TestServer) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({ url: `${server.url}/trpc`, headers: { 'x-namecard-admin': server.adminSecret } }),
    ],
  });
}

/** Creates accounts in parallel; returns their tokens by account. */
export async function createAccounts(
  server: TestServer,
  accounts: readonly string[],
): Promise<Map<string, string>> {
  const admin = adminClient(server);
  const tokens = new Map<string, string>();
  const pending = [...accounts];
  const worker = async () => {
    for (let account = pending.shift(); account !== undefined; account = pending.shift()) {
      const created = await admin.admin.createAccount.mutate({
        account,
        profile: { nick: `Nick ${account}` },
      });
      tokens.set(account, created.token);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return tokens;
}

/** A `fetch` that records the path of every request it makes (`/trpc/user.getUsers`, ...). */
export function countingFetch() {
  const paths: string[] = [];
  const fetchFn = (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    paths.push(new URL(url).pathname);
    return fetch(input, init);
  };
  return { fetch: fetchFn, paths, count: (path: string) => paths.filter((p) => p === path).length };
}

/** What a client's callbacks delivered, in order. */
export type Delivery =
  | { cb: 'onmyinfo'; profile: Profile }
  | { cb: 'onusers'; profiles: Profile[] }
  | { cb: 'onupdatemyinfo'; profile: Profile }
  | { cb: 'onupdateuser'; profile: Profile }
  | { cb: 'onresync' };

/**
 * A client whose callbacks record into `log`; `errors` collects what reached onerror.
 * Every client made here is closed by `closeAll()`.
 */
export function recordingClient(
  options: Omit<NamecardClientOptions, 'onmyinfo' | 'onusers' | 'onupdatemyinfo' | 'onupdateuser'>,
) {
  const log: Delivery[] = [];
  const errors: { error: unknown; source: string }[] = [];
  const client = createNamecardClient({
    onerror: (error, source) => errors.push({ error, source }),
    ...options,
    onmyinfo: (profile) => log.push({ cb: 'onmyinfo', profile }),
    onusers: (profiles) => log.push({ cb: 'onusers', profiles }),
    onupdatemyinfo: (profile) => log.push({ cb: 'onupdatemyinfo', profile }),
    onupdateuser: (profile) => log.push({ cb: 'onupdateuser', profile }),
    onresync: () => log.push({ cb: 'onresync' }),
  });
  opened.add(client);
  return {
    client,
    log,
    errors,
    updates: () => log.filter((d) => d.cb === 'onupdateuser' || d.cb === 'onupdatemyinfo'),
  };
}

const opened = new Set<NamecardClient>();
export async function closeAll(): Promise<void> {
  await Promise.all([...opened].map((c) => c.close()));
  opened.clear();
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A `fetch` whose live streams (`user.onChange`) can be cut as a dropped connection would be:
 * the body errors (`TypeError: terminated`) and the server sees the client go away. Records the
 * `Last-Event-ID` header each stream request carried (null when none).
 */
export function cuttableFetch() {
  const open = new Set<{
    controller: ReadableStreamDefaultController<Uint8Array>;
    reader: ReadableStreamDefaultReader<Uint8Array>;
  }>();
  const lastEventIds: (string | null)[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const response = await fetch(input, init);
    if (!url.includes('/trpc/user.onChange') || !response.body) return response;
    lastEventIds.push(new Headers(init?.headers).get('last-event-id'));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let entry:
      | { controller: ReadableStreamDefaultController<Uint8Array>; reader: typeof reader }
      | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        entry = { controller, reader };
        open.add(entry);
      },
      async pull(controller) {
        // After a cut the controller is errored already: what the reader still says is dropped.
        try {
          const { done, value } = await reader.read();
          if (done) {
            open.delete(entry!);
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          open.delete(entry!);
          try {
            controller.error(error);
          } catch {
            // already errored by cut()
          }
        }
      },
      cancel(reason) {
        open.delete(entry!);
        return reader.cancel(reason);
      },
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
  const cut = () => {
    for (const entry of open) {
      entry.controller.error(new TypeError('terminated'));
      void entry.reader.cancel().catch(() => undefined);
    }
    const count = open.size;
    open.clear();
    return count;
  };
  return { fetch: fetchFn, cut, lastEventIds };
}
