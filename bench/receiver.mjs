// A real webhook receiver (Node http) used by the tests and the benchmarks.
// POST /hooks/<mailbox> records the request and answers as that mailbox is scripted (GET too, so a
// mailbox can serve a document such as a JWKS, counting each fetch):
//   PUT    /_control/<mailbox>  {"responses": [{status, headers, body, delayMs, reset, hangUp}], "default": {...}}
//          reset: the connection is dropped unanswered; hangUp: these raw bytes are written (the start of
//          an answer, e.g. "HTTP/1.1 200 OK\r\nConte"), then the connection is closed
//   GET    /_control/<mailbox>  -> {"count", "maxInFlight", "requests": [{headers, body, receivedAt}]}
//          maxInFlight: the most requests the mailbox held unanswered at once
//   DELETE /_control/<mailbox>  forgets the mailbox
//   PUT    /_control/<mailbox>  {"chaos": {seed, fail, timeout, reset, throttle, timeoutDelayMs, retryAfter, calmAfter}}
//          answers each request by a hash of (seed, webhook-id, how many requests of that webhook-id came
//          before it): 500, a reply too late, a reset connection, 429 + Retry-After, else 200, at the given
//          rates; from request calmAfter + 1 of a webhook-id on, always 200. The same attempt of the same
//          delivery gets the same answer whatever order requests arrive in. Each request records `chaos`.
//   POST   /_python-dumps       answers Python's json.dumps(json.loads(body), sort_keys=True)
//   GET    /dns-query?name=&type=  DNS-over-HTTPS JSON answers for a few fixed test names, and for the
//          names set with PUT /_dns/<name> {"addresses": [...], "ttl", "status", "body", "delayMs"}: the
//          answer can change after a webhook is saved (DNS rebinding), fail with an HTTP status, be a raw
//          body, or come late
//   GET    /_dns/<name>         -> {"queries"}: how many DoH queries asked for the name
//   POST   /_seed-check         runs the seed's Python signature check: {"secret","body","signature"}
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import http from "node:http";

const SEED_CHECK = new URL("../test/fixtures/seed_signature_check.py", import.meta.url).pathname;
const PYTHON_DUMPS = new URL("../test/fixtures/python_dumps.py", import.meta.url).pathname;
/** Flagsmith's bodies may run to megabytes (issue 10); execFileSync's default keeps 1 MiB of output. */
const PYTHON_MAX_BUFFER = 16 * 1024 * 1024;

/** A tiny DNS-over-HTTPS (JSON) answerer for the URL policy tests: fixed names, fixed addresses. */
const DNS = {
  "public.example.test": ["93.184.216.34"],
  "internal.example.test": ["10.0.0.5"],
  "metadata.example.test": ["169.254.169.254"],
  "loopback.example.test": ["127.0.0.1"],
  "v6-private.example.test": ["fd00::1"],
};

export async function startReceiver({ port = 0, host = "127.0.0.1", keepBodies = true } = {}) {
  const mailboxes = new Map();
  const dns = new Map();
  const box = (name) => {
    if (!mailboxes.has(name)) mailboxes.set(name, { requests: [], script: [], fallback: { status: 200 }, chaos: null, seen: new Map(), count: 0, inFlight: 0, maxInFlight: 0 });
    return mailboxes.get(name);
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url, "http://receiver");
      const [, kind, name = "default"] = url.pathname.split("/");
      if (kind === "_control") return control(req.method, box(name), name, body, res);
      // POST /_seed-check {"secret","body","signature"}: runs the seed's Python snippet on them.
      if (kind === "_python-dumps") {
        return send(res, { status: 200, body: execFileSync("python3", [PYTHON_DUMPS], { input: body, maxBuffer: PYTHON_MAX_BUFFER }).toString() });
      }
      if (kind === "_dns") {
        const entry = dns.get(name) ?? { queries: 0 };
        if (req.method === "PUT") dns.set(name, { ...JSON.parse(body), queries: entry.queries });
        return send(res, { status: req.method === "PUT" ? 204 : 200, body: req.method === "PUT" ? "" : JSON.stringify({ queries: entry.queries }) });
      }
      if (kind === "dns-query") {
        const name = url.searchParams.get("name");
        const v6 = url.searchParams.get("type") === "AAAA";
        const set = dns.get(name);
        if (set) set.queries++;
        const ttl = set?.ttl === undefined ? {} : { TTL: set.ttl };
        const answers = (set?.addresses ?? DNS[name] ?? []).filter((ip) => ip.includes(":") === v6).map((data) => ({ type: v6 ? 28 : 1, data, ...ttl }));
        const answer =
          set?.status || set?.body !== undefined
            ? { status: set.status ?? 200, headers: { "content-type": "application/dns-json" }, body: set.body ?? "" }
            : { status: 200, headers: { "content-type": "application/dns-json" }, body: JSON.stringify({ Status: 0, Answer: answers }) };
        return setTimeout(() => send(res, answer), set?.delayMs ?? 0);
      }
      if (kind === "_seed-check") {
        const verdict = execFileSync("python3", [SEED_CHECK], { input: body, maxBuffer: PYTHON_MAX_BUFFER }).toString().trim();
        return send(res, { status: 200, body: verdict });
      }
      if (req.method !== "POST" && req.method !== "GET") return send(res, { status: 405 });
      const mailbox = box(name);
      mailbox.count++;
      let answer = mailbox.fallback;
      let label;
      if (mailbox.script.length) answer = mailbox.script.shift();
      else if (mailbox.chaos) [label, answer] = chaosAnswer(mailbox, String(req.headers["webhook-id"] ?? ""));
      if (keepBodies) mailbox.requests.push({ headers: req.headers, body, receivedAt: Date.now(), ...(label ? { chaos: label } : {}) });
      if (answer.reset) return req.socket.destroy();
      if (answer.hangUp !== undefined) return req.socket.end(answer.hangUp);
      mailbox.maxInFlight = Math.max(mailbox.maxInFlight, ++mailbox.inFlight);
      res.on("close", () => mailbox.inFlight--);
      setTimeout(() => send(res, answer), answer.delayMs ?? 0);
    });
  });
  const control = (method, mailbox, name, body, res) => {
    if (method === "PUT") {
      const spec = JSON.parse(body || "{}");
      mailbox.script = spec.responses ?? [];
      mailbox.fallback = spec.default ?? { status: 200 };
      mailbox.chaos = spec.chaos ?? null;
      mailbox.seen = new Map();
      return send(res, { status: 204 });
    }
    if (method === "DELETE") {
      mailboxes.delete(name);
      return send(res, { status: 204 });
    }
    return send(res, { status: 200, body: JSON.stringify({ count: mailbox.count, maxInFlight: mailbox.maxInFlight, requests: mailbox.requests }) });
  };
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(port, host, resolve));
  const address = server.address();
  return {
    url: `http://${host}:${address.port}`,
    mailboxes,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/** The scripted chaos answer for the next request of `webhookId` in this mailbox: [label, answer]. */
function chaosAnswer(mailbox, webhookId) {
  const chaos = mailbox.chaos;
  const n = (mailbox.seen.get(webhookId) ?? 0) + 1;
  mailbox.seen.set(webhookId, n);
  if (chaos.calmAfter !== undefined && n > chaos.calmAfter) return ["ok", { status: 200 }];
  const r = createHash("sha256").update(`${chaos.seed}:${webhookId}:${n}`).digest().readUInt32BE(0) / 2 ** 32;
  let edge = 0;
  if (r < (edge += chaos.fail ?? 0)) return ["fail", { status: 500, body: "chaos: failing" }];
  if (r < (edge += chaos.timeout ?? 0)) return ["timeout", { status: 200, delayMs: chaos.timeoutDelayMs ?? 15_000 }];
  if (r < (edge += chaos.reset ?? 0)) return ["reset", { reset: true }];
  if (r < (edge += chaos.throttle ?? 0)) return ["throttle", { status: 429, headers: { "retry-after": String(chaos.retryAfter ?? 1) } }];
  return ["ok", { status: 200 }];
}

function send(res, { status = 200, headers = {}, body = "" }) {
  if (res.destroyed) return;
  res.writeHead(status, { "content-type": "text/plain", ...headers });
  res.end(body);
}
