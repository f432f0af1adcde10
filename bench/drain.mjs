// Drain: N events (10,000; 1,000 with --quick), each delivered to 3 webhooks (1 organisation,
// 2 environment) on a real local receiver that verifies every signature. Measures the time until
// every delivery has arrived, deliveries/s, latency from the ingest request to receipt, lost and
// duplicate deliveries, and the runtime's CPU per event for the whole pipeline.
import { api, createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, startFlaghook } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { progress, round, summary } from "./lib/stats.mjs";
import { cpuDelta, port, sleep } from "./lib/wrangler.mjs";

const PORT = port(21);
const RECEIVER_PORT = port(52);
const MAILBOXES = ["org", "env-a", "env-b"];
const BATCH = 100;
const IN_FLIGHT = 4;

export async function drainBench({ quick, proxy = "off" }) {
  const events = quick ? 1_000 : 10_000;
  const expected = events * MAILBOXES.length;
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  progress(`drain: starting flaghook (inspector proxy ${proxy})`);
  const worker = await startFlaghook({ label: `drain-proxy-${proxy}`, port: PORT, proxy });
  try {
    const org = await createOrganisation(worker.url);
    const hooks = [
      await createOrganisationWebhook(worker.url, org, `${receiver.url}/hooks/org`),
      await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/env-a`, "a"),
      await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/env-b`, "b"),
    ];
    for (let i = 0; i < hooks.length; i++) await receiver.setSecret(MAILBOXES[i], hooks[i].secret);
    await sleep(2000); // let the webhooks' own system events through before the clock starts

    // Ingest every event through the batch endpoint, IN_FLIGHT requests at a time.
    const sentAt = new Float64Array(events);
    const cpu0 = worker.cpu();
    const started = Date.now();
    let next = 0;
    let ingestErrors = 0;
    const ingestLatency = [];
    const sender = async () => {
      while (next < events) {
        const from = next;
        next += BATCH;
        const batch = [];
        for (let n = from; n < Math.min(from + BATCH, events); n++) batch.push(flagEvent(n));
        const t = Date.now();
        for (let n = from; n < from + batch.length; n++) sentAt[n] = t;
        try {
          const res = await api(worker.url, "/api/v1/events/batch", { method: "POST", headers: org.auth, json: { events: batch } });
          if (res.results.length !== batch.length) throw new Error(`${res.results.length} of ${batch.length} accepted`);
        } catch (err) {
          ingestErrors++;
          progress(`  ingest batch from ${from} failed: ${err.message}`);
        }
        ingestLatency.push(Date.now() - t);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
    const ingestedAt = Date.now();
    progress(`  drain: ${events} events accepted in ${((ingestedAt - started) / 1000).toFixed(1)} s; waiting for ${expected} deliveries`);

    // Wait for every delivery; give up after a stall or the overall limit.
    const limitMs = quick ? 180_000 : 600_000;
    const stallMs = 60_000;
    let last = { matched: 0, at: Date.now() };
    let lastPrint = 0;
    let counts;
    for (;;) {
      counts = await receiver.counts();
      const now = Date.now();
      if (counts.matched > last.matched) last = { matched: counts.matched, at: now };
      if (now - lastPrint >= 2000) {
        lastPrint = now;
        progress(`  drain: ${counts.matched}/${expected} delivered (${Math.round((counts.matched * 1000) / (now - started))}/s so far)`);
      }
      if (counts.matched >= expected) break;
      if (now - last.at > stallMs || now - started > limitMs) {
        progress(`  drain: FAILED to complete: ${counts.matched}/${expected} after ${((now - started) / 1000).toFixed(0)} s (no progress for ${((now - last.at) / 1000).toFixed(0)} s)`);
        break;
      }
      await sleep(200);
    }
    const cpu = cpuDelta(cpu0, worker.cpu());
    await sleep(3000); // late duplicates
    const rec = await receiver.records();

    // First receipt per webhook-id; lost and extra per (event, webhook).
    const first = new Map();
    let duplicates = 0;
    let badSignatures = 0;
    let others = 0;
    for (let i = 0; i < rec.webhookId.length; i++) {
      if (!rec.signatureOk[i]) badSignatures++;
      if (rec.event[i] < 0 || rec.event[i] >= events) {
        others++;
        continue;
      }
      if (first.has(rec.webhookId[i])) {
        duplicates++;
        continue;
      }
      first.set(rec.webhookId[i], i);
    }
    const perPair = new Map();
    const latencies = [];
    let lastReceipt = 0;
    for (const i of first.values()) {
      const key = `${rec.event[i]}:${rec.mailbox[i]}`;
      perPair.set(key, (perPair.get(key) ?? 0) + 1);
      latencies.push(rec.receivedAt[i] - sentAt[rec.event[i]]);
      lastReceipt = Math.max(lastReceipt, rec.receivedAt[i]);
    }
    let lost = 0;
    let extra = 0;
    for (let n = 0; n < events; n++) {
      for (const mailbox of MAILBOXES) {
        const c = perPair.get(`${n}:${mailbox}`) ?? 0;
        if (c === 0) lost++;
        else extra += c - 1;
      }
    }
    const complete = lost === 0;
    const totalS = ((complete ? lastReceipt : Date.now()) - started) / 1000;
    const result = {
      proxy,
      events,
      webhooks: MAILBOXES.length,
      expected_deliveries: expected,
      received_deliveries: first.size,
      complete,
      time_to_all_s: complete ? round(totalS, 1) : null,
      deliveries_per_s: round(first.size / totalS, 0),
      ingest_s: round((ingestedAt - started) / 1000, 1),
      ingest_events_per_s: round((events * 1000) / (ingestedAt - started), 0),
      ingest_batch_latency_ms: summary(ingestLatency),
      ingest_errors: ingestErrors,
      end_to_end_ms: summary(latencies),
      lost,
      duplicates,
      extra_deliveries_same_event_and_webhook: extra,
      signatures_failed: badSignatures,
      other_deliveries: others,
      cpu_ms_per_event: {
        worker: round(cpu.worker / events, 2),
        proxy_workerd: round(cpu.proxy / events, 2),
        wrangler_node: round(cpu.wrangler / events, 2),
      },
      cpu_ms_per_delivery_worker: round(cpu.worker / Math.max(1, first.size), 2),
    };
    result.meets_target = complete && lost === 0 && result.deliveries_per_s > 1000;
    progress(
      `  drain: ${first.size}/${expected} in ${totalS.toFixed(1)} s = ${result.deliveries_per_s}/s, e2e p50 ${result.end_to_end_ms.p50} ms`,
      `p99 ${result.end_to_end_ms.p99} ms, lost ${lost}, duplicates ${duplicates}, bad signatures ${badSignatures}`,
    );
    if (!complete) {
      result.failure = `only ${first.size} of ${expected} deliveries arrived; see ${worker.logPath}`;
      result.diagnosis = await diagnose(worker.url, org, hooks);
      progress(`  drain: where the missing deliveries are: ${JSON.stringify(result.diagnosis)}`);
    }
    return result;
  } finally {
    await worker.stop();
    await receiver.close();
  }
}

/** After a failed drain: how many events were recorded, and each webhook's deliveries by status. */
async function diagnose(base, org, hooks) {
  const out = {};
  try {
    const res = await fetch(`${base}/api/v1/audit/export?format=ndjson&project=12`, { headers: org.auth });
    out.events_recorded = (await res.text()).split("\n").filter((l) => l.includes("bench_")).length;
    for (const [i, hook] of hooks.entries()) {
      const statuses = {};
      const errors = new Set();
      for (const status of ["pending", "failed", "delivered"]) {
        let count = 0;
        let cursor = null;
        do {
          const qs = `status=${status}&page_size=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
          const path = hook.scope === "organisation" ? `/api/v1/organisations/${org.orgId}` : `/api/v1/environments/${hook.environment}`;
          const page = await api(base, `${path}/webhooks/${hook.id}/deliveries?${qs}`, { headers: org.auth });
          count += page.results.length;
          for (const d of page.results) if (d.last_error && errors.size < 3) errors.add(d.last_error);
          cursor = page.next;
        } while (cursor);
        statuses[status] = count;
      }
      out[MAILBOXES[i]] = { ...statuses, sample_errors: [...errors] };
    }
  } catch (err) {
    out.error = String(err);
  }
  return out;
}
