/**
 * `npm start`: runs the built API server and the built web app together (after the npm script
 * built them), prints where to open the app once both answer, and stops both on Ctrl-C or
 * SIGTERM, or when either of them exits.
 *
 * Process handling is concurrently's (prefixed output, signals forwarded to each child's whole
 * process tree, the others killed when one exits): npm and turbo alone leave the servers running
 * when `npm start` itself gets SIGTERM.
 *
 * Settings: PORT (API, 4000), NAMECARD_WEB_PORT (web, 3000), and everything apps/server reads
 * (REDIS_URL, NAMECARD_ADMIN_SECRET, ...). NAMECARD_API_URL, for the web app, follows PORT;
 * NAMECARD_TRUST_PROXY defaults to `loopback`, the web app's server being on this machine.
 */
import concurrently from 'concurrently';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const apiPort = Number(process.env.PORT ?? 4000);
const webPort = Number(process.env.NAMECARD_WEB_PORT ?? 3000);
const apiUrl = process.env.NAMECARD_API_URL ?? `http://localhost:${apiPort}`;
const webUrl = `http://localhost:${webPort}`;
const nextBin = createRequire(`${root}apps/web/package.json`).resolve('next/dist/bin/next');

const { result } = concurrently(
  [
    {
      name: 'api',
      command: 'node dist/index.js',
      cwd: `${root}apps/server`,
      env: {
        PORT: String(apiPort),
        NAMECARD_WEB_ORIGIN: process.env.NAMECARD_WEB_ORIGIN ?? webUrl,
        // The web app's server forwards every browser request from this machine: per-visitor
        // limits key on the X-Forwarded-For it sets (README "Limits").
        NAMECARD_TRUST_PROXY: process.env.NAMECARD_TRUST_PROXY ?? 'loopback',
      },
    },
    {
      name: 'web',
      command: `node ${JSON.stringify(nextBin)} start --port ${webPort}`,
      cwd: `${root}apps/web`,
      env: { NAMECARD_API_URL: apiUrl, PORT: String(webPort) },
    },
  ],
  { prefix: 'name', killOthersOn: ['failure', 'success'], killSignal: 'SIGTERM' },
);

/** Resolves when `url` answers at all (any status), polling until `stop` is set. */
async function answers(url) {
  for (;;) {
    try {
      await (await fetch(url, { signal: AbortSignal.timeout(2000) })).body?.cancel();
      return true;
    } catch {
      if (stopped) return false;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

let stopped = false;
void Promise.all([answers(`${apiUrl}/healthz`), answers(webUrl)]).then(([api, web]) => {
  if (!api || !web) return;
  const mode = process.env.REDIS_URL ? 'Redis mode' : 'memory mode: demo accounts above';
  console.log(
    `\n  Namecard is running. Open ${webUrl}\n  (API ${apiUrl}, ${mode}; Ctrl-C stops both)\n`,
  );
});

result.then(
  () => {
    stopped = true;
  },
  (events) => {
    stopped = true;
    // A command that failed by itself (not one we killed) makes `npm start` fail too.
    const failed = events.filter((e) => !e.killed && e.exitCode !== 0);
    if (failed.length > 0) process.exitCode = 1;
  },
);
