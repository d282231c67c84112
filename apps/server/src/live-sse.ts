/**
 * The lean SSE path for `user.onChange`: thousands of live subscribers per process.
 *
 * tRPC's standalone adapter turns every request into a Fetch `Request`/`Response` and its SSE
 * producer pipes each subscription through web streams (a ReadableStream from the generator, a
 * TransformStream per frame part, a TextEncoderStream, a WritableStream into the socket, and the
 * abort plumbing around them): about 0.5 ms of CPU per delivered event and 76 KB of heap per idle
 * subscriber. This path runs the very same procedure (`appRouter`'s `user.onChange`, called the
 * way tRPC's handler calls it: the context `createTRPCContext` builds, its middlewares, zod input
 * validation, the subscription limit) and writes the frames straight to the `ServerResponse`,
 * byte for byte as tRPC 11.22.1's `sseStreamProducer` writes them (test/live-sse.test.ts runs
 * the same scenario through both and compares): the same headers, a `connected` event with the
 * router's `sse.client` options, `data:` with `id:` for tracked items, `ping` events after the
 * router's `sse.ping.intervalMs` of silence, `serialized-error` with the tRPC error shape (errors
 * before the first item included, as tRPC answers them), `return` when the stream ends, and the
 * `Last-Event-ID` header (or `lastEventId` / `Last-Event-Id` query parameter) merged into the
 * input as tRPC does.
 *
 * A frame is serialized once per item object: live.ts hands every subscriber of one visibility
 * class the same frozen item for one change, so 5,000 subscribers write one prebuilt string.
 * A slow reader is not read ahead of: the next item is pulled only once the socket has taken
 * the last one, so unsent events queue in live.ts, which cuts the subscriber at its bound
 * (ctx.http.disconnect). A client that leaves aborts the procedure's signal and ends its iterator.
 *
 * Anything else (batch or JSONL requests, `connectionParams`, other procedures) goes through
 * tRPC's own handler.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { appRouter, type Context } from '@namecard/api';
import { TRPCError } from '@trpc/server';
import {
  getErrorShape,
  getProcedureAtPath,
  getTRPCErrorFromUnknown,
  isAbortError,
  isAsyncIterable,
  isTrackedEnvelope,
  type AnyProcedure,
} from '@trpc/server/unstable-core-do-not-import';

export const LIVE_PATH = 'user.onChange';

export interface LiveSseOptions {
  /** The context tRPC's handler would build for this request. */
  createContext(req: IncomingMessage, res: ServerResponse): Context | Promise<Context>;
  /** Called as tRPC's handler calls its `onError`. */
  onError?(opts: { error: TRPCError; path: string; type: 'subscription' }): void;
}

/** Whether tRPC's handler would treat this request as a plain SSE call of `user.onChange`. */
export function isLiveSseRequest(req: IncomingMessage, path: string, search: string): boolean {
  if (req.method !== 'GET' || path !== `/trpc/${LIVE_PATH}`) return false;
  // Batch and JSONL calls, and connection params, keep tRPC's own handling.
  if (req.headers['trpc-accept'] !== undefined) return false;
  if (req.headers.accept?.includes('application/jsonl')) return false;
  const params = new URLSearchParams(search);
  return !params.has('batch') && !params.has('connectionParams');
}

const config = appRouter._def._config;
const sse = config.sse ?? {};
const pingMs =
  sse.ping?.enabled && sse.ping.intervalMs !== Infinity && (sse.ping.intervalMs ?? 1000) > 0
    ? (sse.ping.intervalMs ?? 1000)
    : null;

/** tRPC's frame: `event:`, `data:`, `id:` lines as present, then a blank line and one more. */
const frame = (fields: { event?: string; data?: string; id?: string }) =>
  (fields.event !== undefined ? `event: ${fields.event}\n` : '') +
  (fields.data !== undefined ? `data: ${fields.data}\n` : '') +
  (fields.id !== undefined ? `id: ${fields.id}\n` : '') +
  '\n\n';

const CONNECTED = frame({ event: 'connected', data: JSON.stringify(sse.client ?? {}) });
const PING = frame({ event: 'ping', data: '' });
const RETURN = frame({ event: 'return', data: '' });

/**
 * The `data:`/`id:` frame of a tracked item, kept per item object: the items live.ts shares
 * between subscribers are frozen, so their JSON cannot change.
 */
const trackedFrames = new WeakMap<object, { data: Buffer; byId: Map<string, Buffer> }>();
/** Whole frames kept per data object, one per id (subscribers at the same cursor share one). */
const FRAMES_PER_DATA = 64;

/**
 * A tracked item's frame: the `data:` line encoded once per (frozen) data object, then the
 * subscriber's `id:` (a cursor of the partitions it has seen). Subscribers that were at the same
 * cursor (usual in a fan-out) are at the same next one, so the whole frame is kept for the first
 * ids seen and every such socket takes the same bytes.
 */
function trackedFrame(id: string, data: unknown): Buffer | string {
  if (typeof data !== 'object' || data === null || !Object.isFrozen(data)) {
    return frame({ data: JSON.stringify(data), id });
  }
  let entry = trackedFrames.get(data);
  if (!entry) {
    entry = { data: Buffer.from(`data: ${JSON.stringify(data)}\n`), byId: new Map() };
    trackedFrames.set(data, entry);
  }
  let bytes = entry.byId.get(id);
  if (!bytes) {
    bytes = Buffer.concat([entry.data, Buffer.from(`id: ${id}\n\n\n`)]);
    if (entry.byId.size < FRAMES_PER_DATA) entry.byId.set(id, bytes);
  }
  return bytes;
}

/** tRPC's `getLastEventId`: the header, else the `lastEventId` or `Last-Event-Id` parameter. */
function lastEventIdOf(req: IncomingMessage, params: URLSearchParams): string | null {
  const header = req.headers['last-event-id'];
  return (
    (Array.isArray(header) ? header.join(', ') : header) ??
    params.get('lastEventId') ??
    params.get('Last-Event-Id')
  );
}

/** A live response: the socket, when it last had something written, how to end it. */
interface Stream {
  res: ServerResponse;
  lastWrite: number;
}

/**
 * Keep-alive: one timer for every live response of the process, instead of one per response;
 * a response silent for the ping interval gets a `ping` event (as tRPC's `withPing`).
 */
class Pinger {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  add(stream: Stream) {
    this.streams.add(stream);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), Math.min(1000, this.intervalMs / 4));
      this.timer.unref();
    }
  }

  delete(stream: Stream) {
    this.streams.delete(stream);
    if (this.streams.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep() {
    const now = performance.now();
    for (const stream of this.streams) {
      if (now - stream.lastWrite < this.intervalMs) continue;
      stream.lastWrite = now;
      stream.res.write(PING);
    }
  }
}

/** Resolves when the response can take more (`drain`) or is gone (`close`). */
function writable(res: ServerResponse): Promise<void> {
  // A destroyed response says so by returning false from write(), and its `close` may be past.
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function createLiveSseHandler(options: LiveSseOptions) {
  const pinger = pingMs ? new Pinger(pingMs) : null;
  let procedure: Promise<AnyProcedure | null> | undefined;

  return async function handleLiveSse(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const params = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    // The client going away aborts the procedure (tRPC: the request's signal).
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) abort.abort();
    };
    res.once('close', onClose);

    let ctx: Context | undefined;
    let rawInput: unknown;
    const stream: Stream = { res, lastWrite: performance.now() };
    const fail = (cause: unknown) => {
      const error = getTRPCErrorFromUnknown(cause);
      options.onError?.({ error, path: LIVE_PATH, type: 'subscription' });
      const shape = getErrorShape({
        config,
        error,
        type: 'subscription',
        path: LIVE_PATH,
        input: rawInput,
        ctx,
      });
      res.write(frame({ event: 'serialized-error', data: JSON.stringify(shape) }));
    };

    let iterator: AsyncIterator<unknown> | undefined;
    let started = false;
    const start = () => {
      // The same headers as tRPC's SSE response, in the order its Headers object lists them.
      res.statusCode = 200;
      res.setHeader('cache-control', 'no-cache, no-transform');
      res.setHeader('connection', 'keep-alive');
      res.setHeader('content-type', 'text/event-stream');
      res.setHeader('vary', 'trpc-accept, accept');
      res.setHeader('x-accel-buffering', 'no');
      res.write(CONNECTED);
      started = true;
      pinger?.add(stream);
    };
    try {
      const proc = await (procedure ??= getProcedureAtPath(appRouter, LIVE_PATH));
      ctx = await options.createContext(req, res);
      const result: unknown = await proc!({
        path: LIVE_PATH,
        type: 'subscription',
        ctx,
        signal: abort.signal,
        batchIndex: 0,
        // Read as tRPC's handler reads it: when the input middleware asks (after the auth
        // check), with the last event id the EventSource sends merged in.
        getRawInput: () => {
          try {
            const query = params.get('input');
            rawInput = query ? JSON.parse(query) : undefined;
          } catch (cause) {
            throw new TRPCError({
              code: 'BAD_REQUEST',
              message: cause instanceof Error ? cause.message : 'Invalid input',
              cause,
            });
          }
          const lastEventId = lastEventIdOf(req, params);
          if (!lastEventId) return Promise.resolve(rawInput);
          if (typeof rawInput === 'object' && rawInput !== null && !Array.isArray(rawInput))
            return Promise.resolve({ ...rawInput, lastEventId });
          return Promise.resolve(rawInput ?? { lastEventId });
        },
      });
      if (!isAsyncIterable(result)) {
        throw new TRPCError({
          code: 'INTERNAL_SERVER_ERROR',
          message: `Subscription ${LIVE_PATH} did not return an observable or a AsyncGenerator`,
        });
      }
      iterator = result[Symbol.asyncIterator]();
      // The client may have left while the procedure started (its signal is aborted then).
      if (res.destroyed) return;
      start();
      const given = lastEventIdOf(req, params);
      let lastEventId = given && !/[\0\n\r]/.test(given) ? given : null;
      for (;;) {
        const step = await iterator.next();
        if (step.done) break;
        const value = step.value;
        let text: string | Buffer;
        if (isTrackedEnvelope(value)) {
          text = trackedFrame(value[0], value[1]);
          lastEventId = value[0];
        } else {
          // Not produced by user.onChange (every item is tracked); written as tRPC would.
          const data = JSON.stringify(value);
          text =
            lastEventId === null
              ? frame({ data })
              : frame({ data, id: '' }) + frame({ event: 'restore-id', data: '', id: lastEventId });
        }
        stream.lastWrite = performance.now();
        if (!res.write(text)) await writable(res);
        if (res.destroyed) break;
      }
      if (!res.destroyed) res.write(RETURN);
    } catch (cause) {
      if (!isAbortError(cause) && !res.destroyed) {
        if (!started) start();
        fail(cause);
      }
    } finally {
      res.off('close', onClose);
      pinger?.delete(stream);
      // A client that left: end the procedure (its `finally` releases the lease and the watch).
      if (iterator?.return) await iterator.return(undefined).catch(() => undefined);
      res.end();
    }
  };
}
