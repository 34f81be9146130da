// Summary statistics and a text histogram for a set of measurements (e.g. failover times in ms).

export interface Distribution {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Linear interpolation between the two nearest ranks (the common "type 7" definition), so p50 is the
 * textbook median even for an even count.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("percentile of no values");
  if (p < 0 || p > 100) throw new Error(`percentile ${p} outside [0, 100]`);
  const rank = (p / 100) * (sorted.length - 1);
  const below = Math.floor(rank);
  const above = Math.min(sorted.length - 1, below + 1);
  const lower = sorted[below] as number;
  const upper = sorted[above] as number;
  return lower + (upper - lower) * (rank - below);
}

export function summarize(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
  };
}

/** One line per bucket of `bucketWidth`, from the bucket holding the minimum to the one holding the maximum. */
export function histogramLines(values: readonly number[], bucketWidth: number, barCharsMax = 40): string[] {
  if (values.length === 0) return [];
  const first = Math.floor(Math.min(...values) / bucketWidth);
  const last = Math.floor(Math.max(...values) / bucketWidth);
  const counts = new Array<number>(last - first + 1).fill(0);
  for (const value of values) {
    const index = Math.floor(value / bucketWidth) - first;
    counts[index] = (counts[index] ?? 0) + 1;
  }
  const countMax = Math.max(...counts);
  const labelWidth = String((last + 1) * bucketWidth).length;
  return counts.map((count, i) => {
    const from = String((first + i) * bucketWidth).padStart(labelWidth);
    const to = String((first + i + 1) * bucketWidth).padStart(labelWidth);
    const bar = "#".repeat(Math.round((count / countMax) * barCharsMax));
    return `${from}-${to}  ${String(count).padStart(3)} ${bar}`;
  });
}
