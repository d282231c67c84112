// Bundles the server and the workspace packages it imports into dist/index.js; npm dependencies
// stay external and are loaded from node_modules at run time.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const workspace = (name) => name.startsWith('@namecard/');
const deps = (file) => Object.keys(JSON.parse(readFileSync(file, 'utf8')).dependencies ?? {});
const external = [
  ...deps('package.json'),
  ...deps('../../packages/api/package.json'),
  ...deps('../../packages/db/package.json'),
].filter((name) => !workspace(name));

await build({
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  external,
  logLevel: 'info',
});
