// Audit query: p50/p99 of filtered list pages and of exports at 10k and at 1M entries (100k with
// --quick) in one organisation, and their ratio. Rows are written straight into each size's local
// D1 database with one INSERT ... SELECT (lib/audit-rows.mjs) while its Worker is stopped; then
// both Workers run and the requests alternate between them.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditRowsSql, createdDate } from "./lib/audit-rows.mjs";
import { createOrganisation, flaghookVars } from "./lib/flaghook.mjs";
import { percentile, progress, ratio, round } from "./lib/stats.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { newPersistDir, port, startWorker, wranglerSync } from "./lib/wrangler.mjs";

const PORT = port(41);
const PAGE = 50;
const WINDOW_ROWS = 2_000;

/** The filtered pages measured; `flat` marks those the 1.5x target applies to (index-backed). */
function queries(size) {
  const newest = size; // row n has created_date BASE + n seconds
  const since = createdDate(newest - 86_400 + 1).slice(0, 19) + ".000000Z";
  return [
    { name: "newest page, no filter", qs: "" },
    { name: "project", qs: "project=3" },
    { name: "environment", qs: "environment=302" },
    { name: "2 environments", qs: "environment=302&environment=705" },
    { name: "related_object_type=SEGMENT", qs: "related_object_type=SEGMENT" },
    { name: "author email", qs: "author=user7%40example.com" },
    { name: "is_system_event", qs: "is_system_event=true" },
    { name: "since (last 24 h)", qs: `since=${encodeURIComponent(since)}` },
    { name: "project + type", qs: "project=6&related_object_type=FEATURE" },
    { name: "project, 5th page (cursor)", qs: "project=3", pages: 5 },
    { name: "search (common word)", key: "search_common", qs: "search=feature_42" },
    { name: "search (no match)", key: "search_no_match", qs: "search=no-such-text" },
    { name: "search (rare word: 1 entry in 100,000)", key: "search_rare", qs: "search=rare%20marker" },
    { name: "search (common word), 5th page", qs: "search=feature_42", pages: 5 },
    { name: "search + project", qs: "search=segment&project=3" },
    { name: "search of 2 characters (scan)", qs: "search=_4", flat: false, samples: 20 },
  ].map((q) => ({ flat: true, pages: 1, ...q }));
}

/**
 * A local D1 (its own --persist-to directory) holding `size` audit entries of one organisation,
 * written by SQL while no Worker runs; `start()` then serves it. Also used by bench/log.mjs.
 */
export async function auditDatabase({ size, port, vars, label: name }) {
  const config = workerConfig("flaghook");
  const persist = newPersistDir(name);
  const start = (d1) => startWorker({ label: name, config, port, inspectorPort: port + 1, persistTo: persist, d1, proxy: false, readyPath: "/healthz", vars });
  progress(`${name}: creating the organisation and its key`);
  const setup = await start("flaghook");
  let org;
  try {
    org = await createOrganisation(setup.url);
  } finally {
    await setup.stop();
  }
  const t = Date.now();
  const sqlPath = join(persist, "rows.sql");
  const columns = JSON.parse(
    wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", config, "--json", "--command", "PRAGMA table_info(audit_entries)"]),
  )[0].results.map((c) => c.name);
  const seqOffset = columns.includes("seq") ? highestSeq(config, persist, org.orgId) : 0;
  writeFileSync(sqlPath, auditRowsSql(org.orgId, 1, size, columns, seqOffset));
  wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", config, "--file", sqlPath, "--yes"]);
  rmSync(sqlPath);
  progress(`${name}: ${size} entries written in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return { size, org, persist, entries: seqOffset + size, start: () => start() };
}

export async function auditBench({ quick }) {
  const sizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
  const samples = quick ? 30 : 200;
  const vars = flaghookVars();
  const workers = [];
  try {
    // One database per size, both Workers running, requests alternating between them: the ratio is
    // then measured under the same machine load, which matters on a shared machine.
    for (const [i, size] of sizes.entries()) {
      const db = await auditDatabase({ size, port: PORT + 2 * i, vars, label: `audit-${label(size)}` });
      workers.push({ size, worker: await db.start(), org: db.org, persist: db.persist });
    }
    const pages = await measurePages(workers, samples);
    const exports = await measureExports(workers, samples);

    const flat = pages.filter((r) => r.flat_target);
    // Named rows, for the targets and for bench/compare.mjs.
    const named = Object.fromEntries(pages.filter((r) => r.key).map(({ key, ...r }) => [key, { ...r, p50_ratio: r.ratio_p50, p99_ratio: r.ratio_p99 }]));
    const worstP50 = Math.max(...flat.map((r) => r.ratio_p50 ?? Infinity));
    const worstP99 = Math.max(...flat.map((r) => r.ratio_p99 ?? Infinity));
    return {
      sizes,
      samples_per_query: samples,
      page_size: PAGE,
      pages,
      ...named,
      exports,
      worst_indexed_ratio_p50: worstP50,
      worst_indexed_ratio_p99: worstP99,
      meets_target: worstP50 <= 1.5,
    };
  } finally {
    for (const { worker, persist } of workers) {
      await worker.stop();
      rmSync(persist, { recursive: true, force: true });
    }
  }
}

/** The organisation's highest entry number so far (its key's creation, if it was recorded). */
export function highestSeq(config, persist, orgId) {
  const out = wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", config, "--json", "--command", `select coalesce(max(seq), 0) as m from audit_entries where org_id = ${orgId}`]);
  return JSON.parse(out)[0].results[0].m;
}

export const label = (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

async function timedPage(base, org, qs, pages) {
  let cursor = null;
  let ms = 0;
  for (let p = 0; p < pages; p++) {
    const query = [qs, `page_size=${PAGE}`, cursor ? `cursor=${encodeURIComponent(cursor)}` : ""].filter(Boolean).join("&");
    const t = performance.now();
    const res = await fetch(`${base}/api/v1/audit/?${query}`, { headers: org.auth });
    const body = await res.json();
    ms = performance.now() - t; // the last page's time
    if (!res.ok) throw new Error(`audit ${query} answered ${res.status}: ${JSON.stringify(body)}`);
    if (body.results.length === 0 && !/no-such-text/.test(qs)) throw new Error(`audit ${query} found nothing`);
    cursor = body.next;
  }
  return ms;
}

/** Every query against every size, alternating sizes request by request; 3 warm-up rounds. */
async function measurePages(workers, samples) {
  const perSize = workers.map((w) => queries(w.size));
  const rows = [];
  for (let qi = 0; qi < perSize[0].length; qi++) {
    const n = Math.min(samples, perSize[0][qi].samples ?? samples);
    const times = workers.map(() => []);
    for (let i = 0; i < n + 3; i++) {
      for (const [wi, w] of workers.entries()) {
        const q = perSize[wi][qi];
        const ms = await timedPage(w.worker.url, w.org, q.qs, q.pages);
        if (i >= 3) times[wi].push(ms);
      }
    }
    const [a, b] = times.map((t) => ({ p50: round(percentile(t, 50), 1), p99: round(percentile(t, 99), 1) }));
    const [small, large] = workers.map((w) => label(w.size));
    const row = {
      ...(perSize[0][qi].key ? { key: perSize[0][qi].key } : {}),
      query: perSize[0][qi].name,
      flat_target: perSize[0][qi].flat,
      samples: n,
      [`p50_ms_${small}`]: a.p50,
      [`p99_ms_${small}`]: a.p99,
      [`p50_ms_${large}`]: b.p50,
      [`p99_ms_${large}`]: b.p99,
      ratio_p50: ratio(b.p50, a.p50),
      ratio_p99: ratio(b.p99, a.p99),
    };
    progress(`  audit: ${row.query}: p50 ${a.p50} / ${b.p50} ms, p99 ${a.p99} / ${b.p99} ms (${small} / ${large})`);
    rows.push(row);
  }
  return rows;
}

/**
 * Exports: a fixed window of WINDOW_ROWS entries (the same size at every log size), alternating
 * sizes; then the whole log's first bytes and rows/s, read for at most 10 s.
 */
async function measureExports(workers, samples) {
  const name = `window of ${WINDOW_ROWS} entries (ndjson)`;
  const times = workers.map(() => []);
  for (let i = 0; i < Math.ceil(samples / 8) + 2; i++) {
    for (const [wi, w] of workers.entries()) {
      const until = createdDate(w.size).slice(0, 19) + ".999999Z";
      const since = createdDate(w.size - WINDOW_ROWS + 1).slice(0, 19) + ".000000Z";
      const t = performance.now();
      const res = await fetch(`${w.worker.url}/api/v1/audit/export?format=ndjson&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`, {
        headers: w.org.auth,
      });
      const lines = (await res.text()).split("\n").filter(Boolean).length;
      if (lines !== WINDOW_ROWS) throw new Error(`export window returned ${lines} rows, expected ${WINDOW_ROWS}`);
      if (i >= 2) times[wi].push(performance.now() - t);
    }
  }
  const [a, b] = times.map((t) => ({ p50: round(percentile(t, 50), 0), p99: round(percentile(t, 99), 0) }));
  progress(`  audit: export of ${WINDOW_ROWS}: p50 ${a.p50} / ${b.p50} ms, p99 ${a.p99} / ${b.p99} ms`);
  const whole = [];
  for (const w of workers) {
    whole.push(await exportRate(w.worker.url, w.org, 10_000));
    const x = whole.at(-1);
    progress(`  audit: ${label(w.size)}: whole export: first bytes ${x.first_bytes_ms} ms, ${x.rows_per_s} rows/s (${x.rows} rows${x.complete ? "" : ", stopped at 10 s"})`);
  }
  return [
    { query: name, small: a, large: b, ratio_p50: ratio(b.p50, a.p50), ratio_p99: ratio(b.p99, a.p99) },
    { query: "whole log (ndjson)", small: whole[0], large: whole[1] },
  ];
}

/** Streams the unfiltered export for up to `limitMs`: time to first bytes, rows/s, whether it finished. */
async function exportRate(base, org, limitMs) {
  const controller = new AbortController();
  const t = performance.now();
  const res = await fetch(`${base}/api/v1/audit/export?format=ndjson`, { headers: org.auth, signal: controller.signal });
  const reader = res.body.getReader();
  let firstBytes = null;
  let rows = 0;
  let complete = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        complete = true;
        break;
      }
      firstBytes ??= performance.now() - t;
      for (const b of value) if (b === 10) rows++;
      if (performance.now() - t > limitMs) break;
    }
  } finally {
    if (!complete) controller.abort();
  }
  const seconds = (performance.now() - t) / 1000;
  return { first_bytes_ms: round(firstBytes, 0), rows, complete, p50: round(seconds * 1000, 0), rows_per_s: round(rows / seconds, 0) };
}
