/**
 * profile-watcher: a small Node service built on @namecard/client.
 *
 * Signs in with NAMECARD_TOKEN, prints the login-time sync (onmyinfo, onusers) and every live
 * change (onupdatemyinfo, onupdateuser), updates its own sign once, shows refreshIfStale, and
 * runs until SIGINT/SIGTERM, when it closes the client and lets the process end by itself.
 *
 *   NAMECARD_URL          the server (default http://localhost:4000)
 *   NAMECARD_TOKEN        an account's token (required; the server prints demo tokens at start)
 *   NAMECARD_WATCH        extra accounts to watch besides the friends, comma-separated (optional)
 *   NAMECARD_CURSOR_FILE  where to keep the cursor between runs, to resume without loss (optional)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createNamecardClient, type Profile } from '@namecard/client';

const url = process.env.NAMECARD_URL ?? 'http://localhost:4000';
const token = process.env.NAMECARD_TOKEN;
const watch = (process.env.NAMECARD_WATCH ?? '')
  .split(',')
  .map((a) => a.trim())
  .filter(Boolean);
const cursorFile = process.env.NAMECARD_CURSOR_FILE;

if (!token) {
  console.error(
    'profile-watcher: set NAMECARD_TOKEN to an account token (the server prints demo tokens when it starts)',
  );
  process.exit(1);
}

const log = (what: string, ...rest: unknown[]) =>
  console.log(new Date().toISOString().slice(11, 23), what, ...rest);
const show = (p: Profile) => `${p.account} "${p.nick}" sign="${p.sign}" updateTime=${p.updateTime}`;

function readCursor(): string | null {
  if (!cursorFile) return null;
  try {
    return readFileSync(cursorFile, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

// Count requests through the client's `fetch` option, to show when refreshIfStale really asks the server.
let requests = 0;
const friends: Profile[] = [];
const cursor = readCursor();

const client = createNamecardClient({
  url,
  token,
  watch,
  cursor,
  fetch: (input, init) => {
    requests++;
    return fetch(input, init);
  },
  onmyinfo: (me) => log('onmyinfo      ', show(me)),
  onusers: (users) => {
    friends.splice(0, friends.length, ...users);
    log(
      'onusers       ',
      `${users.length} profile(s)${cursor ? ' changed since the saved cursor' : ''}`,
    );
    for (const u of users) log('              ', show(u));
  },
  onupdatemyinfo: (me) => log('onupdatemyinfo', show(me)),
  onupdateuser: (user) => log('onupdateuser  ', show(user)),
  onresync: () => log('onresync       the server could not replay what was missed; refetching'),
  onstatus: (status) => {
    log('status        ', status);
    // The server refused us for good (e.g. the token no longer exists): nothing is left open, so the process ends.
    if (status === 'failed') process.exitCode = 1;
  },
  onerror: (error, source) =>
    log(`error (${source})`, error instanceof Error ? error.message : error),
});

let stopping = false;
async function stop(signal: string) {
  if (stopping) {
    log('second signal: exiting now');
    process.exit(130);
  }
  stopping = true;
  log(`${signal}: closing`);
  await client.close();
  if (cursorFile && client.cursor) {
    writeFileSync(cursorFile, `${client.cursor}\n`);
    log(`cursor ${client.cursor} saved to ${cursorFile}`);
  }
  // Nothing is left open: the process ends by itself.
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

try {
  await client.ready;
} catch (error) {
  log('could not start:', error instanceof Error ? error.message : error);
  await client.close();
  process.exitCode = 1;
}

if (client.status === 'live') {
  log(
    'live           watching my profile, my friends' +
      (watch.length ? ` and ${watch.join(', ')}` : ''),
  );

  const me = await client.updateMyInfo({
    sign: `profile-watcher online since ${new Date().toISOString()}`,
  });
  log('updateMyInfo  ', show(me));

  // NIM refreshes a message sender's profile when the message carries a newer updateTime.
  const friend = friends[0] ?? (await client.getMyInfo());
  let before = requests;
  const same = await client.refreshIfStale(friend.account, friend.updateTime);
  log(
    'refreshIfStale',
    `${friend.account} at its known updateTime -> ${requests - before} request(s):`,
    show(same),
  );
  before = requests;
  const newer = await client.refreshIfStale(friend.account, friend.updateTime + 1);
  log(
    'refreshIfStale',
    `${friend.account} with a newer updateTime -> ${requests - before} request(s):`,
    show(newer),
  );

  log(
    'running        change a profile (e.g. with curl or another client) to see it here; Ctrl-C to stop',
  );
}
