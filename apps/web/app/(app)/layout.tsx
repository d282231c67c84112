import type { ReactNode } from 'react';
import { AppShell } from '../../components/app-shell';
import { handleApiError, HydrateClient, serverTrpc, getQueryClient } from '../../trpc/server';

/**
 * Every private page: asks the API who is signed in (with the viewer's cookie). A cookie that no
 * longer works sends the visitor to sign in and back here afterwards.
 */
export default async function PrivateLayout({ children }: { children: ReactNode }) {
  const trpc = serverTrpc();
  const me = await getQueryClient()
    .fetchQuery(trpc.user.getMyInfo.queryOptions())
    .catch(handleApiError);
  return (
    <HydrateClient>
      <AppShell me={me.account}>{children}</AppShell>
    </HydrateClient>
  );
}
