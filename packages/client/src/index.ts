/**
 * @namecard/client: Namecard for other TypeScript services and scripts (Node 20+ and browsers).
 *
 * - {@link createNamecardClient}: the client with NIM's callbacks, sync, live subscription and cache;
 * - {@link mergeUsers}: NIM's merge of profile lists (newer `updateTime` wins), as a pure function;
 * - {@link createNamecardTrpc}: just the typed tRPC client, if you need nothing else.
 */
export {
  createNamecardClient,
  GET_USERS_BATCH,
  WATCH_LIMIT,
  isFatalError,
  NamecardClientClosedError,
  type NamecardClient,
  type NamecardClientOptions,
  type NamecardClientStatus,
  type NamecardErrorSource,
  type LiveItem,
  type Profile,
  type ProfilePatch,
  type SearchInput,
  type SearchPage,
  type SyncResult,
} from './client';
export { mergeUsers, supersedes, type Versioned } from './merge';
export {
  createNamecardTrpc,
  trpcEndpoint,
  type FetchLike,
  type NamecardTrpc,
  type TrpcClientOptions,
} from './trpc';
// The router's types without the server's context (see packages/api/src/client-types.ts). Imported,
// then exported: the declaration bundler (rolldown-plugin-dts 0.23) fails on `export type {} from`
// of a module it inlines.
import type { AppRouter, RouterInputs, RouterOutputs } from '@namecard/api/client-types';
export type { AppRouter, RouterInputs, RouterOutputs };
