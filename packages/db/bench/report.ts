/**
 * The benchmarks' shared report: every bench script, besides printing its own table, hands its
 * rows to `reportRows`, which appends them as JSON lines to the file named by
 * `NAMECARD_BENCH_OUT` (set by the root `npm run bench`, which prints one table of all of them
 * and writes the JSON). Each row compares a Namecard figure with its bare baseline measured in
 * the same run.
 */
import { appendFileSync } from 'node:fs';

export interface BenchRow {
  /** Which bench script (for example `store`, `live`, `fanout`, `requests`). */
  suite: string;
  /** What was measured, in words (`user.getMyInfo @32 connections`). */
  case: string;
  /** Namecard's figure, formatted with its unit (`4,120 req/s, p99 14 ms`). */
  namecard: string;
  /** The bare baseline's figure measured in the same run, formatted the same way. */
  bare: string;
  /**
   * Namecard relative to bare in the direction of `better`: for a throughput, namecard / bare
   * (1.0 = as fast; higher is better); for a time or a size, namecard / bare (lower is better).
   */
  ratio: number | null;
  better: 'higher' | 'lower';
  /** The raw numbers behind the formatted figures, for the JSON. */
  values?: Record<string, number>;
  notes?: string;
}

export function reportRows(rows: BenchRow[]): void {
  const out = process.env.NAMECARD_BENCH_OUT;
  if (!out || rows.length === 0) return;
  appendFileSync(out, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
}
