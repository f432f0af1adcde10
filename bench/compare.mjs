// `node bench/compare.mjs bench/results/run-*.json`: min / median / max of the headline figures
// over several bench runs.
import { readFileSync } from "node:fs";
import { percentile, table } from "./lib/stats.mjs";

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node bench/compare.mjs bench/results/run-*.json");
  process.exit(2);
}
const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")));

const figures = new Map();
const add = (name, value) => {
  if (value == null || !Number.isFinite(value)) return;
  if (!figures.has(name)) figures.set(name, []);
  figures.get(name).push(value);
};
for (const r of runs) {
  for (const x of r.ingest?.runs ?? []) {
    add(`ingest req/s: ${x.target}, proxy ${x.proxy}`, x.req_per_s);
    add(`ingest p99 ms: ${x.target}, proxy ${x.proxy}`, x.latency_ms.p99);
    add(`ingest Worker CPU ms/req: ${x.target}, proxy ${x.proxy}`, x.cpu_ms_per_request.worker);
  }
  for (const [mode, x] of Object.entries(r.ingest?.ratios ?? {})) {
    add(`ingest ratio flaghook/hello, ${mode}`, x.flaghook_vs_hello);
    add(`ingest ratio flaghook/d1-insert, ${mode}`, x.flaghook_vs_d1_insert);
  }
  if (r.drain) {
    add("drain time to all s", r.drain.time_to_all_s);
    add("drain deliveries/s", r.drain.deliveries_per_s);
    add("drain e2e p50 ms", r.drain.end_to_end_ms.p50);
    add("drain e2e p99 ms", r.drain.end_to_end_ms.p99);
    add("drain lost", r.drain.lost);
    add("drain duplicates", r.drain.duplicates);
    add("drain Worker CPU ms/event", r.drain.cpu_ms_per_event.worker);
  }
  if (r.fanout) {
    add(`fan-out ${r.fanout.webhooks}: all arrived ms`, r.fanout.median_all_ms);
    add(`fan-out ${r.fanout.webhooks}: p99 ms`, r.fanout.median_p99_ms);
  }
  for (const x of r.audit?.pages ?? []) {
    add(`audit ratio p50: ${x.query}`, x.ratio_p50);
    add(`audit ratio p99: ${x.query}`, x.ratio_p99);
  }
  if (r.audit) {
    add("audit worst indexed ratio p50", r.audit.worst_indexed_ratio_p50);
    add("audit worst indexed ratio p99", r.audit.worst_indexed_ratio_p99);
  }
  for (const x of r.audit?.exports ?? []) if (x.ratio_p50 != null) add(`audit export ratio p50: ${x.query}`, x.ratio_p50);
  if (r.bundle?.flaghook) add("bundle flaghook gzip KiB", r.bundle.flaghook.gzip_kib);
}
console.log(`${runs.length} runs: ${runs.map((r) => r.started_at).join(", ")}`);
console.log(
  table([
    ["Figure", "min", "median", "max", "runs"],
    ...[...figures].map(([name, v]) => [name, Math.min(...v), percentile(v, 50), Math.max(...v), v.length]),
  ]),
);
