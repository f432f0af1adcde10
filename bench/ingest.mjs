// Ingest: sustained accepted requests/s and latency under autocannon -c32, for flaghook (1
// organisation and 2 environment webhooks subscribed, delivering to a live receiver) beside a bare
// hello-world Hono Worker and a one-D1-insert Worker, all under the same `wrangler dev`, with the
// inspector proxy on and off. CPU per request is read from /proc for each process of the runtime.
import autocannon from "autocannon";
import { createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, flaghookVars } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { cpuDelta, sleep, startWorker } from "./lib/wrangler.mjs";
import { progress, ratio, round } from "./lib/stats.mjs";

const TARGETS = [
  { name: "hello", config: "bench/workers/hello/wrangler.toml", path: "/", port: 8811 },
  { name: "d1-insert", config: "bench/workers/d1-insert/wrangler.toml", path: "/", port: 8813, d1: "bench-d1-insert" },
  { name: "flaghook", config: "wrangler.toml", path: "/api/v1/events", port: 8815, d1: "flaghook", readyPath: "/healthz" },
];
const RECEIVER_PORT = 8851;

export async function ingestBench({ quick, modes = ["off", "on"] }) {
  const duration = quick ? 5 : 10;
  const warmup = quick ? 1 : 2;
  const body = JSON.stringify(flagEvent(0));
  const receiver = await startReceiverThread({ port: RECEIVER_PORT });
  const runs = [];
  try {
    for (const mode of modes) {
      for (const target of TARGETS) {
        const label = `ingest-${target.name}-proxy-${mode}`;
        progress(`ingest: starting ${target.name} (inspector proxy ${mode})`);
        const worker = await startWorker({
          label,
          config: target.config,
          port: target.port,
          inspectorPort: target.port + 1,
          d1: target.d1,
          proxy: mode === "on",
          readyPath: target.readyPath ?? "/",
          vars: target.name === "flaghook" ? flaghookVars() : {},
        });
        try {
          const headers = { "content-type": "application/json" };
          let webhooks = 0;
          if (target.name === "flaghook") {
            const org = await createOrganisation(worker.url);
            headers.authorization = org.auth.Authorization;
            await receiver.reset();
            const hooks = [
              ["org", await createOrganisationWebhook(worker.url, org, `${receiver.url}/hooks/org`)],
              ["env-a", await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/env-a`, "a")],
              ["env-b", await createEnvironmentWebhook(worker.url, org, ENVIRONMENT.id, `${receiver.url}/hooks/env-b`, "b")],
            ];
            for (const [mailbox, hook] of hooks) await receiver.setSecret(mailbox, hook.secret);
            webhooks = hooks.length;
            await sleep(1500); // the webhooks' own system events go through the queue first
          }
          const url = worker.url + target.path;
          await load({ url, headers, body, duration: warmup });
          const before = await receiver.counts();
          const cpu0 = worker.cpu();
          const result = await load({ url, headers, body, duration, label: `${target.name} (proxy ${mode})` });
          const cpu = cpuDelta(cpu0, worker.cpu());
          const after = await receiver.counts();
          const ok = result["2xx"];
          const run = {
            target: target.name,
            proxy: mode,
            webhooks,
            duration_s: round(result.seconds, 2),
            requests_ok: ok,
            non_2xx: result.non2xx,
            errors: result.errors + result.timeouts,
            req_per_s: round(ok / result.seconds, 0),
            latency_ms: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
            cpu_ms_per_request: {
              worker: round(cpu.worker / ok, 3),
              proxy_workerd: round(cpu.proxy / ok, 3),
              wrangler_node: round(cpu.wrangler / ok, 3),
            },
            cpu_cores_busy: round((cpu.worker + cpu.proxy + cpu.wrangler) / (result.seconds * 1000), 2),
          };
          if (target.name === "flaghook") run.deliveries_received_during_run = after.total - before.total;
          if (result.non2xx || result.errors) progress(`  warning: ${result.non2xx} non-2xx, ${result.errors} errors`);
          progress(
            `  ${target.name} proxy ${mode}: ${run.req_per_s} req/s, p50 ${run.latency_ms.p50} ms, p99 ${run.latency_ms.p99} ms,`,
            `Worker CPU ${run.cpu_ms_per_request.worker} ms/req`,
          );
          runs.push(run);
        } finally {
          await worker.stop();
        }
      }
    }
  } finally {
    await receiver.close();
  }
  const ratios = {};
  for (const mode of modes) {
    const get = (name) => runs.find((r) => r.target === name && r.proxy === mode)?.req_per_s;
    ratios[`proxy_${mode}`] = {
      flaghook_vs_hello: ratio(get("flaghook"), get("hello")),
      flaghook_vs_d1_insert: ratio(get("flaghook"), get("d1-insert")),
      d1_insert_vs_hello: ratio(get("d1-insert"), get("hello")),
    };
  }
  return { connections: 32, body_bytes: Buffer.byteLength(body), duration_s: duration, runs, ratios };
}

/** autocannon -c32 for `duration` seconds; prints the rate every 2 s when labelled. */
async function load({ url, headers, body, duration, label }) {
  const started = Date.now();
  const instance = autocannon({ url, method: "POST", headers, body, connections: 32, duration, timeout: 30 });
  let count = 0;
  let last = Date.now();
  let lastCount = 0;
  instance.on("response", (_client, status) => {
    if (status >= 200 && status < 300) count++;
  });
  const ticker = label
    ? setInterval(() => {
        const now = Date.now();
        progress(`  ${label}: ${Math.round(((count - lastCount) * 1000) / (now - last))} req/s`);
        last = now;
        lastCount = count;
      }, 2000)
    : null;
  const result = await instance;
  if (ticker) clearInterval(ticker);
  result.seconds = (result.finish - result.start) / 1000 || (Date.now() - started) / 1000;
  return result;
}
