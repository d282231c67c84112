/**
 * Runs before every page request (Next 16's proxy, formerly middleware):
 * - a fresh CSP nonce per request: Next reads the policy from the request headers and puts the
 *   nonce on its own scripts; nothing else may run (no inline scripts, no eval);
 * - a visitor without a session cookie asking for a private page goes to /signin?next=<path>
 *   (a cookie that no longer works is caught by the private layout, which asks the API);
 * - the path is passed on to server components in `x-namecard-path`.
 */
import { NextResponse, type NextRequest } from 'next/server';
import { isPrivatePath, PATH_HEADER, signInHref } from './lib/paths';

const SESSION_COOKIE = 'nc_session';

export function contentSecurityPolicy(nonce: string, dev: boolean): string {
  return [
    `default-src 'self'`,
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? ` 'unsafe-eval'` : ''}`,
    `style-src 'self' 'nonce-${nonce}'`,
    // Avatars are any http(s) URL a user chose; they are only ever <img> sources.
    `img-src 'self' https: http:`,
    `font-src 'self'`,
    `connect-src 'self'`,
    `object-src 'none'`,
    `base-uri 'none'`,
    `form-action 'self'`,
    `frame-ancestors 'none'`,
  ].join('; ');
}

export function proxy(request: NextRequest) {
  const { pathname, search } = request.nextUrl;
  if (isPrivatePath(pathname) && !request.cookies.has(SESSION_COOKIE)) {
    return NextResponse.redirect(new URL(signInHref(`${pathname}${search}`), request.url));
  }
  const nonce = btoa(crypto.randomUUID());
  const csp = contentSecurityPolicy(nonce, process.env.NODE_ENV === 'development');
  const headers = new Headers(request.headers);
  headers.set('x-nonce', nonce);
  headers.set('Content-Security-Policy', csp);
  headers.set(PATH_HEADER, `${pathname}${search}`);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set('Content-Security-Policy', csp);
  return response;
}

export const config = {
  matcher: [
    {
      // Not the tRPC proxy (JSON and SSE, no scripts) nor static files.
      source: '/((?!trpc/|_next/static|_next/image|favicon.ico).*)',
      missing: [
        { type: 'header', key: 'next-router-prefetch' },
        { type: 'header', key: 'purpose', value: 'prefetch' },
      ],
    },
  ],
};
