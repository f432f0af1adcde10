// Delivery health: GET .../webhooks/{id}/stats for a webhook with 10k attempts and for one with 1M
// (100k with --quick), p50/p99 and their ratio (target: 1M within 1.5x of 10k). Each size has its
// own local D1, written by SQL while its Worker is stopped: the webhook's deliveries and attempts
// over the last 30 days (one attempt each, every 20th a 500), 40 deliveries pending, and the hourly
// roll-up those attempts make, summed by SQL as the consumer would have written it. Both Workers
// then run and the requests alternate between them.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { label } from "./audit.mjs";
import { api, createOrganisation, flaghookVars } from "./lib/flaghook.mjs";
import { percentile, progress, ratio, round } from "./lib/stats.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { newPersistDir, port, startWorker, wranglerSync } from "./lib/wrangler.mjs";

const PORT = port(45);
const ENVIRONMENT = 23;
const PENDING = 40;
const DAY = 86_400_000;
/** The latency buckets' upper bounds, as src/domain/health.ts has them. */
const BOUNDS = [10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2500, 5000, 10000];

/** SQL writing `size` delivered-or-failed deliveries with one attempt each over 30 days, pending ones, and their roll-up. */
export function healthRowsSql(webhookId, orgId, size, now) {
  const step = Math.floor((30 * DAY) / size);
  const created = `(${now} - (${size} - n) * ${step} - 60000)`;
  const failed = "(n % 20 = 0)";
  const duration = "(5 + (n * 7919) % 700)";
  const latency = BOUNDS.map((b, i) => `sum(duration_ms > ${i ? BOUNDS[i - 1] : -1} and duration_ms <= ${b})`).join(", ");
  return `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${size})
INSERT INTO deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, last_status_code, last_error, kind, created_at, updated_at)
SELECT 'dlv_bench' || n, ${orgId}, '${webhookId}', 'FLAG_UPDATED', '{"data": {"n": ' || n || '}, "event_type": "FLAG_UPDATED"}',
  case when ${failed} then 'failed' else 'delivered' end, 1, 0, null,
  case when ${failed} then 500 else 200 end, case when ${failed} then 'HTTP 500 Internal Server Error (empty response)' end, 'event', ${created}, ${created} + 100
FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${size})
INSERT INTO attempts (delivery_id, number, attempted_at, status_code, duration_ms, error, response_body)
SELECT 'dlv_bench' || n, 1, ${created} + 50, case when ${failed} then 500 else 200 end, ${duration},
  case when ${failed} then 'HTTP 500 Internal Server Error (empty response)' end, 'ok'
FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${PENDING})
INSERT INTO deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, kind, created_at, updated_at)
SELECT 'dlv_benchpending' || n, ${orgId}, '${webhookId}', 'FLAG_UPDATED', '{}', 'pending', 0, 0, ${now} + 3600000, 'event', ${now} - n * 1000, ${now} - n * 1000
FROM g;
INSERT INTO webhook_health (webhook_id, hour, delivered, failed, attempts, attempts_failed, attempts_refused,
  ${BOUNDS.map((b) => `le_${b}`).join(", ")}, gt_10000, last_success_at, last_failure_at, last_failure)
SELECT d.webhook_id, (a.attempted_at / 3600000) * 3600000 AS hour, sum(a.status_code = 200), sum(a.status_code = 500), count(*),
  sum(a.status_code != 200), 0, ${latency}, sum(duration_ms > 10000),
  max(case when a.status_code = 200 then a.attempted_at end), max(case when a.status_code = 500 then a.attempted_at end),
  max(case when a.status_code = 500 then a.error end)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.webhook_id = '${webhookId}'
GROUP BY d.webhook_id, hour;`;
}

/** A local D1 holding one organisation whose environment webhook made `size` attempts; `start()` serves it. */
async function healthDatabase({ size, port, vars }) {
  const config = workerConfig("flaghook");
  const name = `health-${label(size)}`;
  const persist = newPersistDir(name);
  const start = (d1) => startWorker({ label: name, config, port, inspectorPort: port + 1, persistTo: persist, d1, proxy: false, readyPath: "/healthz", vars });
  const setup = await start("flaghook");
  let org;
  let hook;
  try {
    org = await createOrganisation(setup.url);
    hook = await api(setup.url, `/api/v1/environments/${ENVIRONMENT}/webhooks`, { method: "POST", headers: org.auth, json: { url: "https://hooks.example.com/bench", name: "bench" } });
  } finally {
    await setup.stop();
  }
  const t = Date.now();
  const sqlPath = join(persist, "health.sql");
  writeFileSync(sqlPath, healthRowsSql(hook.id, org.orgId, size, Date.now()));
  wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", config, "--file", sqlPath, "--yes"]);
  rmSync(sqlPath);
  progress(`${name}: ${size} deliveries and attempts and their roll-up written in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return { size, org, hook, persist, start: () => start() };
}

export async function healthBench({ quick }) {
  const sizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
  const samples = quick ? 40 : 200;
  const vars = flaghookVars();
  const workers = [];
  try {
    for (const [i, size] of sizes.entries()) {
      const db = await healthDatabase({ size, port: PORT + 2 * i, vars });
      workers.push({ ...db, worker: await db.start() });
    }
    // What each answers: the same shape, the figures of its own size.
    for (const w of workers) {
      const s = await api(w.worker.url, `/api/v1/environments/${ENVIRONMENT}/webhooks/${w.hook.id}/stats?window=7d`, { headers: w.org.auth });
      progress(`  health: ${label(w.size)}: 7d: ${s.attempts} attempts, success rate ${s.success_rate}, p50 ${s.p50_ms} ms, p95 ${s.p95_ms} ms, ${s.pending} pending`);
      if (s.pending !== PENDING || s.attempts < 1) throw new Error(`stats of the ${label(w.size)} webhook look wrong: ${JSON.stringify(s).slice(0, 300)}`);
    }
    const rows = [];
    for (const window of ["24h", "7d"]) {
      const times = workers.map(() => []);
      for (let i = 0; i < samples + 3; i++) {
        for (const [wi, w] of workers.entries()) {
          const t = performance.now();
          const res = await fetch(`${w.worker.url}/api/v1/environments/${ENVIRONMENT}/webhooks/${w.hook.id}/stats?window=${window}`, { headers: w.org.auth });
          await res.json();
          if (!res.ok) throw new Error(`stats answered ${res.status}`);
          if (i >= 3) times[wi].push(performance.now() - t);
        }
      }
      const [a, b] = times.map((t) => ({ p50: round(percentile(t, 50), 1), p99: round(percentile(t, 99), 1) }));
      const [small, large] = sizes.map(label);
      const row = {
        query: `GET .../stats?window=${window}`,
        [`p50_ms_${small}`]: a.p50,
        [`p99_ms_${small}`]: a.p99,
        [`p50_ms_${large}`]: b.p50,
        [`p99_ms_${large}`]: b.p99,
        ratio_p50: ratio(b.p50, a.p50),
        ratio_p99: ratio(b.p99, a.p99),
      };
      progress(`  health: stats ${window}: p50 ${a.p50} / ${b.p50} ms, p99 ${a.p99} / ${b.p99} ms (${small} / ${large}), ratio p50 ${row.ratio_p50}`);
      rows.push(row);
    }
    const worst = Math.max(...rows.map((r) => r.ratio_p50 ?? Infinity));
    return { sizes, samples, stats: rows, worst_ratio_p50: worst, meets_target: worst <= 1.5 };
  } finally {
    for (const { worker, persist } of workers) {
      await worker?.stop();
      rmSync(persist, { recursive: true, force: true });
    }
  }
}
