/**
 * Failing fast: while Redis does not answer (stopped with SIGSTOP, so the connection stays open
 * and silent; or gone), requests fail with 503 SERVICE_UNAVAILABLE and a plain message instead of
 * hanging, and succeed again by themselves once Redis answers. Uses a redis-server of the test's
 * own (spare port): skipped loudly without redis-server, failing under CI=true.
 */
import { createAccount } from '@namecard/db';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  redisServerAvailable,
  startOwnedRedis,
  startOwnedRedisOn,
  type OwnedRedis,
} from '@namecard/db/testing';
import { describeRealRedis, startTestServer, type TestServer } from './helpers';

/** Polls until `ok()` holds, for at most `timeoutMs`. */
async function eventually(ok: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const binary = redisServerAvailable();
const ownRedis = {
  url: 'a redis-server of its own',
  reachable: binary.available,
  reason: binary.detail,
};

interface Answer {
  status: number;
  code: string;
  message: string;
}

async function call(server: TestServer, path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${server.url}/trpc/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${server.tokens.alice}`, 'content-type': 'application/json' },
  });
  const body = (await res.json()) as { error?: { message: string; data: { code: string } } };
  return {
    status: res.status,
    code: body.error?.data.code ?? 'OK',
    message: body.error?.message ?? '',
  };
}

const read = (server: TestServer) => call(server, 'user.getMyInfo');
const write = (server: TestServer) =>
  call(server, 'user.updateMyInfo', { method: 'POST', body: JSON.stringify({ sign: 'during' }) });

function expectUnavailable(answer: Answer) {
  expect(answer.status).toBe(503);
  expect(answer.code).toBe('SERVICE_UNAVAILABLE');
  expect(answer.message).toBe('the data store is not answering; try again shortly');
}

describeRealRedis('Redis not answering', ownRedis, () => {
  let redis: OwnedRedis;
  let server: TestServer;
  /** The server's log lines (JSON), warnings and up. */
  const logLines: { msg: string; failures?: number; err?: { message?: string } }[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => logLines.push(JSON.parse(line) as (typeof logLines)[number]) },
  );

  beforeAll(async () => {
    redis = await startOwnedRedis();
    server = await startTestServer({
      redisUrl: `${redis.baseUrl}/1`,
      settings: { redisTimeoutMs: 500 },
      logger,
    });
  });
  afterAll(async () => {
    if (redis) process.kill(redis.pid, 'SIGCONT');
    await server?.close();
    await redis?.stop();
  });

  it('a silent Redis (SIGSTOP) answers 503 with a plain message; requests recover after SIGCONT', async () => {
    expect((await read(server)).code).toBe('OK');
    process.kill(redis.pid, 'SIGSTOP');
    try {
      expectUnavailable(await read(server));
      expectUnavailable(await write(server));
      expect((await fetch(`${server.url}/healthz`)).status).toBe(503);
      // The operator sees why, once per burst: the client's plain message, the log's cause.
      const warnings = logLines.filter((l) => l.msg === 'requests failed: Redis is not answering');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.err?.message).toBe('Command timed out');
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await eventually(async () => (await read(server)).code === 'OK', 10_000, 'reads to work again');
    expect((await write(server)).code).toBe('OK');
  });

  it('a Redis that is gone answers 503; requests recover once it is back', async () => {
    await redis.stop();
    expectUnavailable(await read(server));
    expectUnavailable(await write(server));
    // That redis-server kept nothing: alice is made again with the token the test uses.
    redis = await startOwnedRedisOn(redis.port);
    await eventually(
      () =>
        createAccount(server.db, { account: 'alice', token: server.tokens.alice }).then(
          () => true,
          () => false,
        ),
      10_000,
      'the server to reconnect and write',
    );
    await eventually(async () => (await read(server)).code === 'OK', 10_000, 'reads to work again');
    expect((await write(server)).code).toBe('OK');
  });
});
