/**
 * Nothing is lost and nothing arrives twice: resuming from a saved cursor, a resync when the log
 * no longer reaches back, a dropped connection, and a server restart while writes go on.
 */
import { compareCursors, createDb, closeDb, updateProfile } from '@namecard/db';
import { afterEach, describe, expect, test } from 'vitest';
import { createNamecardTrpc, type Profile } from '../src';
import {
  adminClient,
  closeAll,
  createAccounts,
  cuttableFetch,
  recordingClient,
  sleep,
  startTestServer,
  waitFor,
  type Delivery,
  type TestServer,
} from './helpers';

const servers: TestServer[] = [];
async function newServer(options: Parameters<typeof startTestServer>[0] = {}) {
  const server = await startTestServer(options);
  servers.push(server);
  return server;
}
afterEach(async () => {
  await closeAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const signsOf = (log: readonly Delivery[], account: string) =>
  log.flatMap((d) =>
    d.cb === 'onupdateuser' && d.profile.account === account ? [d.profile.sign] : [],
  );
const accountsOf = (profiles: readonly Profile[]) => profiles.map((p) => p.account).sort();

describe('resuming from a saved cursor', () => {
  test('changes made while no client ran arrive once: friends through onusers, watched accounts through onupdateuser', async () => {
    const server = await newServer();
    await createAccounts(server, ['dave']);
    const first = recordingClient({ url: server.url, token: server.tokens.alice, watch: ['dave'] });
    await first.client.ready;
    const saved = first.client.cursor;
    await first.client.close();

    const bob = createNamecardTrpc({ url: server.url, token: server.tokens.bob });
    await bob.user.updateMyInfo.mutate({ sign: 'bob 1' });
    const bob2 = await bob.user.updateMyInfo.mutate({ sign: 'bob 2' });
    const admin = adminClient(server);
    await admin.admin.updateUser.mutate({ account: 'dave', patch: { sign: 'dave 1' } });
    await admin.admin.updateUser.mutate({ account: 'dave', patch: { sign: 'dave 2' } });

    const second = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      watch: ['dave'],
      cursor: saved,
    });
    expect(second.client.cursor).toBe(saved);
    await second.client.ready;
    const [myinfo, users, ...rest] = second.log;
    expect(myinfo).toMatchObject({ cb: 'onmyinfo', profile: { account: 'alice' } });
    // Incremental: only bob changed among the friends, with his latest profile.
    expect(users).toEqual({ cb: 'onusers', profiles: [bob2] });
    // bob's intermediate change is not replayed (the sync already gave his newer profile); dave's are.
    expect(rest.map((d) => (d.cb === 'onupdateuser' ? d.profile.sign : d.cb))).toEqual([
      'dave 1',
      'dave 2',
    ]);
    expect(compareCursors(second.client.cursor!, saved!)).toBe(1);
  });

  test('a cursor the log no longer reaches: onresync, then everything again through onmyinfo and onusers', async () => {
    const server = await newServer({ logMaxLen: 5 });
    await createAccounts(server, ['dave']);
    const first = recordingClient({ url: server.url, token: server.tokens.alice, watch: ['dave'] });
    await first.client.ready;
    const saved = first.client.cursor;
    await first.client.close();

    const bob = createNamecardTrpc({ url: server.url, token: server.tokens.bob });
    for (let i = 1; i <= 8; i++) await bob.user.updateMyInfo.mutate({ sign: `bob ${i}` });
    await adminClient(server).admin.updateUser.mutate({
      account: 'dave',
      patch: { sign: 'dave meanwhile' },
    });

    const second = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      watch: ['dave'],
      cursor: saved,
    });
    await second.client.ready;
    expect(second.log.map((d) => d.cb)).toEqual([
      'onmyinfo',
      'onusers',
      'onresync',
      'onmyinfo',
      'onusers',
      'onupdateuser',
    ]);
    const full = second.log[4];
    expect(full?.cb === 'onusers' && accountsOf(full.profiles)).toEqual(['bob', 'carol']);
    expect(signsOf(second.log, 'dave')).toEqual(['dave meanwhile']);
    expect(second.client.status).toBe('live');

    // Live from here, as usual.
    await bob.user.updateMyInfo.mutate({ sign: 'bob live' });
    await waitFor(() => signsOf(second.log, 'bob').length === 1, 5000, 'the live change');
    expect(signsOf(second.log, 'bob')).toEqual(['bob live']);
  });
});

describe('automatic resume', () => {
  test('a dropped connection: the stream comes back from the last event id; every change once, in order', async () => {
    const server = await newServer();
    const cuttable = cuttableFetch();
    const statuses: string[] = [];
    const alice = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: cuttable.fetch,
      onstatus: (s) => statuses.push(s),
    });
    await alice.client.ready;
    const bob = createNamecardTrpc({ url: server.url, token: server.tokens.bob });
    await bob.user.updateMyInfo.mutate({ sign: 'before' });
    await waitFor(() => signsOf(alice.log, 'bob').length === 1, 5000, 'the first change');
    const idBeforeCut = alice.client.cursor;

    expect(cuttable.cut()).toBe(1);
    for (let i = 1; i <= 5; i++) await bob.user.updateMyInfo.mutate({ sign: `while cut ${i}` });
    await waitFor(
      () => signsOf(alice.log, 'bob').length >= 6,
      15_000,
      'the changes made while cut',
    );
    await bob.user.updateMyInfo.mutate({ sign: 'after' });
    await waitFor(() => signsOf(alice.log, 'bob').length >= 7, 5000, 'the change after');
    await sleep(100);

    expect(signsOf(alice.log, 'bob')).toEqual([
      'before',
      ...[1, 2, 3, 4, 5].map((i) => `while cut ${i}`),
      'after',
    ]);
    // The first stream started from the sync's cursor (in the input); the second resent the last id.
    expect(cuttable.lastEventIds).toEqual([null, idBeforeCut]);
    expect(statuses).toEqual(['live', 'reconnecting', 'live']);
    expect(alice.errors.map((e) => e.source)).toContain('live');
  });

  test('a server restart on the same port while writes go on: every change once, in order', async () => {
    const first = await startTestServer();
    const { port } = first;
    let current = first;
    const alice = recordingClient({
      url: first.url,
      token: first.tokens.alice,
      retryDelay: () => 100,
    });
    try {
      await alice.client.ready;

      // Writes go straight to the data set, so they go on while no server runs.
      const writer = createDb({ memoryName: first.memoryName });
      const total = 40;
      let written = 0;
      const writes = (async () => {
        for (let i = 1; i <= total; i++) {
          await updateProfile(writer, 'bob', { sign: `change ${i}` });
          written = i;
          await sleep(40);
        }
      })();
      let deliveredAtStop = 0;
      let writtenWhileDown = 0;
      const restart = (async () => {
        await waitFor(
          () => signsOf(alice.log, 'bob').length >= 5,
          10_000,
          'the first live changes',
        );
        await first.close();
        deliveredAtStop = signsOf(alice.log, 'bob').length;
        const writtenAtStop = written;
        // The client hears of the closed stream a moment later, not within close().
        await waitFor(() => alice.client.status === 'reconnecting', 5_000, 'status reconnecting');
        await sleep(300);
        writtenWhileDown = written - writtenAtStop;
        current = await startTestServer({ after: first, port });
      })();
      await Promise.all([writes, restart]);
      // The restart really fell in the middle: changes were made while no server ran.
      expect(deliveredAtStop).toBeLessThan(total);
      expect(writtenWhileDown).toBeGreaterThan(0);
      await closeDb(writer);

      await waitFor(() => signsOf(alice.log, 'bob').length >= total, 15_000, 'every change');
      await sleep(200);
      expect(signsOf(alice.log, 'bob')).toEqual(
        Array.from({ length: total }, (_, i) => `change ${i + 1}`),
      );
      expect(alice.client.status).toBe('live');
      const me = await alice.client.getUser('bob');
      expect(me.sign).toBe(`change ${total}`);
    } finally {
      await alice.client.close();
      await current.close();
    }
  });
});

test('a subscription the server refuses for good (invalid watch list): ready rejects, status failed, no retries', async () => {
  const server = await newServer();
  const { client, errors } = recordingClient({
    url: server.url,
    token: server.tokens.alice,
    watch: ['not valid!'],
  });
  await expect(client.ready).rejects.toThrow(/account/);
  expect(client.status).toBe('failed');
  await sleep(300);
  expect(errors.map((e) => e.source)).toEqual(['live']);
});
