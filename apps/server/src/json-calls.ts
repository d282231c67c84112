/**
 * tRPC queries and mutations answered as plain JSON, straight from Node's request and response.
 *
 * tRPC's standalone adapter turns every Node request into a Fetch `Request` (a URL parsed twice, a
 * copy of the headers, a body stream, four AbortSignals) and pipes a Fetch `Response` back through
 * web streams; for a small query that is about 40% of the server's CPU. This path answers the
 * requests that need none of it: queries by GET and mutations by POST with a JSON body, single or
 * batched (`?batch=1`), with tRPC's own public functions (`callTRPCProcedure`,
 * `getTRPCErrorShape`, `getHTTPStatusCode`, `transformTRPCResponse`; the value checks come from
 * tRPC's core, as in live-sse.ts), so the procedures, the
 * error formatter, status codes and wire format are tRPC's. Everything else is left to tRPC's
 * adapter (`handle` returns false): subscriptions (SSE), streamed batches (`trpc-accept:
 * application/jsonl`), unknown paths, a method that does not fit the procedure, batches over
 * the limit, `connectionParams`, a POST without a declared length (a chunked body) and HEAD, so
 * tRPC answers those with its own errors. Tests compare both paths answer for answer
 * (test/json-calls.test.ts).
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Socket } from 'node:net';
import {
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  transformTRPCResponse,
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  TRPCError,
} from '@trpc/server';
import { getHTTPStatusCode } from '@trpc/server/http';
import { isAsyncIterable, isObject, isPromise } from '@trpc/server/unstable-core-do-not-import';
import { type TRPCErrorShape, type TRPCResponse } from '@trpc/server/rpc';

export interface JsonCallsOptions<TContext> {
  router: AnyTRPCRouter;
  /** The part of the URL path before the procedure path (`/trpc/`). */
  basePath: string;
  maxBatchSize: number;
  createContext: (req: IncomingMessage, res: ServerResponse) => TContext | Promise<TContext>;
  onError: (opts: {
    error: TRPCError;
    path: string;
    type: 'query' | 'mutation';
    input: unknown;
  }) => void;
}

const METHOD_OF = { query: 'GET', mutation: 'POST' } as const;

type TransformConfig = Parameters<typeof transformTRPCResponse>[0];

interface Call {
  path: string;
  procedure: AnyTRPCProcedure;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** tRPC's `getAcceptHeader`: does the client want a streamed (jsonl) answer? */
function wantsStream(req: IncomingMessage): boolean {
  if (header(req, 'trpc-accept') !== undefined) return true;
  const accept = header(req, 'accept');
  return accept !== undefined && accept.split(',').some((t) => t.trim() === 'application/jsonl');
}

const connectionSignals = new WeakMap<Socket, AbortSignal>();

/**
 * The calls' signal: aborted when the client's connection closes, as a client that goes away
 * before its answer does. One per connection rather than per request (an AbortController, its
 * signal and a listener per call were about 4% of a small call's CPU): HTTP/1.1 answers a
 * connection's requests in order, so every call it carries is cut off together.
 */
function connectionSignal(req: IncomingMessage): AbortSignal {
  const socket = req.socket;
  let signal = connectionSignals.get(socket);
  if (!signal) {
    const controller = new AbortController();
    if (socket.destroyed) controller.abort();
    else socket.once('close', () => controller.abort());
    signal = controller.signal;
    connectionSignals.set(socket, signal);
  }
  return signal;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(new TextDecoder().decode(Buffer.concat(chunks))));
    req.once('error', reject);
  });
}

export function createJsonCallHandler<TContext>(options: JsonCallsOptions<TContext>) {
  const { router, basePath, maxBatchSize } = options;
  const config = router._def._config;
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure | undefined>;

  /** The calls of a request this path answers, or null to leave the request to tRPC. */
  function callsOf(req: IncomingMessage, pathname: string, batch: boolean): Call[] | null {
    const method = req.method;
    if (method !== 'GET' && method !== 'POST') return null;
    // tRPC's JSON handler takes `application/json` (any parameters), and a GET without a
    // content type; other types (form data, octet streams) have handlers of their own in tRPC.
    // A chunked body (no declared length) is left to tRPC, which counts it against the size
    // limit as it streams in.
    const type = header(req, 'content-type')?.toLowerCase().split(';', 1)[0]?.trim();
    if (type !== 'application/json' && (method === 'POST' || type !== undefined)) return null;
    if (method === 'POST' && header(req, 'content-length') === undefined) return null;
    if (wantsStream(req)) return null;
    let joined: string;
    try {
      joined = decodeURIComponent(pathname.slice(basePath.length));
    } catch {
      return null;
    }
    const paths = batch ? joined.split(',') : [joined];
    if (paths.length > maxBatchSize) return null;
    const calls: Call[] = [];
    for (const path of paths) {
      const procedure = Object.hasOwn(procedures, path) ? procedures[path] : undefined;
      const type = procedure?._def.type;
      if (!procedure || (type !== 'query' && type !== 'mutation') || METHOD_OF[type] !== method) {
        return null;
      }
      calls.push({ path, procedure });
    }
    return calls;
  }

  /** Answers the request and returns true, or returns false without touching it. */
  return function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const search = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    if (search.has('connectionParams')) return false;
    const batch = search.get('batch') === '1';
    const calls = callsOf(req, pathname, batch);
    if (!calls) return false;
    void answer(req, res, calls, batch, search).catch((cause: unknown) => {
      // Only a fault of this path itself gets here (procedures' errors are answered as tRPC's).
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'application/json');
      }
      res.end();
      options.onError({
        error: getTRPCErrorFromUnknown(cause),
        path: calls.map((c) => c.path).join(','),
        type: calls[0]!.procedure._def.type as 'query' | 'mutation',
        input: undefined,
      });
    });
    return true;
  };

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    calls: Call[],
    batch: boolean,
    search: URLSearchParams,
  ) {
    const signal = connectionSignal(req);
    const body = req.method === 'POST' ? await readBody(req) : null;

    // tRPC's reading of the input: lazily, once, a bad one a BAD_REQUEST for every call.
    let inputs: Record<number, unknown> | undefined;
    let inputsError: TRPCError | undefined;
    const readInputs = (): Record<number, unknown> => {
      if (inputs) return inputs;
      if (inputsError) throw inputsError;
      try {
        // A body is always parsed (an empty one is a parse error, as tRPC's `req.json()`);
        // an absent or empty `input` parameter means no input.
        const text = body ?? search.get('input');
        const raw: unknown = body !== null || text ? JSON.parse(text!) : undefined;
        const read: Record<number, unknown> = Object.create(null) as Record<number, unknown>;
        if (raw !== undefined) {
          if (!batch) read[0] = config.transformer.input.deserialize(raw);
          else {
            if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
              throw new TRPCError({
                code: 'BAD_REQUEST',
                message: '"input" needs to be an object when doing a batch call',
              });
            }
            for (let i = 0; i < calls.length; i++) {
              const value = (raw as Record<number, unknown>)[i];
              if (value !== undefined) read[i] = config.transformer.input.deserialize(value);
            }
          }
        }
        return (inputs = read);
      } catch (cause) {
        inputsError = badInput(cause);
        throw inputsError;
      }
    };

    let ctx: TContext | undefined;
    let ctxError: TRPCError | undefined;
    try {
      ctx = await options.createContext(req, res);
    } catch (cause) {
      ctxError = getTRPCErrorFromUnknown(cause);
    }

    const results = await Promise.all(
      calls.map(async ({ path, procedure }, batchIndex): Promise<TRPCResponse> => {
        const type = procedure._def.type as 'query' | 'mutation';
        try {
          if (ctxError) throw ctxError;
          const data: unknown = await callTRPCProcedure({
            router,
            path,
            // Read on demand, as tRPC does: a procedure without input never parses it.
            getRawInput: () => Promise.resolve().then(() => readInputs()[batchIndex]),
            ctx,
            type,
            signal,
            batchIndex,
          });
          if (isDataStream(data)) {
            throw new TRPCError({
              code: 'UNSUPPORTED_MEDIA_TYPE',
              message:
                'Cannot use stream-like response in non-streaming request - use httpBatchStreamLink',
            });
          }
          return { result: { data } };
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          const input = inputs?.[batchIndex];
          options.onError({ error, path, type, input });
          const shape = getTRPCErrorShape({
            config,
            error,
            type,
            path,
            input,
            ctx,
          }) as TRPCErrorShape;
          return { error: shape };
        }
      }),
    );
    if (res.destroyed) return;
    const json = batch ? results : results[0]!;
    res.statusCode = getHTTPStatusCode(json);
    res.setHeader('vary', 'trpc-accept, accept');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(transformTRPCResponse(config as TransformConfig, json)));
  }
}

/** tRPC's answer to input it cannot read: BAD_REQUEST carrying the parser's message. */
function badInput(cause: unknown): TRPCError {
  if (cause instanceof TRPCError) return cause;
  const message = cause instanceof Error ? cause.message : 'Invalid input';
  return new TRPCError({ code: 'BAD_REQUEST', message, cause });
}

/** tRPC's `isDataStream`: a result only a streamed (jsonl) answer can carry. */
function isDataStream(v: unknown): boolean {
  if (!isObject(v)) return false;
  if (isAsyncIterable(v)) return true;
  const values = Object.values(v);
  return values.some(isPromise) || values.some(isAsyncIterable);
}
