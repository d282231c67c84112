'use client';
import { useEffect } from 'react';

/** Anything a page could not render: most often the API is down or restarting. */
export default function ErrorPage({ error }: { error: Error & { digest?: string } }) {
  useEffect(() => console.error(error), [error]);
  return (
    <main id="main" className="center-page">
      <div className="card notice" role="alert">
        <h1>Something went wrong</h1>
        <p className="muted">
          The page could not be loaded. If the Namecard API was just started or restarted, it may
          need a few seconds.
        </p>
        <button type="button" className="btn btn-primary" onClick={() => window.location.reload()}>
          Try again
        </button>
      </div>
    </main>
  );
}
