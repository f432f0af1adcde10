// The bill: what one event costs on Cloudflare's list prices, with 3 webhooks delivered (1
// organisation + 2 environment webhooks on a real local receiver), for an event alone and for each
// event of a burst of 200, counted by a meter laid around the Worker (lib/meter-worker.js): D1 rows
// written and read from each statement's meta, D1 statements, queue operations, R2 operations,
// Worker requests; CPU from /proc; D1 bytes stored per event from the database's size; then where the
// bytes and the rows written go, per table and index. `--cost-baseline=<rev>` measures another
// version the same way in the same run (before / after).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, flaghookVars } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { snapshotDir } from "./lib/snapshot.mjs";
import { progress, round } from "./lib/stats.mjs";
import { cpuDelta, newPersistDir, port, ROOT, settle, sleep, startWorker } from "./lib/wrangler.mjs";

const PORT = port(31);
const RECEIVER_PORT = port(35);
const BURST = 200;
const ALONE = 3;

/** Cloudflare's list prices (US$ per million), as issue 16 gives them. */
export const PRICES = {
  d1_rows_written: 1.0,
  d1_rows_read: 0.001,
  queue_operations: 0.4,
  worker_requests: 0.3,
  worker_cpu_ms: 0.02,
  r2_class_a: 4.5,
  r2_class_b: 0.36,
};

export async function costBench({ quick, baseline }) {
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  const versions = [];
  try {
    versions.push(await measure({ label: "this", dir: snapshotDir(), receiver, quick, n: 0 }));
    if (baseline) {
      const dir = checkout(baseline);
      try {
        versions.push(await measure({ label: baseline, dir, receiver, quick, n: 1 }));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await receiver.close();
  }
  const [self] = versions;
  return { prices_usd_per_million: PRICES, burst: BURST, versions, usd_per_million_events: self.burst.usd_per_million_events, usd_per_million_events_alone: self.alone.usd_per_million_events };
}

/** A copy of `rev`'s Worker (src, migrations, configs) with node_modules linked. */
function checkout(rev) {
  const dir = mkdtempSync(join(tmpdir(), "flaghook-cost-baseline-"));
  execFileSync("sh", ["-c", `git archive ${rev} src migrations wrangler.toml tsconfig.json package.json | tar -x -C ${dir}`], { cwd: ROOT });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** The source in `dir` served through the meter: bench-meter.js beside its src/, a config naming it. */
function meteredConfig(dir) {
  copyFileSync(join(ROOT, "bench/lib/meter-worker.js"), join(dir, "bench-meter.js"));
  const toml = readFileSync(join(dir, "wrangler.toml"), "utf8").replace(/^main = .*$/m, 'main = "bench-meter.js"');
  writeFileSync(join(dir, "cost.wrangler.toml"), toml);
  return join(dir, "cost.wrangler.toml");
}

async function measure({ label, dir, receiver, quick, n }) {
  progress(`cost: ${label}: starting flaghook through the meter`);
  const persist = newPersistDir(`cost-${n}`);
  const worker = await startWorker({
    label: `cost-${n}`,
    config: meteredConfig(dir),
    port: PORT + 2 * n,
    inspectorPort: PORT + 2 * n + 1,
    persistTo: persist,
    d1: "flaghook",
    proxy: false,
    readyPath: "/healthz",
    vars: flaghookVars(),
  });
  try {
    const org = await createOrganisation(worker.url);
    const boxes = [`c${n}-org`, `c${n}-env-a`, `c${n}-env-b`];
    const hooks = [
      await createOrganisationWebhook(worker.url, org, `${receiver.url}/hooks/${boxes[0]}`),
      await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/${boxes[1]}`, "a"),
      await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/${boxes[2]}`, "b"),
    ];
    for (let i = 0; i < 3; i++) await receiver.setSecret(boxes[i], hooks[i].secret);
    await receiver.reset();
    let next = 0;
    const send = async (count, connections) => {
      const first = next;
      next += count;
      let i = first;
      const lane = async () => {
        while (i < first + count) {
          const res = await fetch(`${worker.url}/api/v1/events`, {
            method: "POST",
            headers: { "content-type": "application/json", ...org.auth },
            body: JSON.stringify(flagEvent(i++)),
          });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
        }
      };
      await Promise.all(Array.from({ length: connections }, lane));
      await delivered(receiver, next * 3);
      await quiet(worker);
    };
    // Warm up: the isolate, its caches, the receiver.
    await send(1, 1);
    await sleep(6000); // past the API key cache (5 s): an event alone pays its key read

    const alone = [];
    for (let k = 0; k < (quick ? 2 : ALONE); k++) {
      alone.push(await metered(worker, 1, () => send(1, 1)));
      await sleep(6000);
    }
    const before = await meter(worker);
    const burst = await metered(worker, BURST, () => send(BURST, 20));
    const sizeBefore = before.d1.size_after;
    burst.d1_bytes_per_event = round((burst.raw.d1.size_after - sizeBefore) / BURST, 0);
    // The minutely cron after the burst: sweeper, sealing the new entries, the rolling check; then an idle run.
    const sealing = await metered(worker, 1, () => scheduled(worker));
    const idleRun = await metered(worker, 1, () => scheduled(worker));
    // An event alone's CPU cannot be told from what the local runtime does meanwhile (queue timers,
    // the meter's polling: tens of ms a second); the burst's CPU per event stands for it.
    const single = median(alone);
    single.worker_cpu_ms_measured = single.worker_cpu_ms;
    single.worker_cpu_ms = burst.worker_cpu_ms;
    single.usd_per_million_events = price(single);
    const result = {
      label,
      alone: single,
      alone_runs: alone.map((a) => a.usd_per_million_events),
      burst,
      scheduled: { sealing_run: sealing, idle_run: idleRun },
    };
    await worker.stop();
    result.storage = storage(persist, next);
    progress(
      `  cost ${label}: alone ${result.alone.d1_rows_written} rows written, ${result.alone.d1_rows_read} read, $${result.alone.usd_per_million_events}/M;` +
        ` burst ${burst.d1_rows_written} written, ${burst.d1_rows_read} read, ${burst.d1_bytes_per_event} bytes, $${burst.usd_per_million_events}/M`,
    );
    return result;
  } finally {
    await worker.stop();
    rmSync(persist, { recursive: true, force: true });
  }
}

const meter = async (worker) => (await fetch(`${worker.url}/_meter`)).json();

async function scheduled(worker) {
  const res = await fetch(`${worker.url}/cdn-cgi/handler/scheduled`);
  await res.text();
  await quiet(worker);
}

/** Waits until the receiver has `count` bench deliveries. */
async function delivered(receiver, count) {
  const deadline = Date.now() + 120_000;
  while ((await receiver.counts()).matched < count) {
    if (Date.now() > deadline) throw new Error(`only ${(await receiver.counts()).matched} of ${count} deliveries arrived`);
    await sleep(50);
  }
}

/** Waits until the meter stops moving (the consumers' last writes after the deliveries) and the CPU is quiet. */
async function quiet(worker) {
  let last = JSON.stringify(await meter(worker));
  for (let still = 0; still < 3; ) {
    await sleep(300);
    const now = JSON.stringify(await meter(worker));
    still = now === last ? still + 1 : 0;
    last = now;
  }
  await settle([worker], 10_000);
}

/** Runs `work` (which brings `events` events all the way through), answers its counts per event. */
async function metered(worker, events, work) {
  await fetch(`${worker.url}/_meter/reset`, { method: "POST" });
  const cpu0 = worker.cpu();
  await work();
  const cpu = cpuDelta(cpu0, worker.cpu());
  const raw = await meter(worker);
  const per = (x) => round(x / events, 2);
  const out = {
    events,
    d1_rows_written: per(raw.d1.rows_written),
    d1_rows_read: per(raw.d1.rows_read),
    d1_statements: per(raw.d1.statements),
    queue_operations: per(raw.queues.written + raw.queues.read + raw.queues.deleted),
    queue_messages: { written: per(raw.queues.written), read: per(raw.queues.read), deleted: per(raw.queues.deleted) },
    r2_class_a: per(raw.r2.class_a),
    r2_class_b: per(raw.r2.class_b),
    worker_requests: per(raw.requests.fetch + raw.requests.queue + raw.requests.scheduled),
    invocations: { fetch: per(raw.requests.fetch), queue: per(raw.requests.queue), scheduled: per(raw.requests.scheduled) },
    worker_cpu_ms: per(cpu.worker),
    raw,
  };
  out.usd_per_million_events = price(out);
  return out;
}

export function price(x) {
  const usd =
    x.d1_rows_written * PRICES.d1_rows_written +
    x.d1_rows_read * PRICES.d1_rows_read +
    x.queue_operations * PRICES.queue_operations +
    x.worker_requests * PRICES.worker_requests +
    x.worker_cpu_ms * PRICES.worker_cpu_ms +
    x.r2_class_a * PRICES.r2_class_a +
    x.r2_class_b * PRICES.r2_class_b;
  return round(usd, 2);
}

/** Per field, the median of the runs (the first run's raw counts kept). */
function median(runs) {
  const mid = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = { ...runs[0] };
  for (const k of Object.keys(out)) if (typeof out[k] === "number") out[k] = mid(runs.map((r) => r[k]));
  out.usd_per_million_events = price(out);
  return out;
}

/**
 * Bytes per table and index of the local D1 file (SQLite's dbstat, read by Python's sqlite3 once
 * the Worker has stopped), and per event recorded.
 */
function storage(persist, events) {
  const file = findSqlite(join(persist, "v3/d1"));
  if (!file) return null;
  const script = `
import json, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
try:
    rows = db.execute("select name, sum(pgsize) from dbstat group by name order by 2 desc").fetchall()
except sqlite3.Error as e:
    rows = []
counts = {}
for (t,) in db.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"):
    try:
        counts[t] = db.execute(f'select count(*) from "{t}"').fetchone()[0]
    except sqlite3.Error:
        pass
print(json.dumps({"bytes": rows, "rows": counts, "page_size": db.execute("pragma page_size").fetchone()[0], "pages": db.execute("pragma page_count").fetchone()[0]}))
`;
  try {
    const out = JSON.parse(execFileSync("python3", ["-c", script, file], { encoding: "utf8" }));
    return {
      events,
      database_bytes: out.page_size * out.pages,
      bytes_per_event: Object.fromEntries(out.bytes.map(([name, bytes]) => [name, round(bytes / events, 0)])),
      rows: out.rows,
    };
  } catch (err) {
    return { error: String(err) };
  }
}

function findSqlite(dir) {
  let found = null;
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".sqlite") && !entry.name.includes("metadata")) found = path;
    }
  };
  try {
    walk(dir);
  } catch {
    return null;
  }
  return found;
}
