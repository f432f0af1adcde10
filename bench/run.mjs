// `npm run bench [-- ingest drain fanout audit log history health cost bundle] [--quick]`: the benchmarks of SPEC 9 in the
// local runtime (`wrangler dev`), one section after another, progress as they run, a table at the
// end and the same figures in bench/results/latest.json (and a timestamped copy).
//   --quick              smaller sizes and shorter runs (a few minutes in all)
//   --ingest-modes=off,on  inspector proxy modes for ingest (default both)
//   --proxy=off|on       inspector proxy mode for drain and fan-out (default off)
//   --cost-baseline=<rev>  also measure the bill of a git revision, for before / after
// Ports: BENCH_PORT_BASE (default 8800) + 11..54; set it to run beside another bench.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { auditBench, label } from "./audit.mjs";
import { bundleBench } from "./bundle.mjs";
import { costBench } from "./cost.mjs";
import { drainBench } from "./drain.mjs";
import { fanoutBench } from "./fanout.mjs";
import { historyBench } from "./history.mjs";
import { healthBench } from "./health.mjs";
import { ingestBench } from "./ingest.mjs";
import { logBench } from "./log.mjs";
import { progress, round, table } from "./lib/stats.mjs";
import { removeSnapshot, snapshotSource, workerConfig } from "./lib/snapshot.mjs";
import { ROOT, setLogDir } from "./lib/wrangler.mjs";

const SECTIONS = ["ingest", "drain", "fanout", "audit", "log", "history", "health", "cost", "bundle"];
const argv = process.argv.slice(2);
const option = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const quick = argv.includes("--quick");
const chosen = argv.filter((a) => !a.startsWith("--"));
for (const s of chosen) if (!SECTIONS.includes(s)) throw new Error(`unknown section "${s}"; choose from ${SECTIONS.join(", ")}`);
const sections = chosen.length ? SECTIONS.filter((s) => chosen.includes(s)) : SECTIONS;
const ingestModes = option("ingest-modes", "off,on").split(",");
const proxy = option("proxy", "off");
const costBaseline = option("cost-baseline", null);

const wranglerVersion = JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version;
// flaghook is copied now and served from that copy for the whole run (lib/snapshot.mjs).
workerConfig("flaghook");
const results = {
  started_at: new Date().toISOString(),
  quick,
  source: snapshotSource(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, wrangler: wranglerVersion },
  notes: [
    "Local runtime (wrangler dev: workerd, simulated D1 and Queues) on a shared machine: compare figures within one run.",
    "CPU ms are read from /proc: 'Worker' is the workerd process running the Worker, which also hosts the simulated D1 and Queues.",
  ],
};
const stamp = results.started_at.replace(/[:.]/g, "-");
setLogDir(join(ROOT, "bench/results/logs", stamp));
const failures = [];
progress(`bench: ${sections.join(", ")}${quick ? " (quick)" : ""}; wrangler ${wranglerVersion}, ${results.machine.cpus} cores`);
const t0 = Date.now();
for (const section of sections) {
  try {
    if (section === "ingest") results.ingest = await ingestBench({ quick, modes: ingestModes });
    if (section === "drain") results.drain = await drainBench({ quick, proxy });
    if (section === "fanout") results.fanout = await fanoutBench({ quick, proxy });
    if (section === "audit") results.audit = await auditBench({ quick });
    if (section === "log") results.log = await logBench({ quick });
    if (section === "history") results.history = await historyBench({ quick });
    if (section === "health") results.health = await healthBench({ quick });
    if (section === "cost") results.cost = await costBench({ quick, baseline: costBaseline });
    if (section === "bundle") results.bundle = await bundleBench();
  } catch (err) {
    failures.push(`${section}: ${err.stack ?? err}`);
    progress(`${section} FAILED: ${err.message}`);
  }
}
removeSnapshot();
results.duration_s = Math.round((Date.now() - t0) / 1000);
results.targets = targets(results);
results.failures = failures;

const dir = join(ROOT, "bench/results");
mkdirSync(dir, { recursive: true });
const json = JSON.stringify(results, null, 2);
writeFileSync(join(dir, "latest.json"), json);
writeFileSync(join(dir, `run-${stamp}.json`), json);
console.log("\n" + report(results));
console.log(`\nbench/results/latest.json written (${results.duration_s} s in all); wrangler logs in bench/results/logs/${stamp}/`);
process.exit(failures.length ? 1 : 0);

function targets(r) {
  const out = [];
  for (const mode of Object.keys(r.ingest?.ratios ?? {})) {
    const x = r.ingest.ratios[mode];
    out.push({ target: `ingest >= 50% of hello-world req/s (${mode.replace("_", " ")})`, value: x.flaghook_vs_hello, met: x.flaghook_vs_hello >= 0.5 });
    out.push({ target: `ingest above the one-D1-insert Worker (${mode.replace("_", " ")})`, value: x.flaghook_vs_d1_insert, met: x.flaghook_vs_d1_insert > 1 });
  }
  if (r.drain) {
    out.push({ target: "drain > 1,000 deliveries/s", value: r.drain.deliveries_per_s, met: r.drain.complete && r.drain.deliveries_per_s > 1000 });
    out.push({ target: "drain: 0 lost", value: r.drain.lost, met: r.drain.lost === 0 });
  }
  if (r.audit) {
    const sizes = `${label(r.audit.sizes[1])} within 1.5x of ${label(r.audit.sizes[0])}`;
    out.push({ target: `filtered audit pages at ${sizes} (worst p50 ratio)`, value: r.audit.worst_indexed_ratio_p50, met: r.audit.worst_indexed_ratio_p50 <= 1.5 });
    out.push({ target: `filtered audit pages at ${sizes} (worst p99 ratio)`, value: r.audit.worst_indexed_ratio_p99, met: r.audit.worst_indexed_ratio_p99 <= 1.5 });
    for (const key of ["search_no_match", "search_common"]) {
      const x = r.audit[key];
      if (x) out.push({ target: `${x.query} at ${sizes} (p50 ratio)`, value: x.p50_ratio, met: x.p50_ratio <= 1.5 });
    }
  }
  if (r.log) {
    const [s, l] = r.log.sizes.map(label);
    const inclusion = r.log.proofs[0];
    out.push({ target: `inclusion proof p50 at ${l} within 2x of ${s}`, value: inclusion.ratio_p50, met: inclusion.ratio_p50 <= 2 });
    const sealed = r.log.sealing.first_run_of_small_log;
    out.push({ target: `sealing ${sealed.leaves} new entries under 2 s of Worker CPU (ms)`, value: sealed.cpu_ms, met: sealed.leaves >= 10_000 && sealed.cpu_ms < 2000 });
    out.push({ target: "ingest with sealing on within 10% of off (B/A)", value: r.log.ingest.on_vs_off, met: r.log.ingest.on_vs_off >= 0.9 });
  }
  if (r.history) {
    const h = r.history;
    const large = label(h.sizes[1]);
    out.push({ target: `state?at= p50 under 100 ms at ${large} audit entries`, value: h.state_p50_ms_large, met: h.state_p50_ms_large < 100 });
    out.push({ target: `state?at= p50 at ${large} within 1.5x of ${label(h.sizes[0])}`, value: h.state_ratio_p50, met: h.state_ratio_p50 <= 1.5 });
  }
  if (r.health) {
    const [s, l] = r.health.sizes.map(label);
    out.push({ target: `webhook stats with ${l} attempts within 1.5x of ${s} (worst p50 ratio)`, value: r.health.worst_ratio_p50, met: r.health.worst_ratio_p50 <= 1.5 });
  }
  if (r.cost) out.push({ target: "US$ per million events, burst (cost.usd_per_million_events)", value: r.cost.usd_per_million_events, met: r.cost.usd_per_million_events < 15 });
  return out;
}

function report(r) {
  const parts = [
    `flaghook bench ${r.started_at}${r.quick ? " (quick)" : ""}: wrangler ${r.machine.wrangler} dev, node ${r.machine.node}, ${r.machine.cpus} cores;` +
      ` source ${r.source.commit}${r.source.uncommitted_src?.length ? ` + ${r.source.uncommitted_src.length} uncommitted files under src/` : ""}`,
  ];
  const ms = (x) => (x == null ? "-" : String(x));
  if (r.ingest) {
    const i = r.ingest;
    parts.push(
      `\nIngest: autocannon -c${i.connections}, ${i.body_bytes}-byte event, ${i.rounds} rounds of ${i.slice_s} s per Worker, all Workers up at once and taking turns;` +
        "\nflaghook with 1 organisation + 2 environment webhooks delivering to the receiver; rows marked * are the breakdown",
      table([
        ["Worker", "inspector proxy", "req/s", "per slice", "p50 ms", "p99 ms", "Worker CPU ms/req", "all runtime CPU ms/req", "non-2xx+errors"],
        ...i.runs.map((x) => [
          x.breakdown ? `* ${x.target}` : x.target,
          x.proxy,
          x.req_per_s,
          x.req_per_s_per_slice.join(" "),
          x.latency_ms.p50,
          x.latency_ms.p99,
          x.cpu_ms_per_request.worker,
          Math.round((x.cpu_ms_per_request.worker + x.cpu_ms_per_request.proxy_workerd + x.cpu_ms_per_request.wrangler_node) * 1000) / 1000,
          x.non_2xx + x.errors,
        ]),
      ]),
      table([
        ["Ratio of req/s (per-round range)", ...Object.keys(i.ratios).map((m) => m.replace("_", " "))],
        ["flaghook / hello-world", ...Object.values(i.ratios).map((x) => `${ms(x.flaghook_vs_hello)} (${x.per_round_range.flaghook_vs_hello.join("-")})`)],
        ["flaghook / one-D1-insert", ...Object.values(i.ratios).map((x) => `${ms(x.flaghook_vs_d1_insert)} (${x.per_round_range.flaghook_vs_d1_insert.join("-")})`)],
        ["one-D1-insert / hello-world", ...Object.values(i.ratios).map((x) => ms(x.d1_insert_vs_hello))],
        ...Object.keys(i.ratios.proxy_off?.breakdown ?? {}).map((k) => [`* ${k}`, ...Object.values(i.ratios).map((x) => ms(x.breakdown?.[k]))]),
      ]),
    );
  }
  if (r.drain) {
    const d = r.drain;
    parts.push(
      `\nDrain: ${d.events} events x ${d.webhooks} webhooks to a local receiver (inspector proxy ${d.proxy})`,
      table([
        ["Measure", "Value"],
        ["deliveries arrived", `${d.received_deliveries} / ${d.expected_deliveries}`],
        ["time until all arrived (from first ingest request)", d.time_to_all_s == null ? "did not finish" : `${d.time_to_all_s} s`],
        ["deliveries/s", d.deliveries_per_s],
        ["ingest of the events (batches of 100, 4 in flight)", `${d.ingest_s} s = ${d.ingest_events_per_s} events/s`],
        ["end-to-end p50 / p99 / max (ingest request to receipt)", `${d.end_to_end_ms.p50} / ${d.end_to_end_ms.p99} / ${d.end_to_end_ms.max} ms`],
        ["lost", d.lost],
        ["duplicates (same webhook-id again)", d.duplicates],
        ["extra deliveries (same event and webhook, new id)", d.extra_deliveries_same_event_and_webhook],
        ["signatures failing verification", d.signatures_failed],
        ["Worker CPU per event (record + 3 deliveries)", `${d.cpu_ms_per_event.worker} ms`],
        ...(d.failure ? [["FAILURE", d.failure]] : []),
      ]),
    );
  }
  if (r.fanout) {
    const f = r.fanout;
    parts.push(
      `\nFan-out: one event to ${f.webhooks} environment webhooks, ${f.rounds.length} rounds, medians (inspector proxy ${f.proxy})`,
      table([
        ["Measure", "Value"],
        ["time until all arrived", f.median_all_ms == null ? "did not finish" : `${f.median_all_ms} ms`],
        ["receipt p50 / p99 (from the ingest request)", `${f.median_p50_ms} / ${f.median_p99_ms} ms`],
        ["deliveries/s", ms(f.deliveries_per_s)],
        ["per round: all arrived (ms)", f.rounds.map((x) => ms(x.all_ms)).join(", ")],
        ["lost / duplicates / bad signatures (all rounds)", `${f.lost} / ${f.duplicates} / ${f.signatures_failed}`],
        ["Worker CPU per delivery", `${f.worker_cpu_ms_per_delivery} ms`],
      ]),
    );
  }
  if (r.audit) {
    const a = r.audit;
    const [s, l] = a.sizes.map(label);
    parts.push(
      `\nAudit query: page_size ${a.page_size}, ${a.samples_per_query} requests per query and size (alternating sizes), one organisation holding all entries`,
      table([
        ["Query", `p50 ${s}`, `p99 ${s}`, `p50 ${l}`, `p99 ${l}`, "ratio p50", "ratio p99", "1.5x target"],
        ...a.pages.map((x) => [x.query, x[`p50_ms_${s}`], x[`p99_ms_${s}`], x[`p50_ms_${l}`], x[`p99_ms_${l}`], x.ratio_p50, x.ratio_p99, x.flat_target ? `p50 ${x.ratio_p50 <= 1.5 ? "met" : "MISSED"}, p99 ${x.ratio_p99 <= 1.5 ? "met" : "MISSED"}` : "n/a (scan)"]),
      ]),
      table([
        ["Export", `${s}`, `${l}`, "ratio p50"],
        ...a.exports.map((x) =>
          x.small.rows_per_s !== undefined
            ? [x.query, `${x.small.rows_per_s} rows/s, first bytes ${x.small.first_bytes_ms} ms`, `${x.large.rows_per_s} rows/s, first bytes ${x.large.first_bytes_ms} ms${x.large.complete ? "" : " (10 s read)"}`, "-"]
            : [x.query, `p50 ${x.small.p50} / p99 ${x.small.p99} ms`, `p50 ${x.large.p50} / p99 ${x.large.p99} ms`, x.ratio_p50],
        ),
      ]),
    );
  }
  if (r.log) {
    const g = r.log;
    const [s, l] = g.sizes.map(label);
    const x = g.sealing;
    parts.push(
      `\nSigned audit log: proofs at ${s} and ${l} entries of one organisation, ${g.samples} inclusion proofs per size (alternating sizes, each verified here by RFC 9162)`,
      table([
        ["Request", `p50 ${s}`, `p99 ${s}`, `p50 ${l}`, `p99 ${l}`, "ratio p50", "ratio p99"],
        ...g.proofs.map((p) => [p.query, p[`p50_ms_${s}`], p[`p99_ms_${s}`], p[`p50_ms_${l}`], p[`p99_ms_${l}`], p.ratio_p50, p.ratio_p99]),
      ]),
      table([
        ["Sealing (scheduled handler, inspector proxy off)", "entries", "wall ms", "Worker CPU ms"],
        [`first run on the ${s} log`, x.first_run_of_small_log.leaves, x.first_run_of_small_log.wall_ms, x.first_run_of_small_log.cpu_ms],
        ["a run with nothing to seal (sweeper + rolling check)", 0, x.idle_run.wall_ms, x.idle_run.cpu_ms],
        [`the ${l} log, ${x.large_log.runs} runs`, x.large_log.leaves, x.large_log.wall_ms, `${x.large_log.cpu_ms} (${x.large_log.leaves_per_cpu_s} entries per CPU second)`],
      ]),
      `\nIngest with sealing off (A) and on (B): autocannon -c32, ${g.ingest.rounds} rounds of ${g.ingest.slice_s} s each, the scheduled handler triggered once per slice, ${g.ingest.scheduled_every_ms} ms in`,
      table([
        ["Worker", "req/s per slice", "mean", "Worker CPU ms/req"],
        ["A: sealing off", g.ingest.off.req_per_s.join(" "), g.ingest.off.mean, g.ingest.off.cpu_ms_per_req.join(" ")],
        [`B: sealing on (${g.ingest.on.sealed_entries} entries sealed by the end)`, g.ingest.on.req_per_s.join(" "), g.ingest.on.mean, g.ingest.on.cpu_ms_per_req.join(" ")],
        ["B/A", g.ingest.per_round.join(" "), g.ingest.on_vs_off, ""],
      ]),
    );
  }
  if (r.history) {
    const h = r.history;
    const [s, l] = h.sizes.map(label);
    const e = h.environment;
    parts.push(
      `\nFlag history: an environment of ${e.features} features x ${e.segments + e.identities} overrides (${e.states} states, ${e.changes} changes), in organisations of ${s} and ${l} audit entries; ${h.samples_per_query} requests per query and size, alternating`,
      table([
        ["Query", "KiB", `p50 ${s}`, `p99 ${s}`, `p50 ${l}`, `p99 ${l}`, "ratio p50", "ratio p99"],
        ...h.queries.map((x) => [x.query, x.response_kib, x[`p50_ms_${s}`], x[`p99_ms_${s}`], x[`p50_ms_${l}`], x[`p99_ms_${l}`], x.ratio_p50, x.ratio_p99]),
      ]),
    );
  }
  if (r.health) {
    const h = r.health;
    const [s, l] = h.sizes.map(label);
    parts.push(
      `\nDelivery health: GET .../webhooks/{id}/stats of a webhook with ${s} and with ${l} attempts, ${h.samples} requests per window and size (alternating sizes)`,
      table([
        ["Request", `p50 ${s}`, `p99 ${s}`, `p50 ${l}`, `p99 ${l}`, "ratio p50", "ratio p99"],
        ...h.stats.map((x) => [x.query, x[`p50_ms_${s}`], x[`p99_ms_${s}`], x[`p50_ms_${l}`], x[`p99_ms_${l}`], x.ratio_p50, x.ratio_p99]),
      ]),
    );
  }
  if (r.cost) parts.push(costReport(r.cost));
  const cpuRows = [];
  for (const x of r.ingest?.runs.filter((x) => x.proxy === "off") ?? []) {
    cpuRows.push([`ingest: ${x.target} (per request; consumers' work done meanwhile included)`, x.cpu_ms_per_request.worker]);
  }
  if (r.drain) cpuRows.push([`drain: per event, accepted in batches, recorded, delivered to ${r.drain.webhooks} webhooks`, r.drain.cpu_ms_per_event.worker]);
  if (r.fanout) cpuRows.push(["fan-out: per delivery", r.fanout.worker_cpu_ms_per_delivery]);
  if (cpuRows.length) {
    parts.push(
      "\nCPU in the Worker's workerd process (/proc; it also runs the simulated D1 and Queues), inspector proxy off",
      table([["What", "CPU ms"], ...cpuRows]),
    );
  }
  if (r.bundle) {
    parts.push(
      "\nBundle (wrangler deploy --dry-run --outdir)",
      table([
        ["Worker", "KiB", "gzip KiB", "largest parts (KiB)"],
        ...Object.entries(r.bundle).map(([k, v]) => [k, v.kib, v.gzip_kib, Object.entries(v.largest_parts_kib).slice(0, 4).map(([p, n]) => `${p} ${n}`).join(", ")]),
      ]),
    );
  }
  if (r.targets.length) {
    parts.push("\nTargets", table([["Target", "Value", "Met"], ...r.targets.map((t) => [t.target, ms(t.value), t.met ? "yes" : "NO"])]));
  }
  if (r.failures.length) parts.push("\nFailures", ...r.failures);
  return parts.join("\n");
}

function costReport(c) {
  const cells = (v) => [v.alone, v.burst];
  const head = ["Per event, 3 webhooks delivered", ...c.versions.flatMap((v) => [`${v.label}: alone`, `${v.label}: burst of ${c.burst}`])];
  const row = (name, f) => [name, ...c.versions.flatMap((v) => cells(v).map((x) => f(x) ?? "-"))];
  const parts = [
    "\nThe bill (list prices: D1 $1.00 / M rows written, $0.001 / M read; Queues $0.40 / M operations; Workers $0.30 / M requests, $0.02 / M CPU ms; R2 $4.50 / $0.36 / M class A / B)",
    table([
      head,
      row("D1 rows written", (x) => x.d1_rows_written),
      row("D1 rows read", (x) => x.d1_rows_read),
      row("D1 statements", (x) => x.d1_statements),
      row("queue operations (write + read + delete)", (x) => x.queue_operations),
      row("R2 operations (class A / B)", (x) => `${x.r2_class_a} / ${x.r2_class_b}`),
      row("Worker requests (fetch + queue + scheduled)", (x) => x.worker_requests),
      row("Worker CPU ms (workerd process, simulated D1 and Queues included; alone: the burst's)", (x) => x.worker_cpu_ms),
      row("D1 bytes stored per event", (x) => x.d1_bytes_per_event),
      row("US$ per million events", (x) => x.usd_per_million_events),
    ]),
  ];
  for (const v of c.versions) {
    const s = v.scheduled;
    parts.push(
      `\n${v.label}: the scheduled handler after the burst (sealing its entries) / idle: ${s.sealing_run.d1_rows_written} / ${s.idle_run.d1_rows_written} rows written, ` +
        `${s.sealing_run.d1_rows_read} / ${s.idle_run.d1_rows_read} read, R2 ${s.sealing_run.r2_class_a}+${s.sealing_run.r2_class_b} / ${s.idle_run.r2_class_a}+${s.idle_run.r2_class_b} operations`,
    );
    const statements = Object.entries(v.burst.raw.d1.by_statement)
      .map(([k, x]) => [k, round(x.statements / c.burst, 2), round(x.rows_written / c.burst, 2), round(x.rows_read / c.burst, 2)])
      .sort((a, b) => b[2] - a[2] || b[3] - a[3]);
    parts.push(`${v.label}: D1 statements of the burst, per event`, table([["statement", "count", "rows written", "rows read"], ...statements]));
    if (v.storage?.bytes_per_event) {
      // Tables of a page or two (webhooks, sessions, ...) are not per event.
      const all = Object.entries(v.storage.bytes_per_event);
      const rows = all.filter(([, b]) => b >= 50);
      const rest = all.filter(([, b]) => b < 50).reduce((sum, [, b]) => sum + b, 0);
      parts.push(
        `${v.label}: bytes per event by table and index (dbstat over ${v.storage.events} events)`,
        table([["table or index", "bytes"], ...rows, [`the other ${all.length - rows.length} (a page or two each)`, rest]]),
      );
    }
  }
  return parts.join("\n");
}
