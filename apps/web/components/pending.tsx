'use client';
import { useLinkStatus } from 'next/link';

/** A small spinner inside a <Link> while the page it leads to is on its way. */
export function Pending() {
  const { pending } = useLinkStatus();
  return <span className={pending ? 'pending pending-on' : 'pending'} aria-hidden />;
}
