/**
 * The typed tRPC client underneath `createNamecardClient`: one HTTP client per Namecard client,
 * authenticated with the account's token.
 *
 * Links (`splitLink`):
 * - subscriptions (`user.onChange`) go over SSE with the `eventsource` package, whose `fetch`
 *   option lets it send the `Authorization` header (a browser's built-in EventSource cannot, and
 *   Node 20 has none). It is fetch-based, so the same code runs in Node and in browsers.
 * - `*.getUsers` goes through `httpLink`, one HTTP request per call: a call is already a batch of
 *   up to 150 accounts, and combining several in one GET would make very long URLs.
 * - everything else through `httpBatchLink` (calls made in the same tick share one request;
 *   waiting for the tick costs about a millisecond per call), or `httpLink` with `batch: false`.
 *
 * Plain JSON on the wire, no transformer, as the server expects.
 */
import type { AppRouter } from '@namecard/api/client-types';
import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
} from '@trpc/client';
import type { LIMITS } from '@namecard/db/schema';
import { EventSource } from 'eventsource';

/** The `fetch` the client uses for every request, including the SSE stream. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface TrpcClientOptions {
  /** The server's base URL (`http://localhost:4000`) or its tRPC endpoint (`.../trpc`). */
  url: string;
  /** A user's token, sent as `Authorization: Bearer <token>`. */
  token: string;
  /** Sent as `X-Namecard-Admin` on queries and mutations, for `trpc.admin.*` calls. */
  adminSecret?: string | undefined;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike | undefined;
  /**
   * Whether calls made in the same tick share one HTTP request (default true). `false` sends each
   * call at once on its own: lower latency for one call at a time, more requests for bursts.
   */
  batch?: boolean | undefined;
}

/** The tRPC endpoint for a server URL: `http://host:4000` -> `http://host:4000/trpc`. */
export function trpcEndpoint(url: string): string {
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/trpc') ? base : `${base}/trpc`;
}

/** Creates the raw typed tRPC client (`AppRouter`). */
export function createNamecardTrpc(options: TrpcClientOptions) {
  const endpoint = trpcEndpoint(options.url);
  const authorization = `Bearer ${options.token}`;
  // Looked up at call time, so a fetch patched after creation is still used.
  const doFetch: FetchLike = (input, init) => (options.fetch ?? globalThis.fetch)(input, init);
  const headers = () => ({
    authorization,
    ...(options.adminSecret ? { 'x-namecard-admin': options.adminSecret } : {}),
  });

  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: endpoint,
          EventSource,
          eventSourceOptions: () => ({
            fetch: (input, init) =>
              doFetch(input, { ...init, headers: { ...init?.headers, authorization } }),
          }),
        }),
        false: splitLink({
          condition: (op) => op.path.endsWith('.getUsers'),
          true: httpLink({ url: endpoint, headers, fetch: doFetch }),
          false:
            options.batch === false
              ? httpLink({ url: endpoint, headers, fetch: doFetch })
              : httpBatchLink({ url: endpoint, headers, fetch: doFetch, maxItems: MAX_BATCH }),
        }),
      }),
    ],
  });
}

/** The server's default limit of calls per batch request (checked against `LIMITS` at compile time). */
const MAX_BATCH: (typeof LIMITS)['batch'] = 50;

export type NamecardTrpc = ReturnType<typeof createNamecardTrpc>;
