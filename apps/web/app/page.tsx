import { redirect } from 'next/navigation';

/** The front door is the directory (or sign-in first, which proxy.ts takes care of). */
export default function Home() {
  redirect('/users');
}
