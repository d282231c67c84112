#!/usr/bin/env node
/**
 * `npm run bench`: runs every workspace's `bench` script one after the other (never two at once:
 * they measure the machine), each of them handing its rows to `reportRows`
 * (packages/db/bench/report.ts), then prints ONE table of all rows (suite, case, Namecard, bare
 * baseline, ratio) and writes them with the machine they ran on to docs/bench/latest.json.
 *
 *   npm run bench                      all of them
 *   npm run bench -- @namecard/server  only the named workspaces
 *   NAMECARD_BENCH_JSON=path           write the JSON elsewhere
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** Workspaces with a `bench` script: packages first (the store), then apps. */
function benchWorkspaces() {
  const found = [];
  for (const pattern of rootPackage.workspaces) {
    const base = join(root, pattern.replace(/\/\*$/, ''));
    const dirs = pattern.endsWith('/*')
      ? execFileSync('ls', [base], { encoding: 'utf8' }).split('\n').filter(Boolean)
      : [''];
    for (const dir of dirs) {
      const file = join(base, dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.scripts?.bench) found.push(pkg.name);
    }
  }
  const rank = (name) => (name.startsWith('@namecard/db') ? 0 : 1);
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function version(command, args, pattern) {
  try {
    const out = execFileSync(command, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return pattern.exec(out)?.[1] ?? out.trim();
  } catch {
    return 'unknown';
  }
}

const only = process.argv.slice(2);
const workspaces = benchWorkspaces().filter((w) => only.length === 0 || only.includes(w));
const dir = mkdtempSync(join(tmpdir(), 'namecard-bench-'));
const out = join(dir, 'rows.jsonl');
writeFileSync(out, '');

const started = Date.now();
const runs = [];
for (const workspace of workspaces) {
  const t0 = Date.now();
  console.log(`\n=== ${workspace}: npm run bench`);
  const result = spawnSync('npm', ['run', 'bench', '-w', workspace], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NAMECARD_BENCH_OUT: out },
  });
  const seconds = Math.round((Date.now() - t0) / 1000);
  runs.push({ workspace, seconds, exitCode: result.status });
  console.log(
    `=== ${workspace}: ${seconds} s${result.status === 0 ? '' : `, exit code ${result.status}`}`,
  );
}

const rows = readFileSync(out, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));
rmSync(dir, { recursive: true, force: true });

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  redis: version('redis-server', ['--version'], /v=(\S+)/),
  date: new Date().toISOString(),
};
const seconds = Math.round((Date.now() - started) / 1000);

const ratio = (row) =>
  row.ratio === null || row.ratio === undefined
    ? '-'
    : `${Number(row.ratio.toPrecision(3))}${row.better === 'lower' ? ' (lower is better)' : ''}`;
console.log(
  `\nAll benchmarks: ${rows.length} rows in ${seconds} s on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}, Redis ${machine.redis}`,
);
console.table(
  rows.map((row) => ({
    suite: row.suite,
    case: row.case,
    namecard: row.namecard,
    bare: row.bare,
    ratio: ratio(row),
  })),
);
// The same as Markdown, for README "Numbers".
const cell = (s) => String(s).replaceAll('|', '\\|');
console.log(
  '\n| suite | case | Namecard | bare baseline | ratio |\n| --- | --- | --- | --- | --- |',
);
for (const row of rows) {
  console.log(
    `| ${[row.suite, row.case, row.namecard, row.bare, ratio(row)].map(cell).join(' | ')} |`,
  );
}

const jsonPath = process.env.NAMECARD_BENCH_JSON ?? join(root, 'docs', 'bench', 'latest.json');
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify({ machine, seconds, runs, rows }, null, 2)}\n`);
console.log(`\nwrote ${jsonPath}`);
process.exitCode = runs.some((r) => r.exitCode !== 0) ? 1 : 0;
