/**
 * The access log: what operators need from every request, at a cost that does not show on a busy
 * server. One JSON line (pino) for every request that is not a fast, successful read: every
 * write (any method but GET/HEAD/OPTIONS), every answer of 400 or more, and every request slower
 * than `slowMs` (live subscriptions are logged when they end). Of the fast, successful reads one
 * in `sampleEvery` is logged, with `sampled: <sampleEvery>` so counts can be scaled back up; and
 * every `summaryIntervalMs` one `requests` line counts all of them by status class, so nothing
 * goes unaccounted for. `sampleEvery: 1` logs every request as before.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Logger } from './logger';

export interface AccessLogOptions {
  /** Log one in this many fast, successful reads (NAMECARD_LOG_SAMPLE; 1 logs all). */
  sampleEvery?: number;
  /** A request slower than this is always logged (NAMECARD_LOG_SLOW_MS). */
  slowMs?: number;
  /** How often the counts are logged. */
  summaryIntervalMs?: number;
}

export const DEFAULT_LOG_SAMPLE = 100;
export const DEFAULT_LOG_SLOW_MS = 1000;
const DEFAULT_SUMMARY_INTERVAL_MS = 60_000;

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createAccessLog(logger: Logger, options: AccessLogOptions = {}) {
  const sampleEvery = Math.max(1, Math.floor(options.sampleEvery ?? DEFAULT_LOG_SAMPLE));
  const slowMs = options.slowMs ?? DEFAULT_LOG_SLOW_MS;
  // Counts since the last summary, by status class; `unlogged` are the reads sampled out.
  let counts = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  let total = 0;
  let unlogged = 0;
  let fastReads = 0;

  const summary = () => {
    if (total === 0) return;
    logger.info({ requests: total, status: counts, unlogged }, 'requests');
    counts = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    total = 0;
    unlogged = 0;
  };
  const timer = setInterval(summary, options.summaryIntervalMs ?? DEFAULT_SUMMARY_INTERVAL_MS);
  timer.unref();

  return {
    /** Logs `req` when its response has been sent (or the connection closed before). */
    track(req: IncomingMessage, res: ServerResponse, path: string) {
      const started = performance.now();
      res.once('close', () => {
        const ms = performance.now() - started;
        const status = res.statusCode;
        const statusClass = `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx`;
        counts[statusClass as keyof typeof counts]++;
        total++;
        const always = status >= 400 || ms >= slowMs || !READS.has(req.method ?? 'GET');
        if (!always && ++fastReads % sampleEvery !== 0) {
          unlogged++;
          return;
        }
        const line: Record<string, unknown> = {
          method: req.method,
          path,
          status,
          ms: Math.round(ms),
        };
        if (!res.writableFinished) line.aborted = true;
        if (!always && sampleEvery > 1) line.sampled = sampleEvery;
        logger.info(line, 'request');
      });
    },
    /** Logs the counts not yet logged and stops the timer. */
    close() {
      clearInterval(timer);
      summary();
    },
  };
}
