// The signed audit log (issue 11), three targets:
// - inclusion proofs: p50 of GET /api/v1/audit/{seq}/proof at 1M entries within 2x of at 10k
//   (100k with --quick), requests alternating between the two sizes, every proof checked here by
//   RFC 9162's algorithm against the checkpoint's root;
// - sealing: Worker CPU of the scheduled run that seals 10,000 new entries (under 2 s), beside a run
//   with nothing to seal; and the runs that seal the 1M log, 50,000 entries each;
// - ingest with sealing on (AUDIT_SIGNING_KEY set) against off, both Workers up at once and taking
//   turns at slices of autocannon -c32, the scheduled handler triggered on the loaded Worker once in
//   every slice (every 4 s: 15 times as often as the production cron, so each run's fixed work, the
//   checkpoint and the rolling check of 1,024 entries, weighs 15 times more): B/A within 10%.
import autocannon from "autocannon";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { auditDatabase, label } from "./audit.mjs";
import { api, createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, flaghookVars } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { percentile, progress, ratio, round } from "./lib/stats.mjs";
import { cpuDelta, port, settle, sleep, startWorker } from "./lib/wrangler.mjs";

const PROOF_PORT = port(71);
const AB_PORT = port(75);
const RECEIVER_PORT = port(79);

export async function logBench({ quick }) {
  const proofs = await proofBench({ quick });
  const ingest = await sealingAB({ quick });
  return { ...proofs, ingest };
}

const seal = async (worker) => {
  const cpu0 = worker.cpu();
  const t = performance.now();
  const res = await fetch(`${worker.url}/cdn-cgi/handler/scheduled`);
  await res.text();
  return { wall_ms: round(performance.now() - t, 0), cpu_ms: round(cpuDelta(cpu0, worker.cpu()).worker, 0) };
};

const latestSize = async (worker, org) => {
  const res = await fetch(`${worker.url}/api/v1/audit/checkpoints/latest`, { headers: org.auth });
  return res.ok ? (await res.json()).tree_size : 0;
};

async function proofBench({ quick }) {
  const sizes = quick ? [10_000, 100_000] : [10_000, 1_000_000];
  const samples = quick ? 40 : 200;
  const vars = flaghookVars();
  const logs = [];
  try {
    for (const [i, size] of sizes.entries()) {
      const db = await auditDatabase({ size, port: PROOF_PORT + 2 * i, vars, label: `log-${label(size)}` });
      logs.push({ ...db, worker: await db.start(), runs: [] });
    }
    // Seal each log: the first run of the small one seals its 10,000 entries at once.
    for (const log of logs) {
      while ((await latestSize(log.worker, log.org)) < log.entries) {
        const before = await latestSize(log.worker, log.org);
        const run = await seal(log.worker);
        run.leaves = (await latestSize(log.worker, log.org)) - before;
        log.runs.push(run);
        progress(`  log ${label(log.size)}: sealed ${run.leaves} entries in ${run.wall_ms} ms, Worker CPU ${run.cpu_ms} ms`);
        if (!run.leaves) throw new Error(`sealing the ${label(log.size)} log made no progress`);
      }
      log.idle = await seal(log.worker);
      progress(`  log ${label(log.size)}: a scheduled run with nothing to seal: ${log.idle.wall_ms} ms, Worker CPU ${log.idle.cpu_ms} ms`);
    }
    const roots = await Promise.all(logs.map(async (l) => (await api(l.worker.url, "/api/v1/audit/checkpoints/latest", { headers: l.org.auth })).root_hash));
    const inclusion = await alternate(logs, samples, async (log, i) => {
      const seq = 1 + ((i * 7919 + 13) % log.entries);
      const t = performance.now();
      const proof = await api(log.worker.url, `/api/v1/audit/${seq}/proof`, { headers: log.org.auth });
      const ms = performance.now() - t;
      if (!verifyInclusion(seq - 1, proof.tree_size, leafHash(proof.leaf), proof.proof.map((h) => Buffer.from(h, "base64")), roots[logs.indexOf(log)])) {
        throw new Error(`the proof of entry ${seq} of the ${label(log.size)} log does not verify`);
      }
      return ms;
    });
    const consistency = await alternate(logs, Math.ceil(samples / 4), async (log, i) => {
      const from = 1 + ((i * 104729) % (log.entries - 1));
      const t = performance.now();
      await api(log.worker.url, `/api/v1/audit/consistency?from=${from}`, { headers: log.org.auth });
      return performance.now() - t;
    });
    const [small, large] = logs;
    const sealed10k = small.runs[0];
    const row = (name, times) => {
      const [a, b] = times.map((t) => ({ p50: round(percentile(t, 50), 1), p99: round(percentile(t, 99), 1) }));
      return { query: name, [`p50_ms_${label(small.size)}`]: a.p50, [`p99_ms_${label(small.size)}`]: a.p99, [`p50_ms_${label(large.size)}`]: b.p50, [`p99_ms_${label(large.size)}`]: b.p99, ratio_p50: ratio(b.p50, a.p50), ratio_p99: ratio(b.p99, a.p99) };
    };
    const proofsTable = [row("inclusion proof (random entry, latest checkpoint)", inclusion), row("consistency proof (random size to latest)", consistency)];
    for (const r of proofsTable) progress(`  log: ${r.query}: p50 ${Object.values(r)[1]} / ${Object.values(r)[3]} ms, ratio ${r.ratio_p50}`);
    const largeCpu = large.runs.reduce((a, r) => a + r.cpu_ms, 0);
    return {
      sizes,
      samples,
      proofs: proofsTable,
      sealing: {
        first_run_of_small_log: { leaves: sealed10k.leaves, ...sealed10k },
        idle_run: small.idle,
        large_log: { leaves: large.entries, runs: large.runs.length, cpu_ms: largeCpu, wall_ms: large.runs.reduce((a, r) => a + r.wall_ms, 0), leaves_per_cpu_s: round(large.entries / (largeCpu / 1000), 0) },
      },
    };
  } finally {
    for (const log of logs) {
      await log.worker.stop();
      rmSync(log.persist, { recursive: true, force: true });
    }
  }
}

/** `measure(log, i)` for every log in turn, `n` times after 3 warm-up rounds; times per log. */
async function alternate(logs, n, measure) {
  const times = logs.map(() => []);
  for (let i = 0; i < n + 3; i++) {
    for (const [li, log] of logs.entries()) {
      const ms = await measure(log, i);
      if (i >= 3) times[li].push(ms);
    }
  }
  return times;
}

// RFC 6962 hashing and RFC 9162 2.1.3.2 inclusion verification, in Node, for checking the answers.
const sha256 = (...parts) => parts.reduce((h, p) => h.update(p), createHash("sha256")).digest();
const leafHash = (leaf) => sha256(Buffer.from([0]), Buffer.from(leaf, "utf8"));
function verifyInclusion(index, size, hash, proof, rootBase64) {
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha256(Buffer.from([1]), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = sha256(Buffer.from([1]), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.toString("base64") === rootBase64;
}

/** Ingest A/B: sealing off (A) and on (B), the scheduled handler triggered on the loaded Worker TRIGGER_MS into each slice. */
export async function sealingAB({ quick }) {
  const rounds = quick ? 2 : 6;
  const slice = 4;
  const TRIGGER_MS = 2000;
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  const live = [];
  try {
    for (const [i, sealing] of [false, true].entries()) {
      const p = AB_PORT + 2 * i;
      const name = sealing ? "sealing on" : "sealing off";
      progress(`log: starting flaghook, ${name}`);
      const worker = await startWorker({ label: `log-ingest-${sealing ? "on" : "off"}`, config: workerConfig("flaghook"), port: p, inspectorPort: p + 1, d1: "flaghook", proxy: false, readyPath: "/healthz", vars: flaghookVars({ sealing }) });
      const t = { name, worker, org: null, rates: [], cpu: [] };
      live.push(t);
      t.org = await createOrganisation(worker.url);
      const box = (k) => `log-${i}-${k}`;
      const hooks = [
        [box("org"), await createOrganisationWebhook(worker.url, t.org, `${receiver.url}/hooks/${box("org")}`)],
        [box("a"), await createEnvironmentWebhook(worker.url, t.org, ENVIRONMENT.id, `${receiver.url}/hooks/${box("a")}`, "a")],
        [box("b"), await createEnvironmentWebhook(worker.url, t.org, ENVIRONMENT.id, `${receiver.url}/hooks/${box("b")}`, "b")],
      ];
      for (const [mailbox, hook] of hooks) await receiver.setSecret(mailbox, hook.secret);
    }
    const body = JSON.stringify(flagEvent(0));
    const load = async (t, seconds) => {
      const trigger = seconds * 1000 > TRIGGER_MS ? sleep(TRIGGER_MS).then(() => fetch(`${t.worker.url}/cdn-cgi/handler/scheduled`).then((r) => r.text())) : null;
      const result = await autocannon({ url: `${t.worker.url}/api/v1/events`, method: "POST", headers: { "content-type": "application/json", ...t.org.auth }, body, connections: 32, duration: seconds });
      await trigger;
      return result;
    };
    for (const t of live) await load(t, 1);
    for (let r = 0; r < rounds; r++) {
      for (const t of r % 2 ? [...live].reverse() : live) {
        await settle(live.map((x) => x.worker));
        const cpu0 = t.worker.cpu();
        const result = await load(t, slice);
        const cpu = cpuDelta(cpu0, t.worker.cpu());
        t.rates.push(Math.round(result.requests.total / slice));
        t.cpu.push(round(cpu.worker / result.requests.total, 2));
        progress(`  log: ingest, ${t.name}, round ${r + 1}: ${t.rates.at(-1)} req/s`);
      }
    }
    // What sealing did meanwhile: the "on" Worker's log is sealed up to (nearly) everything ingested.
    const [off, on] = live;
    const sealed = await latestSize(on.worker, on.org);
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      rounds,
      slice_s: slice,
      scheduled_every_ms: TRIGGER_MS,
      off: { req_per_s: off.rates, cpu_ms_per_req: off.cpu, mean: round(mean(off.rates), 0) },
      on: { req_per_s: on.rates, cpu_ms_per_req: on.cpu, mean: round(mean(on.rates), 0), sealed_entries: sealed },
      on_vs_off: ratio(mean(on.rates), mean(off.rates)),
      per_round: on.rates.map((x, i) => ratio(x, off.rates[i])),
    };
  } finally {
    for (const t of live) await t.worker.stop();
    await receiver.close();
  }
}
