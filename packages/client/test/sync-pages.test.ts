/**
 * `user.sync` answers in pages of at most 500 friends: the client gathers every page before
 * `onusers`, both at start and after a resync, so an account with more friends than one page
 * still gets all of them, once, through NIM's callback.
 */
import { addFriend } from '@namecard/db';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  countingFetch,
  createAccounts,
  recordingClient,
  startTestServer,
  type TestServer,
} from './helpers';

const FRIENDS = 620;

let server: TestServer;
const names = Array.from({ length: FRIENDS }, (_, i) => `pf${String(i).padStart(4, '0')}`);

beforeAll(async () => {
  server = await startTestServer();
  await createAccounts(server, names);
  // Straight to the store: friend.add is rate-limited per account.
  for (const name of names) await addFriend(server.db, 'alice', name);
}, 120_000);
afterEach(closeAll);
afterAll(async () => {
  await server.close();
});

describe('sync pages', () => {
  it('onusers gets every friend of every page, once, after onmyinfo', async () => {
    const counted = countingFetch();
    const { client, log } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: counted.fetch,
      batch: false,
    });
    await client.ready;
    expect(log.map((d) => d.cb)).toEqual(['onmyinfo', 'onusers']);
    const second = log[1];
    const users = second?.cb === 'onusers' ? second.profiles : [];
    const accounts = users.map((p) => p.account);
    expect(new Set(accounts).size).toBe(accounts.length);
    expect(accounts.sort()).toEqual([...names, 'bob', 'carol'].sort());
    // More than one page was asked for.
    expect(counted.count('/trpc/user.sync')).toBeGreaterThanOrEqual(2);
    expect(client.cached('pf0619')?.nick).toBe('Nick pf0619');
  });
});
