/** Where a signed-out visitor goes, and where sign-in may send them back to. */

const BASE = 'http://namecard.invalid';

/**
 * The local path in `next`, or `/me` when it is missing or points anywhere else (`//evil`,
 * `https://evil`, `/\evil`, `javascript:`...): sign-in never redirects off the site.
 */
export function safeNext(next: string | null | undefined, fallback = '/me'): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) {
    return fallback;
  }
  try {
    const url = new URL(next, BASE);
    if (url.origin !== BASE) return fallback;
    if (url.pathname === '/signin') return fallback;
    return `${url.pathname}${url.search}${url.hash}`;
  } catch {
    return fallback;
  }
}

/** `/signin?next=<path>`. */
export function signInHref(path: string): string {
  const next = safeNext(path, '');
  return next ? `/signin?next=${encodeURIComponent(next)}` : '/signin';
}

/** Pages that need a session (the proxy sends a visitor without one to sign in). */
export const PRIVATE_PREFIXES = ['/me', '/users', '/friends'] as const;

export function isPrivatePath(pathname: string): boolean {
  return PRIVATE_PREFIXES.some((p) => pathname === p || pathname.startsWith(`${p}/`));
}

/** The header proxy.ts sets so server components know the path being rendered. */
export const PATH_HEADER = 'x-namecard-path';
