// The bench's webhook receiver (bench/receiver.mjs) in a worker thread, so load generation in the
// main thread does not slow receipt down. Every POST is checked against its webhook's secret
// (X-Flagsmith-Signature and the Standard Webhooks signature) and reduced to one small record;
// bodies are dropped as soon as they are read.
import { createHmac, timingSafeEqual } from "node:crypto";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { startReceiver } from "../receiver.mjs";

/** Starts the receiver thread; resolves to a handle with the receiver's URL. */
export async function startReceiverThread({ port }) {
  const thread = new Worker(new URL(import.meta.url), { workerData: { port } });
  const pending = new Map();
  let seq = 0;
  thread.on("message", (m) => {
    pending.get(m.seq)?.ok(m);
    pending.delete(m.seq);
  });
  thread.on("error", (err) => {
    for (const { fail } of pending.values()) fail(err);
    pending.clear();
  });
  const ask = (message) =>
    new Promise((ok, fail) => {
      const id = ++seq;
      pending.set(id, { ok, fail });
      thread.postMessage({ ...message, seq: id });
    });
  const started = await new Promise((ok, fail) => pending.set(0, { ok, fail }));
  return {
    url: started.url,
    /** Signatures of `mailbox` are checked with `secret`; its requests wait until it is known. */
    setSecret: (mailbox, secret) => ask({ type: "secret", mailbox, secret }),
    /** {total, matched} so far: matched are deliveries naming a bench event (feature bench_<n>). */
    counts: () => ask({ type: "counts" }),
    /** Every record so far: parallel arrays mailbox, webhookId, receivedAt, event (n or -1), signatureOk. */
    records: () => ask({ type: "records" }),
    reset: () => ask({ type: "reset" }),
    close: async () => {
      await ask({ type: "close" });
      await thread.terminate();
    },
  };
}

const EVENT = /bench_(\d+)/;

function hmac(key, data, encoding) {
  return createHmac("sha256", key).update(data).digest(encoding);
}

function standardKey(secret) {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

function verify(secret, headers, body) {
  const flagsmith = Buffer.from(hmac(Buffer.from(secret, "utf8"), body, "hex"));
  const given = Buffer.from(String(headers["x-flagsmith-signature"] ?? ""));
  if (given.length !== flagsmith.length || !timingSafeEqual(given, flagsmith)) return false;
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const expected = hmac(standardKey(secret), `${id}.${ts}.${body}`, "base64");
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((s) => s === `v1,${expected}`);
}

if (!isMainThread && workerData?.port !== undefined) {
  const receiver = await startReceiver({ port: workerData.port, keepBodies: true });
  const secrets = new Map();
  const rec = { mailbox: [], webhookId: [], receivedAt: [], event: [], signatureOk: [] };
  let matched = 0;
  const drain = () => {
    for (const [name, box] of receiver.mailboxes) {
      const secret = secrets.get(name);
      if (secret === undefined || !box.requests.length) continue;
      const requests = box.requests.splice(0);
      for (const { headers, body, receivedAt } of requests) {
        const m = EVENT.exec(body);
        rec.mailbox.push(name);
        rec.webhookId.push(String(headers["webhook-id"] ?? ""));
        rec.receivedAt.push(receivedAt);
        rec.event.push(m ? Number(m[1]) : -1);
        rec.signatureOk.push(verify(secret, headers, body));
        if (m) matched++;
      }
    }
  };
  const timer = setInterval(drain, 50);
  parentPort.on("message", async (m) => {
    if (m.type === "secret") secrets.set(m.mailbox, m.secret);
    drain();
    if (m.type === "counts") {
      let waiting = 0;
      for (const box of receiver.mailboxes.values()) waiting += box.requests.length;
      return parentPort.postMessage({ seq: m.seq, total: rec.mailbox.length, matched, waiting });
    }
    if (m.type === "records") return parentPort.postMessage({ seq: m.seq, ...rec });
    if (m.type === "reset") {
      for (const key of Object.keys(rec)) rec[key] = [];
      matched = 0;
    }
    if (m.type === "close") {
      clearInterval(timer);
      await receiver.close();
    }
    parentPort.postMessage({ seq: m.seq });
  });
  parentPort.postMessage({ seq: 0, url: receiver.url });
}
