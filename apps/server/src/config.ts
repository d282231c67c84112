/** The server's settings, from the environment. */
import { randomBytes } from 'node:crypto';
import {
  LIMITS,
  parseClusterNodes,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_RATE_RULES,
  parseRateRule,
  type RateRules,
} from '@namecard/db';
import { z } from 'zod';
import { DEFAULT_LOG_SAMPLE, DEFAULT_LOG_SLOW_MS } from './access-log';
import { compileTrustProxy } from './client-ip';

/** Request limits of the HTTP layer (see README, "Limits"). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_BATCH: number = LIMITS.batch;

const rateRule = (fallback: { points: number; seconds: number }) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text === '') return fallback;
      const rule = parseRateRule(text);
      if (!rule) {
        ctx.addIssue({ code: 'custom', message: 'must be <points>/<seconds>, e.g. 10/60' });
        return z.NEVER;
      }
      return rule;
    });

/** An origin as browsers send it: scheme, host and port, nothing else. */
const isOrigin = (s: string) => URL.canParse(s) && new URL(s).origin === s;

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  /** Redis Cluster: seed nodes, `host:port,host:port` (any of the cluster's). */
  REDIS_CLUSTER_NODES: z.string().optional(),
  NAMECARD_ADMIN_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Origins allowed to call the API from a browser, comma-separated. */
  NAMECARD_WEB_ORIGIN: z.string().default('http://localhost:3000'),
  /** Memory mode only: how many generated users to seed. */
  NAMECARD_SEED_USERS: z.coerce.number().int().min(0).max(100_000).default(2000),
  /** Events the change log keeps (default: 100000 in Redis mode, 5000 in memory mode). */
  NAMECARD_LOG_MAXLEN: z.coerce.number().int().min(10).optional(),
  /** Live subscriptions one account may hold at once, across every instance. */
  NAMECARD_SUBSCRIPTIONS_PER_ACCOUNT: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Default: `1` (Secure) in Redis mode, `0` in memory mode; `0` for local plain-http use. */
  NAMECARD_SECURE_COOKIES: z.enum(['0', '1']).optional(),
  NAMECARD_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(DEFAULT_MAX_BODY_BYTES),
  NAMECARD_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  NAMECARD_MAX_BATCH: z.coerce.number().int().min(1).max(1000).default(DEFAULT_MAX_BATCH),
  NAMECARD_REDIS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(50)
    .max(60_000)
    .default(DEFAULT_COMMAND_TIMEOUT_MS),
  /** Proxies whose X-Forwarded-For is believed: addresses, CIDR ranges, `loopback`... */
  NAMECARD_TRUST_PROXY: z.string().default(''),
  NAMECARD_RATE_SIGNIN: rateRule(DEFAULT_RATE_RULES.signIn),
  NAMECARD_RATE_AUTH_FAILURES: rateRule(DEFAULT_RATE_RULES.authFailures),
  NAMECARD_RATE_FRIEND_ADD: rateRule(DEFAULT_RATE_RULES.friendAdd),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log one in this many fast, successful reads (1: every request); see access-log.ts. */
  NAMECARD_LOG_SAMPLE: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_LOG_SAMPLE),
  /** A request slower than this (ms) is always logged. */
  NAMECARD_LOG_SLOW_MS: z.coerce.number().int().min(0).default(DEFAULT_LOG_SLOW_MS),
});

export interface ServerConfig {
  port: number;
  host: string;
  redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES, parsed (empty: not a cluster). */
  redisClusterNodes: string[];
  adminSecret: string;
  /** True when the admin secret was made up at start (memory mode without one). */
  adminSecretGenerated: boolean;
  webOrigins: string[];
  seedUsers: number;
  logMaxLen: number | undefined;
  subscriptionsPerAccount: number;
  secureCookies: boolean;
  maxBodyBytes: number;
  maxBatch: number;
  requestTimeoutMs: number;
  redisTimeoutMs: number;
  trustProxy: string[];
  rateRules: RateRules;
  logLevel: string;
  accessLog: { sampleEvery: number; slowMs: number };
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`bad environment: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  let redisClusterNodes: string[];
  try {
    redisClusterNodes = parseClusterNodes(e.REDIS_CLUSTER_NODES);
  } catch (error) {
    throw new ConfigError(`REDIS_CLUSTER_NODES: ${(error as Error).message}`);
  }
  if ((e.REDIS_URL || redisClusterNodes.length > 0) && !e.NAMECARD_ADMIN_SECRET) {
    throw new ConfigError('Redis mode needs NAMECARD_ADMIN_SECRET (at least 16 characters)');
  }
  const webOrigins = e.NAMECARD_WEB_ORIGIN.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of webOrigins) {
    if (origin === '*') {
      // Credentialed CORS for any site would let every page act as the signed-in user.
      throw new ConfigError(
        "NAMECARD_WEB_ORIGIN: '*' is not allowed (the API answers browsers with credentials); list the web app's origins",
      );
    }
    if (!isOrigin(origin)) {
      throw new ConfigError(
        `NAMECARD_WEB_ORIGIN: ${origin} is not an origin like https://app.example.com`,
      );
    }
  }
  const trustProxy = e.NAMECARD_TRUST_PROXY.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  try {
    compileTrustProxy(trustProxy);
  } catch (error) {
    throw new ConfigError(`NAMECARD_TRUST_PROXY: ${(error as Error).message}`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisClusterNodes,
    adminSecret: e.NAMECARD_ADMIN_SECRET ?? randomBytes(18).toString('base64url'),
    adminSecretGenerated: !e.NAMECARD_ADMIN_SECRET,
    webOrigins,
    seedUsers: e.NAMECARD_SEED_USERS,
    logMaxLen: e.NAMECARD_LOG_MAXLEN,
    subscriptionsPerAccount: e.NAMECARD_SUBSCRIPTIONS_PER_ACCOUNT,
    secureCookies:
      (e.NAMECARD_SECURE_COOKIES ?? (e.REDIS_URL || redisClusterNodes.length ? '1' : '0')) === '1',
    maxBodyBytes: e.NAMECARD_MAX_BODY_BYTES,
    maxBatch: e.NAMECARD_MAX_BATCH,
    requestTimeoutMs: e.NAMECARD_REQUEST_TIMEOUT_MS,
    redisTimeoutMs: e.NAMECARD_REDIS_TIMEOUT_MS,
    trustProxy,
    rateRules: {
      signIn: e.NAMECARD_RATE_SIGNIN,
      authFailures: e.NAMECARD_RATE_AUTH_FAILURES,
      friendAdd: e.NAMECARD_RATE_FRIEND_ADD,
    },
    logLevel: e.LOG_LEVEL,
    accessLog: { sampleEvery: e.NAMECARD_LOG_SAMPLE, slowMs: e.NAMECARD_LOG_SLOW_MS },
  };
}
