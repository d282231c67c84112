/**
 * Per-account limit on concurrent live subscriptions, held in Redis so it holds across every API
 * instance: each subscription holds a lease (a member of `nc:{account}:subs` scored by its expiry) and renews it while it runs. A crashed instance's leases expire by themselves
 * within `SUBSCRIPTION_LEASE_MS`, so a count can never stay stuck.
 */
import { randomUUID } from 'node:crypto';
import { type Db } from './db';
import { keys } from './keys';
import { runScript } from './scripts';

export const DEFAULT_SUBSCRIPTIONS_PER_ACCOUNT = 20;
export const SUBSCRIPTION_LEASE_MS = 60_000;

export class SubscriptionLimitError extends Error {
  constructor(
    readonly account: string,
    readonly limit: number,
  ) {
    super(`at most ${limit} live subscriptions per account`);
  }
}

export interface SubscriptionLease {
  release(): Promise<void>;
}

/**
 * Takes a lease for one subscription of `account` (SubscriptionLimitError past the limit) and
 * renews it every third of its length until released.
 */
export async function takeSubscriptionLease(
  db: Db,
  account: string,
  leaseMs = SUBSCRIPTION_LEASE_MS,
): Promise<SubscriptionLease> {
  const limit = db.subscriptionsPerAccount ?? DEFAULT_SUBSCRIPTIONS_PER_ACCOUNT;
  const id = randomUUID();
  const key = keys.subscriptions(account);
  const take = () =>
    runScript(db.redis, 'ncLease', [key], [id, String(leaseMs), String(limit), String(Date.now())]);
  if ((await take()) === 'limit') throw new SubscriptionLimitError(account, limit);
  // A failed renewal (Redis away) is retried at the next tick; the lease outlives two misses.
  const timer = setInterval(() => void take().catch(() => undefined), Math.ceil(leaseMs / 3));
  timer.unref();
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await db.redis.zrem(key, id);
    },
  };
}

/** Unexpired subscription leases of an account. */
export async function countSubscriptions(db: Db, account: string): Promise<number> {
  return db.redis.zcount(keys.subscriptions(account), `(${Date.now()}`, '+inf');
}
