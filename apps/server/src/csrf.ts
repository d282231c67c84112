/**
 * Cross-site request protection for the browser session.
 *
 * The session cookie is `SameSite=Lax`, which already keeps it off most cross-site requests, but
 * not off every one (a site of the same registrable domain, older browsers, a top-level POST
 * within Chrome's two-minute Lax window). So a state-changing request that carries the cookie is
 * accepted only when it comes from a page of the web app itself:
 *
 * - its `Content-Type` is `application/json`: an HTML form or a plain `fetch` without CORS can only
 *   send `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data`;
 * - its `Origin`, when present (browsers send it on every POST), is one of the configured web
 *   origins, or the very host the browser addressed (`X-Forwarded-Host` set by the web app's
 *   proxy, else `Host`), and never `null`;
 * - it is not marked `Sec-Fetch-Site: cross-site` unless its origin is a configured one.
 *
 * Calls without the cookie (services with `Authorization: Bearer`, admin calls) are not
 * affected: a browser never adds those headers to a cross-site request by itself.
 */
import { type IncomingMessage } from 'node:http';
import { SESSION_COOKIE } from '@namecard/api';
import { parse as parseCookies } from 'cookie';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function first(value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value[0] : value;
  return one?.split(',')[0]?.trim() || undefined;
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

/**
 * Why this request must be refused as a possible cross-site request forgery, or null when it
 * may go on.
 */
export function crossSiteRefusal(
  req: IncomingMessage,
  webOrigins: readonly string[],
): string | null {
  if (SAFE_METHODS.has(req.method ?? 'GET')) return null;
  const cookies = parseCookies(req.headers.cookie ?? '');
  if (cookies[SESSION_COOKIE] === undefined) return null;

  const mediaType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return 'a request carrying the session cookie must be sent as application/json by the web app';
  }
  const origin = first(req.headers.origin);
  if (origin === undefined) return null;
  if (webOrigins.includes(origin)) return null;
  if (first(req.headers['sec-fetch-site']) === 'cross-site') {
    return `cross-site request from ${origin} refused`;
  }
  const addressed = first(req.headers['x-forwarded-host']) ?? first(req.headers.host);
  if (origin !== 'null' && addressed !== undefined && hostOf(origin) === addressed) return null;
  return `request from origin ${origin} refused: not a web origin of this API`;
}
