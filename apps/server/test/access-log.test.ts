/**
 * The access log (src/access-log.ts): every write, every error and every slow request gets a
 * line; one in `sampleEvery` fast successful reads does, marked `sampled`; the `requests` summary
 * counts every request, logged or not.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { clientFor, expectTRPCError, startTestServer } from './helpers';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

it('logs writes, errors and a sample of fast reads, and counts them all', async () => {
  const { logger, lines } = capturingLogger();
  const server = await startTestServer({
    logger,
    settings: { accessLog: { sampleEvery: 3, slowMs: 60_000 } },
  });
  const alice = clientFor(server.url, { token: server.tokens.alice });
  try {
    for (let i = 0; i < 6; i++) await alice.user.getMyInfo.query();
    await alice.user.updateMyInfo.mutate({ sign: 'logged' });
    await expectTRPCError(
      clientFor(server.url, { token: 'wrong' }).user.getMyInfo.query(),
      'UNAUTHORIZED',
    );
    await expectTRPCError(alice.user.updateMyInfo.mutate({ nick: 'x'.repeat(65) }), 'BAD_REQUEST');
  } finally {
    await server.close();
  }
  const requests = lines.filter((l) => l.msg === 'request');
  const reads = requests.filter((l) => l.method === 'GET' && l.status === 200);
  expect(reads).toHaveLength(2);
  for (const read of reads)
    expect(read).toMatchObject({ path: '/trpc/user.getMyInfo', sampled: 3 });
  expect(requests.filter((l) => l.method === 'POST').map((l) => l.status)).toEqual([200, 400]);
  expect(requests.filter((l) => l.status === 401)).toHaveLength(1);
  for (const line of requests) expect(typeof line.ms).toBe('number');
  // The summary, logged when the server closes, counts everything, sampled out or not.
  const summary = lines.filter((l) => l.msg === 'requests');
  expect(summary).toHaveLength(1);
  expect(summary[0]).toMatchObject({
    requests: 9,
    unlogged: 4,
    status: { '2xx': 7, '4xx': 2, '1xx': 0, '3xx': 0, '5xx': 0 },
  });
});

it('sampleEvery 1 logs every request', async () => {
  const { logger, lines } = capturingLogger();
  const server = await startTestServer({ logger, settings: { accessLog: { sampleEvery: 1 } } });
  try {
    const alice = clientFor(server.url, { token: server.tokens.alice });
    for (let i = 0; i < 4; i++) await alice.user.getMyInfo.query();
    await fetch(`${server.url}/healthz`);
  } finally {
    await server.close();
  }
  const requests = lines.filter((l) => l.msg === 'request');
  expect(requests.map((l) => l.path)).toEqual([
    ...Array<string>(4).fill('/trpc/user.getMyInfo'),
    '/healthz',
  ]);
  for (const line of requests) expect(line).not.toHaveProperty('sampled');
});
