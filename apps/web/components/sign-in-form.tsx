'use client';
import { useMutation } from '@tanstack/react-query';
import { type FormEvent, useId, useState } from 'react';
import { useTRPC } from '../trpc/react';

/**
 * The token goes to `auth.signIn` once and is forgotten: the API answers with the HttpOnly
 * `nc_session` cookie, and the page then loads `next` in full (a fresh first paint with the
 * session).
 */
export function SignInForm({
  next,
  demo,
}: {
  next: string;
  demo: { account: string; nick: string }[];
}) {
  const trpc = useTRPC();
  const id = useId();
  const [account, setAccount] = useState('');
  const [token, setToken] = useState('');
  const done = () => window.location.assign(next);
  const signIn = useMutation(trpc.auth.signIn.mutationOptions({ onSuccess: done }));
  const signInDemo = useMutation(trpc.auth.signInDemo.mutationOptions({ onSuccess: done }));
  const busy = signIn.isPending || signInDemo.isPending || signIn.isSuccess || signInDemo.isSuccess;
  const error = signIn.error ?? signInDemo.error;

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    signInDemo.reset();
    signIn.mutate({ account: account.trim(), token: token.trim() });
  };

  return (
    <div className="signin-cards">
      <form className="card form signin-form" onSubmit={onSubmit} aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`}>Sign in</h2>
        <div className="field">
          <label htmlFor={`${id}-account`}>Account</label>
          <input
            id={`${id}-account`}
            name="account"
            value={account}
            onChange={(e) => setAccount(e.target.value)}
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            required
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-token`}>Token</label>
          <input
            id={`${id}-token`}
            name="token"
            type="password"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            autoComplete="current-password"
            required
          />
        </div>
        {error && (
          <p className="alert" role="alert">
            {signIn.error?.data?.code === 'UNAUTHORIZED'
              ? 'Wrong account or token.'
              : error.message}
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {demo.length > 0 && (
        <section className="card demo" aria-labelledby={`${id}-demo`}>
          <h2 id={`${id}-demo`}>Demo accounts</h2>
          <p className="muted small">Memory mode: try Namecard as one of these, no token needed.</p>
          <ul className="demo-list">
            {demo.map((d) => (
              <li key={d.account}>
                <button
                  type="button"
                  className="btn btn-block demo-button"
                  disabled={busy}
                  onClick={() => {
                    signIn.reset();
                    signInDemo.mutate({ account: d.account });
                  }}
                >
                  <span className="demo-nick">{d.nick}</span>
                  <span className="demo-account">@{d.account}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
