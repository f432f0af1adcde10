/// <reference types="node" />
// Under `wrangler dev`, a request whose body the Worker answered while it was half-read made the
// NEXT request through wrangler's proxy fail with 503 "worker restarted mid-request" (issue 14,
// point 4; cloudflare/workers-sdk#15709: the Worker never sees that request). flaghook never
// leaves a body half-read: it refuses before reading (unauthenticated, or a declared length over
// the limit) or reads an oversized streamed body to its end before answering 413. This runs the
// real `wrangler dev` on free ports and sends what broke it, each followed by ordinary requests.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const ADMIN = { authorization: "Bearer node-test-admin-token" };
const wranglerEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let worker: ChildProcess;
let state: string;
let base: string;
let output = "";
let auth: Record<string, string>;
let inbound: { url: string; secret: string };

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "flaghook-node-bodies-"));
  const migrate = spawnSync(process.execPath, [WRANGLER, "d1", "migrations", "apply", "flaghook", "--local", "--persist-to", state], {
    cwd: ROOT,
    env: wranglerEnv,
    encoding: "utf8",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);
  const port = await freePort();
  const inspectorPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  worker = spawn(
    process.execPath,
    [
      WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
      "--persist-to", state, "--show-interactive-dev-session=false",
      "--var", `ADMIN_TOKEN:${ADMIN.authorization.slice(7)}`, "--var", "SECRETS_KEY:node-test-secrets-key",
    ],
    { cwd: ROOT, env: wranglerEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  worker.stdout!.on("data", (d) => (output += d));
  worker.stderr!.on("data", (d) => (output += d));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (worker.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${output}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const org = await post("/api/v1/organisations", ADMIN, { name: "Bodies" });
  const key = await post(`/api/v1/organisations/${org.id}/api-keys`, ADMIN, { name: "node" });
  auth = { authorization: `Api-Key ${key.key}` };
  inbound = await post(`/api/v1/organisations/${org.id}/inbound-sources`, auth, { name: "Flagsmith" });
}, 150_000);

afterAll(async () => {
  if (worker?.pid && worker.exitCode === null) {
    try {
      process.kill(-worker.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((r) => setTimeout(r, 500));
    try {
      process.kill(-worker.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (state) rmSync(state, { recursive: true, force: true });
});

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
