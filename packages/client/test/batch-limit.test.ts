/**
 * The server refuses batches of more than NAMECARD_MAX_BATCH calls (default LIMITS.batch, 50):
 * the client's batch link never sends more in one request, however many calls share a tick.
 */
import { LIMITS } from '@namecard/db/schema';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createNamecardTrpc } from '../src/trpc';
import { countingFetch, startTestServer, type TestServer } from './helpers';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

it(`${LIMITS.batch * 2 + 1} calls in one tick go out in batches the server accepts`, async () => {
  const counting = countingFetch();
  const trpc = createNamecardTrpc({
    url: server.url,
    token: server.tokens.alice,
    fetch: counting.fetch,
  });
  const n = LIMITS.batch * 2 + 1;
  const profiles = await Promise.all(
    Array.from({ length: n }, () => trpc.user.getUser.query({ account: 'bob' })),
  );
  expect(profiles.map((p) => p.account)).toEqual(Array.from({ length: n }, () => 'bob'));
  expect(counting.paths).toHaveLength(3);
});
