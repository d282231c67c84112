/**
 * Request limits over real HTTP: calls per batch, body size, bounded error answers, odd patch
 * keys, URL size, internal error text. Each limit answers a clear tRPC error and leaves the
 * server answering the next request.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { keys, lastEventId, type Redis as _Redis } from '@namecard/db';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  adminClient,
  demoClient,
  describeRealRedis,
  expectTRPCError,
  realRedisUrl,
  startTestServer,
  useTestServer,
} from './helpers';

const MAX_BATCH = 5;
const MAX_BODY = 64 * 1024;
const S = useTestServer({ settings: { maxBatch: MAX_BATCH, maxBodyBytes: MAX_BODY } });
const redis = await realRedisUrl();

const bearer = (server = S.current) => ({ authorization: `Bearer ${server.tokens.alice}` });

/** A raw HTTP request (Node's http, so no client-side limits get in the way). */
function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string[] },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    const { body } = options;
    if (Array.isArray(body)) {
      // Chunked: no Content-Length, so the server only learns the size while reading.
      const write = (i: number) => {
        if (i >= body.length) return req.end();
        if (req.destroyed) return;
        req.write(body[i], () => write(i + 1));
      };
      req.on('error', () => undefined);
      write(0);
    } else req.end(body);
  });
}

async function healthy(url: string) {
  const res = await fetch(`${url}/healthz`);
  expect(res.status).toBe(200);
}

describe('calls per batch', () => {
  it(`a batch of ${MAX_BATCH} calls is answered; ${MAX_BATCH + 1} is BAD_REQUEST`, async () => {
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => 'user.getMyInfo').join(',');
      return fetch(`${S.current.url}/trpc/${paths}?batch=1&input={}`, { headers: bearer() });
    };
    const ok = await batch(MAX_BATCH);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as unknown[]).length).toBe(MAX_BATCH);

    const tooMany = await batch(MAX_BATCH + 1);
    expect(tooMany.status).toBe(400);
    const body = (await tooMany.json()) as { error: { data: { code: string } } }[];
    expect(JSON.stringify(body)).toContain('BAD_REQUEST');
    expect(JSON.stringify(body)).toMatch(/too many calls in one batch/);
  });

  it('600 calls in one GET are refused without running any', async () => {
    const paths = Array.from({ length: 600 }, () => 'user.sync').join(',');
    const res = await fetch(`${S.current.url}/trpc/${paths}?batch=1&input={}`, {
      headers: bearer(),
    });
    expect(res.status).toBe(400);
    expect((await res.text()).length).toBeLessThan(2000);
  });
});

describe('request body size', () => {
  const patchBody = (bytes: number) =>
    Buffer.from(JSON.stringify({ sign: 'x', custom: 'y'.repeat(bytes) }));

  it('a body declared larger than the limit is 413 PAYLOAD_TOO_LARGE, not read, nothing changes', async () => {
    const before = await lastEventId(S.current.db);
    const res = await rawRequest(`${S.current.url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: patchBody(MAX_BODY + 1),
    });
    expect(res.status).toBe(413);
    const error = (JSON.parse(res.body) as { error: { message: string; data: { code: string } } })
      .error;
    expect(error.data.code).toBe('PAYLOAD_TOO_LARGE');
    expect(error.message).toContain(String(MAX_BODY));
    expect(await lastEventId(S.current.db)).toBe(before);
    await healthy(S.current.url);
  });

  it('a chunked body past the limit is 413 once the limit is read', async () => {
    const before = await lastEventId(S.current.db);
    const chunk = 'a'.repeat(16 * 1024);
    const chunks = ['{"custom":"', ...Array.from({ length: 64 }, () => chunk), '"}'];
    const res = await rawRequest(`${S.current.url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: chunks,
    });
    expect(res.status).toBe(413);
    expect(res.body).toContain('PAYLOAD_TOO_LARGE');
    expect(res.body).not.toContain('stack');
    expect(await lastEventId(S.current.db)).toBe(before);
    await healthy(S.current.url);
  });

  it('a client still sending megabytes past the limit reads the 413 (the rest is discarded, not kept)', async () => {
    const chunk = 'a'.repeat(1024 * 1024);
    const res = await rawRequest(`${S.current.url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: ['{"custom":"', ...Array.from({ length: 100 }, () => chunk), '"}'],
    });
    expect(res.status).toBe(413);
    await healthy(S.current.url);
  });

  it('a body under the limit is read as usual', async () => {
    const alice = demoClient(S.current, 'alice');
    expect((await alice.user.updateMyInfo.mutate({ sign: 'under the limit' })).sign).toBe(
      'under the limit',
    );
  });
});

describe('error answers stay small', () => {
  it('a patch of 5,000 unknown keys answers a short error naming the first few and a count', async () => {
    const patch: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) patch[`k${i}`] = 'x';
    const res = await fetch(`${S.current.url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text.length).toBeLessThan(4000);
    const error = (
      JSON.parse(text) as {
        error: { message: string; data: { fieldErrors: Record<string, string[]> } };
      }
    ).error;
    expect(error.message).toContain('k0: unknown field');
    expect(error.message).toContain('and 4990 more');
    expect(Object.keys(error.data.fieldErrors)).toHaveLength(10);
  });

  it('an array of 1,000 bad accounts answers a short error', async () => {
    const accounts = Array.from({ length: 1000 }, () => '!');
    const input = encodeURIComponent(JSON.stringify({ accounts }));
    const res = await fetch(`${S.current.url}/trpc/user.getUsers?input=${input}`, {
      headers: bearer(),
    });
    expect(res.status).toBe(400);
    expect((await res.text()).length).toBeLessThan(4000);
  });
});

describe('patch keys that are names of Object.prototype', () => {
  for (const key of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
    it(`${key} is BAD_REQUEST naming it, and nothing changes`, async () => {
      const before = await lastEventId(S.current.db);
      const res = await fetch(`${S.current.url}/trpc/user.updateMyInfo`, {
        method: 'POST',
        headers: { ...bearer(), 'content-type': 'application/json' },
        body: `{"${key}":"x","nick":"n"}`,
      });
      const body = (await res.json()) as {
        error: { message: string; data: { code: string; fieldErrors: Record<string, unknown> } };
      };
      expect(res.status).toBe(400);
      expect(body.error.data.code).toBe('BAD_REQUEST');
      expect(body.error.message).toContain(`${key}: unknown field`);
      expect(Object.keys(body.error.data.fieldErrors)).toEqual([key]);
      expect(await lastEventId(S.current.db)).toBe(before);
    });
  }
});

describe('URL and header size', () => {
  it('a 20 KB URL is answered 431 and the server goes on answering', async () => {
    const input = encodeURIComponent(JSON.stringify({ accounts: ['a'.repeat(20_000)] }));
    const res = await rawRequest(`${S.current.url}/trpc/user.getUsers?input=${input}`, {
      headers: bearer(),
    });
    expect(res.status).toBe(431);
    await healthy(S.current.url);
  });

  it('a 20 KB header is answered 431', async () => {
    const res = await rawRequest(`${S.current.url}/trpc/user.getMyInfo`, {
      headers: { ...bearer(), 'x-padding': 'p'.repeat(20_000) },
    });
    expect(res.status).toBe(431);
    await healthy(S.current.url);
  });
});

describeRealRedis('internal errors', redis, (url) => {
  const R = useTestServer({ redisUrl: url });

  it('reach the client as a generic message, never the internal text', async () => {
    // A key of the wrong type makes Redis refuse the command (WRONGTYPE): a server-side bug as
    // far as the client is concerned.
    const raw: _Redis = new Redis(url);
    try {
      await raw.set(keys.friends('alice'), 'not a set');
    } finally {
      raw.disconnect();
    }
    const error = await expectTRPCError(
      demoClient(R.current, 'alice').friend.list.query(),
      'INTERNAL_SERVER_ERROR',
    );
    expect(error.message).not.toMatch(/WRONGTYPE|redis|Operation/i);
    expect(error.message).toContain('internal server error');
    await expect(
      adminClient(R.current).admin.getUsers.query({ accounts: ['bob'] }),
    ).resolves.toHaveLength(1);
  });
});

describe('input hygiene over HTTP', () => {
  it('an avatar is stored trimmed and canonical; a quote-carrying one is refused and changes nothing', async () => {
    const alice = demoClient(S.current, 'alice');
    const saved = await alice.user.updateMyInfo.mutate({
      avatar: '  https://IMG.example.com/a.png ',
    });
    expect(saved.avatar).toBe('https://img.example.com/a.png');
    expect((await alice.user.getMyInfo.query()).avatar).toBe('https://img.example.com/a.png');
    const before = await lastEventId(S.current.db);
    await expectTRPCError(
      alice.user.updateMyInfo.mutate({ avatar: 'http://a.example/" onerror="alert(1)' }),
      'BAD_REQUEST',
      ['avatar'],
    );
    await expectTRPCError(alice.user.updateMyInfo.mutate({ nick: 'bob\u200b' }), 'BAD_REQUEST', [
      'nick',
    ]);
    expect(await lastEventId(S.current.db)).toBe(before);
    expect((await alice.user.updateMyInfo.mutate({ sign: 'one\r\ntwo' })).sign).toBe('one\r\ntwo');
  });
});

describe('a client that sends its request slowly', () => {
  it('is answered 408 and cut off after the request timeout; others are served meanwhile', async () => {
    const server = await startTestServer({ settings: { requestTimeoutMs: 500 } });
    try {
      const { port } = new URL(server.url);
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      // Headers complete, then one byte of a 100-byte body, then nothing.
      socket.write(
        'POST /trpc/user.updateMyInfo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `Authorization: Bearer ${server.tokens.alice}\r\nContent-Length: 100\r\n\r\n{`,
      );
      await healthy(server.url);
      await closed;
      expect(received).toMatch(/^HTTP\/1\.1 408/);

      // Headers that never end (slowloris) are cut off the same way.
      const slow = connect(Number(port), '127.0.0.1');
      let answer = '';
      slow.setEncoding('utf8');
      slow.on('data', (chunk: string) => (answer += chunk));
      slow.on('error', () => undefined);
      const slowClosed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
      slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      await slowClosed;
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await server.close();
    }
  });
});

describe('bodies that are not JSON', () => {
  it('a multipart, form or binary POST is 415 naming JSON, and changes nothing', async () => {
    const before = await lastEventId(S.current.db);
    for (const [type, body] of [
      [
        'multipart/form-data; boundary=b',
        '--b\r\nContent-Disposition: form-data; name="nick"\r\n\r\nx\r\n--b--\r\n',
      ],
      ['application/octet-stream', '{"nick":"x"}'],
      ['application/x-www-form-urlencoded', 'nick=x'],
      ['text/plain', '{"nick":"x"}'],
    ]) {
      const res = await fetch(`${S.current.url}/trpc/user.updateMyInfo`, {
        method: 'POST',
        headers: { ...bearer(), 'content-type': type! },
        body,
      });
      expect(res.status, type).toBe(415);
      const error = ((await res.json()) as { error: { message: string; data: { code: string } } })
        .error;
      expect(error.data.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(error.message).toContain('application/json');
    }
    expect(await lastEventId(S.current.db)).toBe(before);
  });
});
