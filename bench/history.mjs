// Flag history: GET /environments/{env}/state?at= (and /changes, /timeline) for an environment of
// 1,000 features with 50 overrides each (10 segment, 40 identity), every state set 3 times, in an
// organisation of 10k and of 1M audit entries (100k with --quick) whose flag changes are projected
// too. Rows are written straight into each size's local D1 (lib/audit-rows.mjs,
// lib/history-rows.mjs) while its Worker is stopped; then both Workers run and requests alternate.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { label } from "./audit.mjs";
import { auditRowsSql } from "./lib/audit-rows.mjs";
import { createOrganisation, flaghookVars } from "./lib/flaghook.mjs";
import { changedAt, DAY, environmentHistorySql, micro, projectedAuditSql } from "./lib/history-rows.mjs";
import { percentile, progress, ratio, round } from "./lib/stats.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { newPersistDir, port, startWorker, wranglerSync } from "./lib/wrangler.mjs";

const PORT = port(45);
const ENVIRONMENT = { environmentId: 9000, projectId: 90, features: 1000, segments: 10, identities: 40, versions: 3 };
const STATES = ENVIRONMENT.features * (1 + ENVIRONMENT.segments + ENVIRONMENT.identities);

function queries() {
  const e = ENVIRONMENT.environmentId;
  return [
    {
      name: "state?at= (between two versions)",
      path: `/api/v1/environments/${e}/state?at=${micro(changedAt(1, 0) + 5 * DAY)}`,
      target: true,
      check: (b) => b.features.length === ENVIRONMENT.features && b.features[0].identity_overrides.length === ENVIRONMENT.identities,
    },
    { name: "state (now)", path: `/api/v1/environments/${e}/state`, check: (b) => b.features.length === ENVIRONMENT.features },
    {
      name: "changes over 1 hour (3,600 states changed)",
      path: `/api/v1/environments/${e}/changes?from=${micro(changedAt(2, 0) - 1)}&to=${micro(changedAt(2, 3599))}`,
      check: (b) => b.changes.length === 3600,
    },
    { name: "timeline of one flag, first page of 50", path: `/api/v1/environments/${e}/features/500/timeline`, check: (b) => b.results.length === 50 },
  ];
}

export async function historyBench({ quick }) {
  const sizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
  const samples = quick ? 10 : 40;
  const vars = flaghookVars();
  const config = workerConfig("flaghook");
  const workers = [];
  const d1 = (persist, ...args) => wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", config, ...args]);
  try {
    for (const [i, size] of sizes.entries()) {
      const persist = newPersistDir(`history-${label(size)}`);
      const p = PORT + 2 * i;
      const start = (db) =>
        startWorker({ label: `history-${label(size)}`, config, port: p, inspectorPort: p + 1, persistTo: persist, d1: db, proxy: false, readyPath: "/healthz", vars });
      progress(`history: ${label(size)}: creating the organisation and its key`);
      const setup = await start("flaghook");
      let org;
      try {
        org = await createOrganisation(setup.url);
      } finally {
        await setup.stop();
      }
      const t = Date.now();
      const columns = JSON.parse(d1(persist, "--json", "--command", "PRAGMA table_info(audit_entries)"))[0].results.map((c) => c.name);
      const sqlPath = join(persist, "rows.sql");
      writeFileSync(sqlPath, [auditRowsSql(org.orgId, 1, size, columns), projectedAuditSql(org.orgId), environmentHistorySql(org.orgId, ENVIRONMENT)].join("\n"));
      d1(persist, "--file", sqlPath, "--yes");
      rmSync(sqlPath);
      const counts = JSON.parse(d1(persist, "--json", "--command", `select (select count(*) from audit_entries) as entries, (select count(*) from flag_changes) as changes`))[0].results[0];
      progress(`history: ${label(size)}: ${counts.entries} audit entries, ${counts.changes} flag changes written in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      workers.push({ size, worker: await start(), org, persist, counts });
    }
    const rows = await measure(workers, samples);
    const target = rows.find((r) => r.target);
    const [small, large] = sizes.map(label);
    return {
      sizes,
      environment: { ...ENVIRONMENT, states: STATES, changes: STATES * ENVIRONMENT.versions },
      counts: workers.map((w) => ({ size: w.size, ...w.counts })),
      samples_per_query: samples,
      queries: rows,
      state_p50_ms_large: target[`p50_ms_${large}`],
      state_ratio_p50: target.ratio_p50,
      meets_target: target[`p50_ms_${large}`] < 100 && target.ratio_p50 <= 1.5,
      note: `state p50 at ${large} must be under 100 ms and within 1.5x of ${small}`,
    };
  } finally {
    for (const { worker, persist } of workers) {
      await worker.stop();
      rmSync(persist, { recursive: true, force: true });
    }
  }
}

async function timed(base, org, q) {
  const t = performance.now();
  const res = await fetch(base + q.path, { headers: org.auth });
  const text = await res.text();
  const ms = performance.now() - t;
  if (!res.ok) throw new Error(`${q.path} answered ${res.status}: ${text.slice(0, 300)}`);
  if (!q.check(JSON.parse(text))) throw new Error(`${q.path}: unexpected answer ${text.slice(0, 300)}`);
  return { ms, bytes: text.length };
}

/** Every query against every size, alternating sizes request by request; 2 warm-up rounds. */
async function measure(workers, samples) {
  const rows = [];
  for (const q of queries()) {
    const times = workers.map(() => []);
    let bytes = 0;
    for (let i = 0; i < samples + 2; i++) {
      for (const [wi, w] of workers.entries()) {
        const r = await timed(w.worker.url, w.org, q);
        bytes = r.bytes;
        if (i >= 2) times[wi].push(r.ms);
      }
    }
    const [a, b] = times.map((t) => ({ p50: round(percentile(t, 50), 1), p99: round(percentile(t, 99), 1) }));
    const [small, large] = workers.map((w) => label(w.size));
    const row = {
      query: q.name,
      target: q.target ?? false,
      response_kib: round(bytes / 1024, 0),
      [`p50_ms_${small}`]: a.p50,
      [`p99_ms_${small}`]: a.p99,
      [`p50_ms_${large}`]: b.p50,
      [`p99_ms_${large}`]: b.p99,
      ratio_p50: ratio(b.p50, a.p50),
      ratio_p99: ratio(b.p99, a.p99),
    };
    progress(`  history: ${q.name}: p50 ${a.p50} / ${b.p50} ms, p99 ${a.p99} / ${b.p99} ms (${small} / ${large}), ${row.response_kib} KiB`);
    rows.push(row);
  }
  return rows;
}
