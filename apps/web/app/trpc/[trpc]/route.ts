/**
 * The browser's only way to the API: `/trpc/*` on the web origin is passed through to
 * `${NAMECARD_API_URL}/trpc/*` at request time. So the `nc_session` cookie is first-party on the
 * web origin (HttpOnly; page scripts never see it), no CORS is needed, and the API's cross-site
 * check sees the browser's own `Origin` against the host the browser used (`X-Forwarded-Host`).
 *
 * Responses are streamed back as they come: subscriptions are SSE (`text/event-stream` with
 * `Cache-Control: no-cache, no-transform`, which also keeps Next's gzip off them), and the
 * upstream request is aborted when the browser goes away.
 */
import { type NextRequest } from 'next/server';
import { apiBaseUrl } from '../../../lib/api-url';

export const dynamic = 'force-dynamic';

/** Request headers the API needs; everything else (the browser's other headers) stays here. */
const REQUEST_HEADERS = [
  'cookie',
  'content-type',
  'origin',
  'last-event-id',
  'trpc-accept',
  'accept',
  'user-agent',
  'sec-fetch-site',
  // The browser's address (Next fills it in from the socket unless a proxy in front already
  // did), so the API's per-IP limits count each visitor, not the web server, when the web app
  // is listed in the API's NAMECARD_TRUST_PROXY.
  'x-forwarded-for',
];
/** Response headers the browser needs (Set-Cookie is copied one by one below). */
const RESPONSE_HEADERS = ['content-type', 'cache-control', 'vary'];
/** The largest request body passed on (a profile patch is a few kB; batches stay far below). */
const MAX_BODY_BYTES = 256 * 1024;

async function pass(request: NextRequest): Promise<Response> {
  const { pathname, search, protocol, host } = request.nextUrl;
  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  headers.set(
    'x-forwarded-host',
    request.headers.get('x-forwarded-host') ?? request.headers.get('host') ?? host,
  );
  headers.set(
    'x-forwarded-proto',
    request.headers.get('x-forwarded-proto') ?? protocol.replace(/:$/, ''),
  );

  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY_BYTES) {
    return new Response('request body too large', { status: 413 });
  }
  const body = hasBody ? await request.arrayBuffer() : null;
  if (body && body.byteLength > MAX_BODY_BYTES) {
    return new Response('request body too large', { status: 413 });
  }
  let upstream: Response;
  try {
    upstream = await fetch(`${apiBaseUrl()}${pathname}${search}`, {
      method: request.method,
      headers,
      body,
      redirect: 'manual',
      cache: 'no-store',
      signal: request.signal,
    });
  } catch (error) {
    if (request.signal.aborted) return new Response(null, { status: 499 });
    return apiDown(error, pathname, request.nextUrl.searchParams);
  }

  const out = new Headers();
  for (const name of RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value !== null) out.set(name, value);
  }
  for (const cookie of upstream.headers.getSetCookie()) out.append('set-cookie', cookie);
  if (upstream.headers.get('content-type')?.startsWith('text/event-stream')) {
    // No buffering by a reverse proxy in front of the web app either.
    out.set('x-accel-buffering', 'no');
  }
  return new Response(upstream.body, { status: upstream.status, headers: out });
}

/**
 * The API is not reachable: a tRPC-shaped error (one per call of a batch), so the page shows a
 * message instead of failing to read the answer.
 */
function apiDown(error: unknown, pathname: string, search: URLSearchParams): Response {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
  const reason = cause?.code ?? (error instanceof Error ? error.message : String(error));
  const one = {
    error: {
      message: `the Namecard API does not answer (${reason}); is it running?`,
      code: -32603,
      data: { code: 'INTERNAL_SERVER_ERROR', httpStatus: 502, fieldErrors: null },
    },
  };
  const calls = pathname.replace(/^\/trpc\//, '').split(',').length;
  return Response.json(
    search.get('batch') === '1' ? Array.from({ length: calls }, () => one) : one,
    {
      status: 502,
    },
  );
}

export { pass as GET, pass as POST };
