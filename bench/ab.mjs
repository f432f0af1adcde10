// A/B of flaghook's ingest between two versions, both up at once under `wrangler dev` (inspector
// proxy off) and taking turns at 4 s slices of autocannon -c32, so both see the same background
// noise. Used to decide whether a change helps; `npm run bench` gives the figures of record.
//   node bench/ab.mjs <revA> <revB> [rounds=4] [--no-webhooks] [--accept-only] [--record]
//   node bench/ab.mjs <revA> <revB> [rounds=4] --consumer [--events=2000]
// --consumer measures the delivery consumer's CPU per delivery instead: each round, each version
// records N events for an environment without webhooks (recording alone), then N events for one
// with 3 webhooks on the receiver (recording + 3N deliveries); the difference of the Worker's CPU
// over the two, divided by 3N, is what delivering costs (claim, sign, POST, record, roll-up).
// A rev is a git revision, or "." for the working tree. Ports: BENCH_PORT_BASE + 61..64, 55.
// --record: recording cost instead of req/s. Each round posts 5,000 flag events (batches of 100,
// 4 in flight, 1,000 features) to each version in turn and waits until its Worker is idle again
// (queue drained); Worker CPU per event covers accepting them in batches and recording them.
// With --accept-only as well, the same for accepting alone (no consumers), to subtract.
import autocannon from "autocannon";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvironmentWebhook, createOrganisation, createOrganisationWebhook, ENVIRONMENT, flagEvent, flaghookVars } from "./lib/flaghook.mjs";
import { startReceiverThread } from "./lib/receiver-thread.mjs";
import { cpuDelta, port, ROOT, settle, sleep, startWorker } from "./lib/wrangler.mjs";

const args = process.argv.slice(2);
const [revA, revB, rounds = "4"] = args.filter((a) => !a.startsWith("--"));
if (!revA || !revB) throw new Error("usage: node bench/ab.mjs <revA> <revB> [rounds] [--no-webhooks] [--accept-only]");
const webhooks = !args.includes("--no-webhooks") && !args.includes("--accept-only") && !args.includes("--record");
const acceptOnly = args.includes("--accept-only");
const recordMode = args.includes("--record");
const RECORD_EVENTS = 5_000;
const consumerMode = args.includes("--consumer");
const consumerEvents = Number(args.find((a) => a.startsWith("--events="))?.split("=")[1] ?? 2000);
const PARTS = ["src", "migrations", "wrangler.toml", "tsconfig.json", "package.json"];

/** A copy of `rev` (or the working tree) with node_modules linked; answers its wrangler.toml. */
function checkout(rev, dir) {
  if (rev === ".") for (const part of PARTS) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  else execFileSync("sh", ["-c", `git archive ${rev} ${PARTS.join(" ")} | tar -x -C ${dir}`], { cwd: ROOT });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  let config = join(dir, "wrangler.toml");
  if (acceptOnly) {
    let skipping = false;
    const lines = readFileSync(config, "utf8")
      .split("\n")
      .filter((line) => {
        if (line.startsWith("[")) skipping = line.startsWith("[[queues.consumers]]") || line.startsWith("[triggers]");
        return !skipping;
      });
    writeFileSync((config = join(dir, "accept-only.wrangler.toml")), lines.join("\n"));
  }
  return config;
}

const dirs = [];
const live = [];
const receiver = await startReceiverThread({ port: port(55) });
try {
  for (const [i, rev] of [revA, revB].entries()) {
    const dir = mkdtempSync(join(tmpdir(), `flaghook-ab-${i ? "b" : "a"}-`));
    dirs.push(dir);
    const config = checkout(rev, dir);
    const p = port(61 + 2 * i);
    const worker = await startWorker({ label: `ab-${i ? "b" : "a"}`, config, port: p, inspectorPort: p + 1, d1: "flaghook", proxy: false, readyPath: "/healthz", vars: flaghookVars() });
    live.push({ name: i ? "B" : "A", rev, worker, org: await createOrganisation(worker.url), rates: [], cpu: [] });
    const t = live[i];
    if (consumerMode) {
      for (const k of ["a", "b", "c"]) {
        const mailbox = `${t.name}-${k}`;
        const hook = await createEnvironmentWebhook(worker.url, t.org, ENVIRONMENT.id, `${receiver.url}/hooks/${mailbox}`, k);
        await receiver.setSecret(mailbox, hook.secret);
      }
    } else if (webhooks) {
      const box = (k) => `${t.name}-${k}`;
      const hooks = [
        [box("org"), await createOrganisationWebhook(worker.url, t.org, `${receiver.url}/hooks/${box("org")}`)],
        [box("a"), await createEnvironmentWebhook(worker.url, t.org, ENVIRONMENT.id, `${receiver.url}/hooks/${box("a")}`, "a")],
        [box("b"), await createEnvironmentWebhook(worker.url, t.org, ENVIRONMENT.id, `${receiver.url}/hooks/${box("b")}`, "b")],
      ];
      for (const [mailbox, hook] of hooks) await receiver.setSecret(mailbox, hook.secret);
    }
  }
  if (consumerMode) await consumerRounds();
  else if (recordMode) await recordRounds(live, Number(rounds));
  else await ingestRounds(live, Number(rounds));
} finally {
  await cleanup();
}

/** N events in batches of 100, 4 requests in flight; `environment` overrides the event's. */
async function ingestEvents(t, n, environment) {
  let next = 0;
  const sender = async () => {
    while (next < n) {
      const from = next;
      next += 100;
      const events = [];
      for (let i = from; i < Math.min(from + 100, n); i++) events.push({ ...flagEvent(i), ...(environment ? { environment } : {}) });
      const res = await fetch(`${t.worker.url}/api/v1/events/batch`, { method: "POST", headers: { "content-type": "application/json", ...t.org.auth }, body: JSON.stringify({ events }) });
      if (res.status !== 202) throw new Error(`${t.name}: batch answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, sender));
}

async function consumerRounds() {
  const n = consumerEvents;
  const quiet = { id: 24, name: "Quiet" };
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  await settle(live.map((x) => x.worker));
  for (const t of live) t.perDelivery = [];
  let delivered = (await receiver.counts()).total;
  for (let r = 0; r < Number(rounds); r++) {
    for (const t of r % 2 ? [...live].reverse() : live) {
      await settle(live.map((x) => x.worker));
      const c0 = t.worker.cpu();
      await ingestEvents(t, n, quiet);
      await settle(live.map((x) => x.worker));
      const c1 = t.worker.cpu();
      await ingestEvents(t, n);
      const expected = delivered + 3 * n;
      const deadline = Date.now() + 600_000;
      let poked = Date.now();
      while ((await receiver.counts()).total < expected) {
        if (Date.now() > deadline) throw new Error(`${t.name}: deliveries did not all arrive`);
        // wrangler dev runs no cron: run the sweeper by hand, as production's every-minute cron would,
        // should the local queue drop a message.
        if (Date.now() - poked > 30_000) {
          poked = Date.now();
          console.log(`${t.name}: waiting for ${expected - (await receiver.counts()).total} deliveries; running the scheduled handler`);
          await fetch(`${t.worker.url}/cdn-cgi/handler/scheduled`).catch(() => undefined);
        }
        await sleep(100);
      }
      delivered = expected;
      await settle(live.map((x) => x.worker));
      const c2 = t.worker.cpu();
      const recording = cpuDelta(c0, c1).worker;
      const both = cpuDelta(c1, c2).worker;
      t.perDelivery.push((both - recording) / (3 * n));
      console.log(`${t.name} round ${r + 1}: recording ${(recording / n).toFixed(3)} ms/event, recording + 3 deliveries ${(both / n).toFixed(3)} ms/event, consumer ${((both - recording) / (3 * n)).toFixed(3)} ms/delivery`);
    }
  }
  for (const t of live) console.log(`${t.name} (${t.rev}): consumer CPU ms/delivery ${t.perDelivery.map((x) => x.toFixed(3)).join(" ")} (mean ${mean(t.perDelivery).toFixed(3)})`);
  const [a, b] = live;
  console.log(`B/A consumer CPU per delivery ${(mean(b.perDelivery) / mean(a.perDelivery)).toFixed(3)}; per round ${b.perDelivery.map((x, i) => (x / a.perDelivery[i]).toFixed(2)).join(" ")}`);
}

async function ingestRounds(live, rounds) {
  const body = JSON.stringify(flagEvent(0));
  const load = (t, seconds) =>
    autocannon({ url: `${t.worker.url}/api/v1/events`, method: "POST", headers: { "content-type": "application/json", ...t.org.auth }, body, connections: 32, duration: seconds });
  for (const t of live) await load(t, 2); // warm up
  for (let r = 0; r < rounds; r++) {
    for (const t of r % 2 ? [...live].reverse() : live) {
      await settle(live.map((x) => x.worker));
      const cpu0 = t.worker.cpu();
      const result = await load(t, 4);
      const cpu = cpuDelta(cpu0, t.worker.cpu());
      t.rates.push(Math.round(result.requests.total / 4));
      t.cpu.push((cpu.worker / result.requests.total).toFixed(2));
      if (result.non2xx || result.errors) console.log(`${t.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    }
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const t of live) {
    console.log(`${t.name} (${t.rev}): req/s ${t.rates.join(" ")} (mean ${Math.round(mean(t.rates))}); Worker CPU ms/request during the slice ${t.cpu.join(" ")}`);
  }
  const [a, b] = live;
  console.log(`B/A ${(mean(b.rates) / mean(a.rates)).toFixed(3)}; per round ${b.rates.map((x, i) => (x / a.rates[i]).toFixed(2)).join(" ")}`);
}

async function cleanup() {
  for (const t of live) await t.worker.stop();
  await receiver.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** Flag events of 1,000 features, posted in batches of 100 with 4 requests in flight. */
async function postEvents(t, round) {
  let next = 0;
  const send = async () => {
    while (next < RECORD_EVENTS) {
      const from = next;
      next += 100;
      const events = [];
      for (let n = from; n < Math.min(from + 100, RECORD_EVENTS); n++) {
        const e = flagEvent(n);
        events.push({ ...e, id: `r${round}-${n}`, feature: { ...e.feature, id: 1000 + (n % 1000) } });
      }
      const res = await fetch(`${t.worker.url}/api/v1/events/batch`, { method: "POST", headers: { "content-type": "application/json", ...t.org.auth }, body: JSON.stringify({ events }) });
      if (res.status !== 202) throw new Error(`${t.name}: batch answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all([send(), send(), send(), send()]);
}

async function recordRounds(live, rounds) {
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (let r = 0; r < rounds; r++) {
    for (const t of r % 2 ? [...live].reverse() : live) {
      await settle(live.map((x) => x.worker));
      const cpu0 = t.worker.cpu();
      await postEvents(t, r);
      if (!(await settle([t.worker], 120_000))) console.log(`${t.name}: did not settle within 120 s`);
      t.cpu.push(cpuDelta(cpu0, t.worker.cpu()).worker / RECORD_EVENTS);
    }
  }
  for (const t of live) {
    const res = await fetch(`${t.worker.url}/api/v1/audit/export?format=ndjson&project=12`, { headers: t.org.auth });
    const recorded = (await res.text()).split("\n").filter(Boolean).length;
    const what = acceptOnly ? "accept in batches, no consumers" : "accept in batches + record";
    console.log(`${t.name} (${t.rev}): Worker CPU ms per event (${what}) ${t.cpu.map((x) => x.toFixed(3)).join(" ")} (mean ${mean(t.cpu).toFixed(3)}); ${recorded} of ${rounds * RECORD_EVENTS} events recorded`);
  }
  const [a, b] = live;
  console.log(`B/A CPU per event ${(mean(b.cpu) / mean(a.cpu)).toFixed(3)}; per round ${b.cpu.map((x, i) => (x / a.cpu[i]).toFixed(2)).join(" ")}`);
}
