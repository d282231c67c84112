// Bundles the server and the workspace packages it imports into dist/index.js; npm dependencies
// stay external and are loaded from node_modules at run time. `node build.mjs <entry> <outfile>`
// bundles another entry the same way (bench/fanout.ts runs its server child as production does).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { argv } from 'node:process';

const workspace = (name) => name.startsWith('@namecard/');
const deps = (file) => Object.keys(JSON.parse(readFileSync(file, 'utf8')).dependencies ?? {});
const external = [
  ...deps('package.json'),
  ...deps('../../packages/api/package.json'),
  ...deps('../../packages/db/package.json'),
].filter((name) => !workspace(name));

const [entry = 'src/index.ts', outfile = 'dist/index.js'] = argv.slice(2);

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  external,
  logLevel: 'info',
});
