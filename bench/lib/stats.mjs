// Percentiles, formatting and progress lines shared by the benches.

/** Nearest-rank percentile of numbers (sorted copy). */
export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const summary = (values) => ({
  n: values.length,
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  max: values.length ? values.reduce((a, b) => (b > a ? b : a)) : null,
});

export const round = (x, digits = 1) => (x == null || !Number.isFinite(x) ? x : Math.round(x * 10 ** digits) / 10 ** digits);
export const ratio = (a, b) => (a == null || b == null || b === 0 ? null : round(a / b, 2));

const started = Date.now();
/** A progress line, prefixed with the time since the bench started. */
export function progress(...parts) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${t}s]`, ...parts);
}

/** Fixed-width text table: rows are arrays of cells; the first row is the header. */
export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? "").length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? "").padEnd(widths[i]) : String(c ?? "").padStart(widths[i]))).join("  ");
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}
