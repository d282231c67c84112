import { connection } from 'next/server';
import { apiBaseUrl, getApiHealth } from '../lib/api-health';

/**
 * Placeholder home page (a server component). It asks the API for its health on every request;
 * `connection()` makes the page dynamic, so `next build` never tries to reach the API.
 */
export default async function HomePage() {
  await connection();
  const base = apiBaseUrl();
  const health = await getApiHealth(base);

  return (
    <main>
      <h1>Namecard</h1>
      {health.reachable ? (
        <p className={health.ok ? 'status ok' : 'status warn'}>
          The API answers: <strong>{health.status}</strong>, {health.mode} mode
          {health.ok ? '' : ' (its store does not answer)'}.
        </p>
      ) : (
        <p className="status down">
          The API at <code>{base}</code> does not answer ({health.error}). Start it with{' '}
          <code>npm start</code> from the repository root.
        </p>
      )}
      <p>Sign-in, my profile and the user directory come with the web issue.</p>
      <p>
        API: <a href={base}>{base}</a> (tRPC at <code>/trpc</code>, health at{' '}
        <a href={`${base}/healthz`}>/healthz</a>)
      </p>
    </main>
  );
}
