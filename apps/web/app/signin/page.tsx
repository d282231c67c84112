import type { Metadata } from 'next';
import { redirect } from 'next/navigation';
import { SignInForm } from '../../components/sign-in-form';
import { safeNext } from '../../lib/paths';
import { errorCode, serverClient } from '../../trpc/server';

export const metadata: Metadata = { title: 'Sign in' };

/**
 * Sign in with an account and its token; in memory mode also one click on a demo account.
 * `next` (a local path only) is where the visitor was going.
 */
export default async function SignInPage({
  searchParams,
}: {
  searchParams: Promise<{ next?: string | string[] }>;
}) {
  const raw = (await searchParams).next;
  const next = safeNext(Array.isArray(raw) ? raw[0] : raw);
  const api = serverClient();
  const [me, demo] = await Promise.all([
    api.user.getMyInfo.query().catch((error: unknown) => {
      if (errorCode(error) === 'UNAUTHORIZED') return null;
      throw error;
    }),
    // Optional: the form works without the demo list.
    api.auth.demoAccounts.query().catch(() => []),
  ]);
  if (me) redirect(next);
  return (
    <main id="main" className="signin-page">
      <div className="signin-brand">
        <span className="brand-mark brand-mark-lg" aria-hidden>
          N
        </span>
        <h1>Namecard</h1>
        <p className="muted">
          Your profile, everywhere you chat. Sign in to edit yours and find people.
        </p>
      </div>
      <SignInForm next={next} demo={demo} />
    </main>
  );
}
