// Fan-out: one event to 500 environment webhooks (100 with --quick), each its own mailbox and
// secret on the receiver. Repeated a few times; each round waits for every delivery.
import { api, createEnvironmentWebhook, createOrganisation, ENVIRONMENT, flagEvent, startFlaghook } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { percentile, progress, round } from "./lib/stats.mjs";
import { cpuDelta, port, sleep } from "./lib/wrangler.mjs";

const PORT = port(31);
const RECEIVER_PORT = port(53);

export async function fanoutBench({ quick, proxy = "off" }) {
  const webhooks = quick ? 100 : 500;
  const rounds = 3;
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  progress(`fan-out: starting flaghook (inspector proxy ${proxy})`);
  // One environment takes 50 webhooks by default (MAX_WEBHOOKS_PER_ENVIRONMENT); this bench measures 500.
  const worker = await startFlaghook({ label: `fanout-proxy-${proxy}`, port: PORT, proxy, vars: { MAX_WEBHOOKS_PER_ENVIRONMENT: String(webhooks) } });
  try {
    const org = await createOrganisation(worker.url);
    let made = 0;
    const create = async () => {
      while (made < webhooks) {
        const i = made++;
        const hook = await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/f${i}`, `fan-out ${i}`);
        await receiver.setSecret(`f${i}`, hook.secret);
      }
    };
    const t = Date.now();
    await Promise.all(Array.from({ length: 8 }, create));
    progress(`  fan-out: ${webhooks} webhooks created in ${((Date.now() - t) / 1000).toFixed(1)} s; waiting for their audit entries`);
    await waitForSystemEntries(worker.url, org, webhooks);
    await sleep(1000);

    const results = [];
    for (let r = 0; r < rounds; r++) {
      const cpu0 = worker.cpu();
      const t0 = Date.now();
      await api(worker.url, "/api/v1/events", { method: "POST", headers: org.auth, json: flagEvent(r) });
      const acceptedMs = Date.now() - t0;
      let counts;
      for (;;) {
        counts = await receiver.counts();
        if (counts.matched >= webhooks * (r + 1) || Date.now() - t0 > 120_000) break;
        await sleep(20);
      }
      const cpu = cpuDelta(cpu0, worker.cpu());
      await sleep(1000);
      const rec = await receiver.records();
      const seen = new Map();
      let duplicates = 0;
      let badSignatures = 0;
      for (let i = 0; i < rec.webhookId.length; i++) {
        if (rec.event[i] !== r) continue;
        if (!rec.signatureOk[i]) badSignatures++;
        if (seen.has(rec.mailbox[i])) duplicates++;
        else seen.set(rec.mailbox[i], rec.receivedAt[i] - t0);
      }
      const latencies = [...seen.values()];
      const round_ = {
        accepted_ms: acceptedMs,
        delivered: seen.size,
        lost: webhooks - seen.size,
        duplicates,
        signatures_failed: badSignatures,
        first_ms: latencies.length ? Math.min(...latencies) : null,
        p50_ms: percentile(latencies, 50),
        p99_ms: percentile(latencies, 99),
        all_ms: seen.size === webhooks ? Math.max(...latencies) : null,
        worker_cpu_ms: round(cpu.worker, 0),
      };
      progress(`  fan-out round ${r + 1}: ${seen.size}/${webhooks} in ${round_.all_ms ?? "(incomplete)"} ms, p50 ${round_.p50_ms} ms, p99 ${round_.p99_ms} ms`);
      results.push(round_);
    }
    const median = (key) => percentile(results.map((x) => x[key]).filter((x) => x != null), 50);
    return {
      proxy,
      webhooks,
      rounds: results,
      median_all_ms: median("all_ms"),
      median_p50_ms: median("p50_ms"),
      median_p99_ms: median("p99_ms"),
      deliveries_per_s: median("all_ms") ? round((webhooks * 1000) / median("all_ms"), 0) : null,
      lost: results.reduce((a, x) => a + x.lost, 0),
      duplicates: results.reduce((a, x) => a + x.duplicates, 0),
      signatures_failed: results.reduce((a, x) => a + x.signatures_failed, 0),
      worker_cpu_ms_per_delivery: round(median("worker_cpu_ms") / webhooks, 2),
    };
  } finally {
    await worker.stop();
    await receiver.close();
  }
}

/** Webhook creation is audited through the ingest queue; wait until those entries are recorded. */
async function waitForSystemEntries(base, org, count) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/api/v1/audit/export?format=ndjson&is_system_event=true`, { headers: org.auth });
    const lines = (await res.text()).split("\n").filter(Boolean).length;
    if (lines >= count) return;
    await sleep(500);
  }
  progress("  fan-out: warning: not every webhook's audit entry was recorded within 120 s");
}
