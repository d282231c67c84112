/**
 * Builds the published package: ESM JavaScript and bundled declarations for `.` and `./nim`.
 *
 * - JavaScript: only this package's code; `@trpc/client` and `eventsource` stay imports (they are
 *   its dependencies). The workspace packages are imported for types only, so none of their code
 *   (nor zod or ioredis) ends up in dist.
 * - Declarations: the workspace types the API needs (`@namecard/api/client-types`, the routers'
 *   procedure types) are bundled in, so a consumer gets full end-to-end types with only the
 *   published dependencies installed. The two `@namecard/db` types the routers' declarations name
 *   come from src/public-types.ts (see there why, and public-types.check.ts for the proof that
 *   they are the same).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Rolldown } from 'tsdown';

const publicTypes = fileURLToPath(new URL('./src/public-types.ts', import.meta.url));
const dbDeclarations = fileURLToPath(new URL('../db/src/index.d.ts', import.meta.url));

/**
 * The declarations of `@namecard/db` (generated from its index.ts while bundling the routers'
 * declarations) are replaced by src/public-types.ts, which is written as plain declarations.
 * This plugin's `load` runs before the declaration plugin's own (order `pre`).
 */
const publicDbTypes: Rolldown.Plugin = {
  name: 'namecard:public-db-types',
  load: {
    order: 'pre',
    handler(id) {
      return id === dbDeclarations ? readFileSync(publicTypes, 'utf8') : null;
    },
  },
};

/** What the published files may import: the package's dependencies (and their subpaths). */
const allowed = Object.keys(
  (
    JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    }
  ).dependencies,
);
const importsOf = (code: string) =>
  [...code.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g)].map(
    (m) => m[1]!,
  );

export default defineConfig({
  entry: { index: 'src/index.ts', nim: 'src/nim.ts' },
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  dts: { eager: true },
  deps: {
    alwaysBundle: [/^@namecard\//],
    // Also the imports of the workspace packages' sources, which the declaration build reads to
    // generate their declarations: none of it is bundled, and this keeps the build out of it.
    neverBundle: [
      '@trpc/client',
      '@trpc/server',
      'eventsource',
      /^node:/,
      'ioredis',
      'ioredis-mock',
      'zod',
      'cookie',
    ],
  },
  plugins: [publicDbTypes],
  inputOptions: {
    // A name the declarations import but nothing exports (say the routers' declarations name a
    // new @namecard/db type that src/public-types.ts lacks) would silently become `undefined`.
    onLog(level, log, handler) {
      if (log.code === 'IMPORT_IS_UNDEFINED' || log.code === 'MISSING_EXPORT')
        handler('error', log);
      else handler(level, log);
    },
  },
  hooks: {
    // A published file that imports anything else (a workspace package, zod, ioredis) would break
    // in a consumer's project: fail the build instead.
    'build:done'({ chunks }) {
      for (const chunk of chunks) {
        if (chunk.type !== 'chunk') continue;
        const bad = importsOf(chunk.code).filter(
          (id) =>
            !id.startsWith('.') && !allowed.some((dep) => id === dep || id.startsWith(`${dep}/`)),
        );
        if (bad.length > 0) throw new Error(`dist/${chunk.fileName} imports ${bad.join(', ')}`);
      }
    },
  },
});
