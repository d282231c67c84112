import Link from 'next/link';

/** The 404 page (Next answers with HTTP 404 when a page calls notFound()). */
export default function NotFound() {
  return (
    <main id="main" className="center-page">
      <div className="card notice">
        <p className="notice-code">404</p>
        <h1>No such page or person</h1>
        <p className="muted">The account may not exist, or the link is mistyped.</p>
        <Link href="/users" className="btn btn-primary">
          Go to the directory
        </Link>
      </div>
    </main>
  );
}
