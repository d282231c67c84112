/** Tiny helpers for the benchmarks: timing loops and a printed table. */

export interface Row {
  name: string;
  ops: number;
  ms: number;
  /** Per-operation time relative to the baseline row of its group. */
  vsBaseline?: string;
}

/** Runs `fn` `count` times with `concurrency` in flight; returns elapsed ms. */
export async function timeOps(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return performance.now() - started;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function printTable(title: string, rows: Record<string, string | number>[]) {
  console.log(`\n${title}`);
  console.table(rows);
}

/** Calls `fn` for 0..count-1, `size` at a time (a benchmark's seeding). */
export async function inBatches(count: number, size: number, fn: (i: number) => Promise<unknown>) {
  for (let start = 0; start < count; start += size) {
    await Promise.all(
      Array.from({ length: Math.min(size, count - start) }, (_, k) => fn(start + k)),
    );
  }
}
