/**
 * Where apps/server listens: `NAMECARD_API_URL`, read at request time (not at build time), so one
 * build serves any environment. The web app holds no data of its own (DESIGN.md, "Modes").
 */
export function apiBaseUrl(): string {
  return (process.env.NAMECARD_API_URL ?? 'http://localhost:4000').replace(/\/+$/, '');
}
