// Ingest: sustained accepted requests/s and latency under autocannon -c32 for flaghook (1
// organisation and 2 environment webhooks subscribed, delivering to a live receiver) beside a bare
// hello-world Hono Worker and a one-D1-insert Worker, all under the same `wrangler dev`, with the
// inspector proxy off and on. CPU per request is read from /proc for each process of the runtime.
//
// The machine is shared and noisy, so within a mode every Worker runs at once and the load moves
// between them in short slices, in rotating order, after the previous Worker's queues have gone
// quiet: each Worker sees the same background load, and the ratios are taken from the same minutes.
//
// Breakdown (proxy off): flaghook's accept path alone (its queue consumers removed from the
// config) and flaghook with consumers but no webhooks, to show where ingest throughput goes.
import autocannon from "autocannon";
import { createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, flaghookVars } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { percentile, progress, ratio, round } from "./lib/stats.mjs";
import { workerConfig } from "./lib/snapshot.mjs";
import { cpuDelta, port, settle, startWorker } from "./lib/wrangler.mjs";

const CONNECTIONS = 32;
const RECEIVER_PORT = port(51);
const TARGETS = [
  { name: "hello", port: port(11) },
  { name: "d1-insert", port: port(13), d1: "bench-d1-insert" },
  { name: "flaghook", flaghook: { consumers: true, webhooks: true }, port: port(15) },
];
const BREAKDOWN = [
  { name: "flaghook accept path only", flaghook: { consumers: false, webhooks: false }, port: port(17) },
  { name: "flaghook, no webhooks", flaghook: { consumers: true, webhooks: false }, port: port(19) },
];

export async function ingestBench({ quick, modes = ["off", "on"], breakdown = true }) {
  const rounds = 3;
  const slice = quick ? 2 : 4;
  const body = JSON.stringify(flagEvent(0));
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  const runs = [];
  const ratios = {};
  try {
    for (const mode of modes) {
      const targets = mode === "off" && breakdown ? [...TARGETS, ...BREAKDOWN] : TARGETS;
      const live = [];
      try {
        for (const target of targets) live.push(await start(target, mode, receiver));
        for (const t of live) await load({ ...t, body, duration: 1 }); // warm up
        const perRound = [];
        for (let r = 0; r < rounds; r++) {
          const round_ = {};
          for (let k = 0; k < live.length; k++) {
            const t = live[(k + r) % live.length];
            if (!(await settle(live.map((x) => x.worker)))) progress("  warning: the Workers did not go quiet within 60 s");
            const cpu0 = t.worker.cpu();
            const result = await load({ ...t, body, duration: slice });
            const cpu = cpuDelta(cpu0, t.worker.cpu());
            t.slices.push({ ...result, cpu });
            round_[t.target.name] = result.ok / result.seconds;
            progress(`  ingest proxy ${mode}, round ${r + 1}: ${t.target.name}: ${Math.round(round_[t.target.name])} req/s`);
          }
          perRound.push(round_);
        }
        for (const t of live) runs.push(summarise(t, mode));
        const get = (name) => runs.find((x) => x.target === name && x.proxy === mode)?.req_per_s;
        const spread = (name, base) => {
          const rs = perRound.map((x) => x[name] / x[base]);
          return [round(Math.min(...rs), 2), round(Math.max(...rs), 2)];
        };
        ratios[`proxy_${mode}`] = {
          flaghook_vs_hello: ratio(get("flaghook"), get("hello")),
          flaghook_vs_d1_insert: ratio(get("flaghook"), get("d1-insert")),
          d1_insert_vs_hello: ratio(get("d1-insert"), get("hello")),
          per_round_range: {
            flaghook_vs_hello: spread("flaghook", "hello"),
            flaghook_vs_d1_insert: spread("flaghook", "d1-insert"),
          },
        };
        if (targets.length > TARGETS.length) {
          ratios[`proxy_${mode}`].breakdown = Object.fromEntries(
            BREAKDOWN.flatMap(({ name }) => [
              [`${name} / hello`, ratio(get(name), get("hello"))],
              [`${name} / d1-insert`, ratio(get(name), get("d1-insert"))],
            ]),
          );
        }
      } finally {
        for (const t of live) await t.worker.stop();
      }
    }
  } finally {
    await receiver.close();
  }
  return { connections: CONNECTIONS, body_bytes: Buffer.byteLength(body), rounds, slice_s: slice, runs, ratios };
}

async function start(target, mode, receiver) {
  const fh = target.flaghook;
  progress(`ingest: starting ${target.name} (inspector proxy ${mode})`);
  const worker = await startWorker({
    label: `ingest-${target.name.replace(/[^a-z0-9]+/gi, "-")}-proxy-${mode}`,
    config: fh ? workerConfig("flaghook", { consumers: fh.consumers }) : workerConfig(target.name),
    port: target.port,
    inspectorPort: target.port + 1,
    d1: fh ? "flaghook" : target.d1,
    proxy: mode === "on",
    readyPath: fh ? "/healthz" : "/",
    vars: fh ? flaghookVars() : {},
  });
  const headers = { "content-type": "application/json" };
  let webhooks = 0;
  try {
    if (fh) {
      const org = await createOrganisation(worker.url);
      headers.authorization = org.auth.Authorization;
      if (fh.webhooks) {
        const prefix = `p${target.port}-${mode}`;
        const hooks = [
          [`${prefix}-org`, await createOrganisationWebhook(worker.url, org, `${receiver.url}/hooks/${prefix}-org`)],
          [`${prefix}-a`, await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/${prefix}-a`, "a")],
          [`${prefix}-b`, await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/${prefix}-b`, "b")],
        ];
        for (const [mailbox, hook] of hooks) await receiver.setSecret(mailbox, hook.secret);
        webhooks = hooks.length;
      }
    }
  } catch (err) {
    await worker.stop();
    throw err;
  }
  return { target, worker, url: worker.url + (fh ? "/api/v1/events" : "/"), headers, webhooks, slices: [] };
}

function summarise(t, mode) {
  const ok = t.slices.reduce((a, s) => a + s.ok, 0);
  const seconds = t.slices.reduce((a, s) => a + s.seconds, 0);
  const cpu = t.slices.reduce((a, s) => ({ worker: a.worker + s.cpu.worker, proxy: a.proxy + s.cpu.proxy, wrangler: a.wrangler + s.cpu.wrangler }), {
    worker: 0,
    proxy: 0,
    wrangler: 0,
  });
  const latencies = t.slices.flatMap((s) => s.latencies);
  return {
    target: t.target.name,
    proxy: mode,
    breakdown: BREAKDOWN.includes(t.target),
    webhooks: t.webhooks,
    duration_s: round(seconds, 1),
    requests_ok: ok,
    non_2xx: t.slices.reduce((a, s) => a + s.non2xx, 0),
    errors: t.slices.reduce((a, s) => a + s.errors, 0),
    req_per_s: round(ok / seconds, 0),
    req_per_s_per_slice: t.slices.map((s) => round(s.ok / s.seconds, 0)),
    latency_ms: { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1) },
    cpu_ms_per_request: {
      worker: round(cpu.worker / ok, 3),
      proxy_workerd: round(cpu.proxy / ok, 3),
      wrangler_node: round(cpu.wrangler / ok, 3),
    },
    cpu_cores_busy: round((cpu.worker + cpu.proxy + cpu.wrangler) / (seconds * 1000), 2),
  };
}

/** autocannon -c32 for `duration` seconds; every response's latency is kept. */
async function load({ url, headers, body, duration }) {
  const instance = autocannon({ url, method: "POST", headers, body, connections: CONNECTIONS, duration, timeout: 30 });
  const latencies = [];
  let ok = 0;
  instance.on("response", (_client, status, _bytes, responseTime) => {
    if (status >= 200 && status < 300) {
      ok++;
      latencies.push(responseTime);
    }
  });
  const result = await instance;
  return { ok, seconds: (result.finish - result.start) / 1000, non2xx: result.non2xx, errors: result.errors + result.timeouts, latencies };
}
