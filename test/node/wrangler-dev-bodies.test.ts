/// <reference types="node" />
// Under `wrangler dev`, a request whose body the Worker answered while it was half-read made the
// NEXT request through wrangler's proxy fail with 503 "worker restarted mid-request" (issue 14,
// point 4; cloudflare/workers-sdk#15709: the Worker never sees that request). flaghook never
// leaves a body half-read: it refuses before reading (unauthenticated, or a declared length over
// the limit) or reads an oversized streamed body to its end before answering 413. This runs the
// real `wrangler dev` on free ports and sends what broke it, each followed by ordinary requests.
import { createHmac } from "node:crypto";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFlaghook, type Flaghook } from "./flaghook-dev";

const ADMIN = { authorization: "Bearer node-test-admin-token" };

let flaghook: Flaghook;
let base: string;
let auth: Record<string, string>;
let inbound: { url: string; secret: string };

beforeAll(async () => {
  flaghook = await startFlaghook({ ADMIN_TOKEN: ADMIN.authorization.slice(7), SECRETS_KEY: "node-test-secrets-key" });
  base = flaghook.baseUrl;
  const org = await post("/api/v1/organisations", ADMIN, { name: "Bodies" });
  const key = await post(`/api/v1/organisations/${org.id}/api-keys`, ADMIN, { name: "node" });
  auth = { authorization: `Api-Key ${key.key}` };
  inbound = await post(`/api/v1/organisations/${org.id}/inbound-sources`, auth, { name: "Flagsmith" });
}, 150_000);

afterAll(() => flaghook?.stop());

async function post(path: string, headers: Record<string, string>, json: unknown) {
  const res = await fetch(base + path, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(json) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** An ordinary request from another client: a small event, which must be accepted. */
async function legitimate(): Promise<number> {
  const res = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ type: "CUSTOM", log: "still working", related_object: { type: "X" } }),
    signal: AbortSignal.timeout(20_000),
  });
  await res.text();
  return res.status;
}

/** POSTs `total` bytes with Transfer-Encoding: chunked from a keep-alive client; answers the status (or the error). */
function chunked(path: string, headers: Record<string, string>, total: number, first = ""): Promise<string> {
  return new Promise((resolve) => {
    const agent = new http.Agent({ keepAlive: true });
    const req = http.request(base + path, { method: "POST", agent, headers: { ...headers, "transfer-encoding": "chunked" } }, (res) => {
      res.resume();
      res.on("end", () => {
        agent.destroy();
        resolve(String(res.statusCode));
      });
    });
    req.on("error", (err) => {
      agent.destroy();
      resolve(`error ${err.message}`);
    });
    const chunk = Buffer.alloc(16_384, " ");
    let sent = 0;
    if (first) {
      req.write(first);
      sent += first.length;
    }
    const write = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", write);
      }
      req.end();
    };
    write();
  });
}

const MiB = 1024 * 1024;

describe("under wrangler dev, no request breaks the next one", () => {
  const cases: [string, () => Promise<string>, string][] = [
    ["an authenticated event of 1 MiB, chunked", () => chunked("/api/v1/events", { ...auth, "content-type": "application/json" }, MiB, '{"log": "'), "413"],
    ["an unauthenticated event of 1 MiB, chunked", () => chunked("/api/v1/events", { "content-type": "application/json" }, MiB), "401"],
    ["an operator request of 1 MiB, chunked", () => chunked("/api/v1/organisations", { ...ADMIN, "content-type": "application/json" }, MiB), "413"],
    ["an inbound Flagsmith webhook of 3 MiB (over its 2,000,000-byte limit), chunked", () => chunked(new URL(inbound.url).pathname, { "content-type": "application/json" }, 3 * MiB), "413"],
    [
      "a sign-in form of 1 MiB, chunked",
      () => chunked("/ui/sign-in", { "content-type": "application/x-www-form-urlencoded", origin: base }, MiB, "key="),
      "413",
    ],
  ];

  it.each(cases.map(([name, send, expected]) => ({ name, send, expected })))("$name answers $expected, and the requests after it succeed", async ({ send, expected }) => {
    for (let round = 0; round < 3; round++) {
      const status = await send();
      // The client may see its upload cut off after the answer; what matters is the next request.
      if (!status.startsWith("error")) expect(status).toBe(expected);
      expect([await legitimate(), await legitimate()]).toEqual([202, 202]);
    }
  }, 120_000);

  it("a signed Flagsmith webhook sent chunked is still accepted", async () => {
    const body = JSON.stringify({ data: { log: "chunked", created_date: new Date().toISOString() }, event_type: "AUDIT_LOG_CREATED" });
    const signature = createHmac("sha256", inbound.secret).update(body).digest("hex");
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        inbound.url.replace(/^https?:\/\/[^/]+/, base),
        { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked", "x-flagsmith-signature": signature } },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 10));
      req.end(body.slice(10));
    });
    expect(status).toBe(202);
  });
});
