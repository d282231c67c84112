/**
 * Server-only probe of the API's `/healthz`. The web app never holds data itself (see
 * DESIGN.md, "Modes"): it always talks to apps/server, found at `NAMECARD_API_URL`.
 */

/** Where apps/server listens; read at request time, so one build serves any environment. */
export function apiBaseUrl(): string {
  return (process.env.NAMECARD_API_URL ?? 'http://localhost:4000').replace(/\/+$/, '');
}

export type ApiHealth =
  | { reachable: true; ok: boolean; status: string; mode: string; redis: boolean }
  | { reachable: false; error: string };

/** Never throws: an API that is down, slow or answering garbage is reported, not raised. */
export async function getApiHealth(baseUrl = apiBaseUrl(), timeoutMs = 2000): Promise<ApiHealth> {
  try {
    const res = await fetch(`${baseUrl}/healthz`, {
      cache: 'no-store',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // 503 still carries a body ({ status: 'degraded', ... }), so read it whatever the code.
    const body = (await res.json().catch(() => null)) as Partial<{
      status: unknown;
      mode: unknown;
      redis: unknown;
    }> | null;
    if (!body || typeof body !== 'object') {
      return { reachable: false, error: `HTTP ${res.status} without a health answer` };
    }
    return {
      reachable: true,
      ok: res.ok,
      status: typeof body.status === 'string' ? body.status : `HTTP ${res.status}`,
      mode: typeof body.mode === 'string' ? body.mode : 'unknown',
      redis: body.redis === true,
    };
  } catch (err) {
    return { reachable: false, error: describe(err) };
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    // undici wraps the socket error (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
    const cause: unknown = err.cause;
    if (cause && typeof cause === 'object' && 'code' in cause && typeof cause.code === 'string') {
      return cause.code;
    }
    return err.message;
  }
  return String(err);
}
