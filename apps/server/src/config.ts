/** The server's settings, from the environment. */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  NAMECARD_ADMIN_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Origins allowed to call the API from a browser, comma-separated. */
  NAMECARD_WEB_ORIGIN: z.string().default('http://localhost:3000'),
  /** Memory mode only: how many generated users to seed. */
  NAMECARD_SEED_USERS: z.coerce.number().int().min(0).max(100_000).default(2000),
  /** Events the change log keeps (default: 100000 in Redis mode, 5000 in memory mode). */
  NAMECARD_LOG_MAXLEN: z.coerce.number().int().min(10).optional(),
  /** Live subscriptions one account may hold at once, across every instance. */
  NAMECARD_SUBSCRIPTIONS_PER_ACCOUNT: z.coerce.number().int().min(1).max(10_000).default(20),
  NAMECARD_SECURE_COOKIES: z.enum(['0', '1']).default('0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface ServerConfig {
  port: number;
  host: string;
  redisUrl: string | undefined;
  adminSecret: string;
  /** True when the admin secret was made up at start (memory mode without one). */
  adminSecretGenerated: boolean;
  webOrigins: string[];
  seedUsers: number;
  logMaxLen: number | undefined;
  subscriptionsPerAccount: number;
  secureCookies: boolean;
  logLevel: string;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`bad environment: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  if (e.REDIS_URL && !e.NAMECARD_ADMIN_SECRET) {
    throw new ConfigError('Redis mode needs NAMECARD_ADMIN_SECRET (at least 16 characters)');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    adminSecret: e.NAMECARD_ADMIN_SECRET ?? randomBytes(18).toString('base64url'),
    adminSecretGenerated: !e.NAMECARD_ADMIN_SECRET,
    webOrigins: e.NAMECARD_WEB_ORIGIN.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    seedUsers: e.NAMECARD_SEED_USERS,
    logMaxLen: e.NAMECARD_LOG_MAXLEN,
    subscriptionsPerAccount: e.NAMECARD_SUBSCRIPTIONS_PER_ACCOUNT,
    secureCookies: e.NAMECARD_SECURE_COOKIES === '1',
    logLevel: e.LOG_LEVEL,
  };
}
