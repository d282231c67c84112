/**
 * The Namecard API server: `npm run start -w @namecard/server` (after a build) or `npm run dev`.
 * Settings come from the environment; see config.ts and README.md.
 */
import { loadConfig, ConfigError } from './config';
import { LayoutError } from '@namecard/db';
import { startServer } from './app';
import { createLogger } from './logger';

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`namecard-server: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const mode = config.redisClusterNodes.length
    ? 'redis cluster'
    : config.redisUrl
      ? 'redis'
      : 'memory';
  let running;
  try {
    running = await startServer({
      port: config.port,
      host: config.host,
      redisUrl: config.redisUrl,
      redisClusterNodes: config.redisClusterNodes,
      adminSecret: config.adminSecret,
      webOrigins: config.webOrigins,
      seedUsers: config.seedUsers,
      logMaxLen: config.logMaxLen,
      subscriptionsPerAccount: config.subscriptionsPerAccount,
      secureCookies: config.secureCookies,
      maxBodyBytes: config.maxBodyBytes,
      maxBatch: config.maxBatch,
      requestTimeoutMs: config.requestTimeoutMs,
      redisTimeoutMs: config.redisTimeoutMs,
      trustProxy: config.trustProxy,
      rateRules: config.rateRules,
      accessLog: config.accessLog,
      logger,
    });
  } catch (error) {
    if (error instanceof LayoutError) {
      console.error(`namecard-server: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  logger.info({ port: running.port, mode, webOrigins: config.webOrigins }, 'listening');

  const lines = [
    '',
    `Namecard API on http://localhost:${running.port}/trpc  (health: /healthz, mode: ${mode})`,
  ];
  if (config.adminSecretGenerated) {
    lines.push(
      `Admin secret (X-Namecard-Admin header), made up for this run: ${config.adminSecret}`,
    );
  }
  if (running.seed) {
    lines.push(
      `Seeding ${running.seed.users} generated users in the background; demo accounts ready now:`,
    );
    for (const d of running.seed.demo)
      lines.push(`  ${d.account.padEnd(8)} token ${d.token}   (${d.nick})`);
    const first = running.seed.demo[0];
    if (first) {
      lines.push(
        `Try: curl -H 'Authorization: Bearer ${first.token}' http://localhost:${running.port}/trpc/user.getMyInfo`,
      );
    }
  }
  console.log(lines.join('\n') + '\n');

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    running
      .close()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

void main();
