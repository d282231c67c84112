/**
 * The HTTP layer: CORS for the web origins, `/healthz`, and tRPC at `/trpc` (queries, mutations,
 * SSE subscriptions) through tRPC's standalone Node adapter; `user.onChange` over SSE takes the
 * lean path of live-sse.ts (the same procedure and wire format, without per-subscriber streams).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import {
  ADMIN_HEADER,
  appRouter,
  createTRPCContext,
  SESSION_COOKIE,
  type ApiDeps,
} from '@namecard/api';
import { pingDb } from '@namecard/db';
import { TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { parse as parseCookies } from 'cookie';
import { clientIp, compileTrustProxy } from './client-ip';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES } from './config';
import { crossSiteRefusal } from './csrf';
import { createJsonCallHandler } from './json-calls';
import { createAccessLog, type AccessLogOptions } from './access-log';
import { createLiveSseHandler, isLiveSseRequest } from './live-sse';
import { type Logger } from './logger';

export interface HttpOptions {
  deps: ApiDeps;
  logger: Logger;
  /** Browser origins allowed to call the API with credentials (never `*`). */
  webOrigins: readonly string[];
  /** Largest request body read (NAMECARD_MAX_BODY_BYTES); past it 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes?: number;
  /** Most calls in one batch request (NAMECARD_MAX_BATCH); past it 400 BAD_REQUEST. */
  maxBatch?: number;
  /** Proxies whose X-Forwarded-For names the client (NAMECARD_TRUST_PROXY). */
  trustProxy?: readonly string[];
  /**
   * How long a client may take to send a whole request, headers and body (NAMECARD_REQUEST_TIMEOUT_MS);
   * past it 408 and the connection closes. Live responses are not limited by it.
   */
  requestTimeoutMs?: number;
  /**
   * Answer plain JSON queries and mutations without tRPC's Fetch adapter (json-calls.ts; the
   * default). Off, every call goes through tRPC's standalone adapter: the tests compare both.
   */
  jsonCallsPath?: boolean;
  /** Which requests get a log line (access-log.ts): writes, errors, slow ones, a sample of reads. */
  accessLog?: AccessLogOptions;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function applyCors(req: IncomingMessage, res: ServerResponse, origins: readonly string[]) {
  const origin = header(req, 'origin');
  // Only listed origins, never a wildcard: the answer allows credentials.
  if (!origin || !origins.includes(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader(
    'Access-Control-Allow-Headers',
    `Authorization, Content-Type, ${ADMIN_HEADER}, trpc-accept, Last-Event-ID`,
  );
  res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
  res.setHeader('Access-Control-Max-Age', '600');
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * One warning per `intervalMs` for a burst of the same failure (every request fails while Redis
 * does not answer), with the number of failures since the last line.
 */
function throttledWarning(logger: Logger, message: string, intervalMs = 5000) {
  let last = -Infinity;
  let failures = 0;
  return {
    report(cause: unknown, path: string | undefined) {
      failures++;
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      logger.warn({ err: cause, path, failures }, message);
      failures = 0;
    },
  };
}

/** A POST whose body is JSON, or empty (a mutation without input). */
function isJsonBody(req: IncomingMessage): boolean {
  const type = header(req, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type === undefined) return Number(header(req, 'content-length') ?? 0) === 0;
  return type === 'application/json';
}

/**
 * An error answered before tRPC sees the request, shaped as tRPC's own (JSON-RPC code and HTTP
 * status from tRPC's tables), so clients read it the same way.
 */
function sendTrpcError(
  res: ServerResponse,
  code: TRPC_ERROR_CODE_KEY,
  message: string,
  headers: Record<string, string> = {},
) {
  const httpStatus = getHTTPStatusCodeFromError(new TRPCError({ code }));
  sendJson(
    res,
    httpStatus,
    {
      error: {
        message,
        code: TRPC_ERROR_CODES_BY_KEY[code],
        data: { code, httpStatus, fieldErrors: null },
      },
    },
    headers,
  );
}

/** A body declared larger than the limit: answered before reading it. */
function payloadTooLarge(res: ServerResponse, maxBodyBytes: number) {
  sendTrpcError(res, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${maxBodyBytes} bytes`, {
    Connection: 'close',
  });
}

export interface HttpServer {
  server: Server;
  /** Stops accepting connections; responses still to be sent close their connection after them. */
  close(): Promise<void>;
}

export function createHttpServer({
  deps,
  logger,
  webOrigins,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  maxBatch = DEFAULT_MAX_BATCH,
  trustProxy = [],
  requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  jsonCallsPath = true,
  accessLog: accessLogOptions,
}: HttpOptions): HttpServer {
  const trust = compileTrustProxy(trustProxy);
  const accessLog = createAccessLog(logger, accessLogOptions);
  const unavailable = throttledWarning(logger, 'requests failed: Redis is not answering');
  const createContext = (req: IncomingMessage, res: ServerResponse) =>
    createTRPCContext({
      deps,
      credentials: {
        authorization: header(req, 'authorization'),
        adminSecret: header(req, ADMIN_HEADER),
        sessionId: parseCookies(header(req, 'cookie') ?? '')[SESSION_COOKIE],
      },
      setCookie: (cookie) => res.appendHeader('Set-Cookie', cookie),
      setHeader: (name, value) => {
        if (!res.headersSent) res.setHeader(name, value);
      },
      clientIp: clientIp(req, trust),
      disconnect: () => res.destroy(),
    });
  const onError = ({ error, path, type }: { error: TRPCError; path?: string; type: string }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR') {
      logger.error({ err: error.cause ?? error, path, type }, 'procedure failed');
    } else if (error.code === 'SERVICE_UNAVAILABLE') {
      unavailable.report(error.cause ?? error, path);
    }
  };
  const trpcAdapter = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    // tRPC's own limits: the body is counted as it streams in (chunked bodies too) and the
    // request fails with PAYLOAD_TOO_LARGE past it; a batch of more calls is BAD_REQUEST.
    maxBodySize: maxBodyBytes,
    maxBatchSize: maxBatch,
    createContext: ({ req, res }) => createContext(req, res),
    onError,
  });
  // Plain JSON queries and mutations (single or batched) skip the adapter's Fetch objects
  // (json-calls.ts); everything else, subscriptions included, goes through tRPC's adapter.
  const jsonCalls = jsonCallsPath
    ? createJsonCallHandler({
        router: appRouter,
        basePath: '/trpc/',
        maxBatchSize: maxBatch,
        createContext,
        onError,
      })
    : () => false;
  const trpc = (req: IncomingMessage, res: ServerResponse) => {
    if (jsonCalls(req, res)) return;
    // The adapter cuts a body off at the limit (a chunked one: a declared one over it is
    // answered before reading): the rest is read and discarded (nothing is kept), so the client,
    // still sending, can read the 413; a client still sending after a second more is cut off.
    res.once('finish', () => {
      if (res.statusCode !== 413 || req.complete) return;
      const cut = setTimeout(() => req.socket.destroy(), 1000);
      req.once('end', () => clearTimeout(cut)).once('close', () => clearTimeout(cut));
      req.resume();
    });
    trpcAdapter(req, res);
  };
  // `user.onChange` over SSE: the same procedure, frames written straight to the socket.
  const liveSse = createLiveSseHandler({ createContext, onError });

  const inFlight = new Set<ServerResponse>();
  // Node's defaults give a slow client 300 s per request and look only every 30 s; requests
  // here are small, so a client dribbling its headers or body is cut off much sooner.
  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.min(2000, requestTimeoutMs),
    },
    (req, res) => {
      inFlight.add(res);
      res.once('close', () => inFlight.delete(res));
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      accessLog.track(req, res, path);
      applyCors(req, res, webOrigins);
      if (req.method === 'OPTIONS') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (path === '/healthz') {
        void pingDb(deps.db).then((redis) =>
          sendJson(res, redis ? 200 : 503, {
            status: redis ? 'ok' : 'degraded',
            mode: deps.db.mode,
            redis,
          }),
        );
        return;
      }
      if (path.startsWith('/trpc/')) {
        const declared = Number(header(req, 'content-length') ?? 0);
        if (declared > maxBodyBytes) {
          payloadTooLarge(res, maxBodyBytes);
          return;
        }
        const refusal = crossSiteRefusal(req, webOrigins);
        if (refusal) {
          sendTrpcError(res, 'FORBIDDEN', refusal);
          return;
        }
        if (req.method === 'POST' && !isJsonBody(req)) {
          // Every procedure takes JSON: a form or a binary body would reach the input check as a
          // FormData or stream object.
          sendTrpcError(
            res,
            'UNSUPPORTED_MEDIA_TYPE',
            'send the input as JSON (Content-Type: application/json)',
          );
          return;
        }
        const search = (req.url ?? '').slice(path.length + 1);
        if (isLiveSseRequest(req, path, search)) {
          void liveSse(req, res);
          return;
        }
        trpc(req, res);
        return;
      }
      sendJson(res, 404, { error: 'not found: the API is at /trpc, the health check at /healthz' });
    },
  );
  const close = () => {
    const closed = new Promise<void>((resolve) =>
      server.close(() => {
        accessLog.close();
        resolve();
      }),
    );
    // No new request may ride a keep-alive connection while server.close() waits for it.
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    return closed;
  };
  return { server, close };
}

/** Listens and resolves with the bound port (pass 0 for any free port). */
export function listen(server: Server, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
