/// <reference types="node" />
// Global setup of the browser tests: a local D1 migrated into a temporary folder, the Worker under
// `wrangler dev` on free ports of 127.0.0.1, and the real webhook receiver (bench/receiver.mjs).
// Nothing assumes a port is free: a developer's `npm run dev` or a second test run may be beside it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startReceiver } from "../../bench/receiver.mjs";

const ADMIN_TOKEN = "browser-test-admin-token";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    receiverUrl: string;
    adminToken: string;
  }
}

// Offline and quiet: wrangler must not try to reach Cloudflare from this machine.
const wranglerEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

async function waitForHealth(url: string, worker: ChildProcess, log: () => string, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (worker.exitCode !== null) throw new Error(`wrangler dev exited with ${worker.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not answer ${url}/healthz within ${timeoutMs} ms:\n${log()}`);
}

/** A port the system has just handed out as free (wrangler takes ports by number, not 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * flaghook under `wrangler dev` on free ports of 127.0.0.1, with its own migrated local D1 in a
 * temporary folder and these vars; `stop` ends the whole process group and deletes the state.
 */
export async function startFlaghook(vars: Record<string, string>): Promise<{ baseUrl: string; stop: () => Promise<void> }> {
  const state = mkdtempSync(join(tmpdir(), "flaghook-browser-"));
  const migrate = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "flaghook", "--local", "--persist-to", state], {
    env: wranglerEnv,
    encoding: "utf8",
  });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);

  const workerPort = await freePort();
  const inspectorPort = await freePort();
  let output = "";
  const worker = spawn(
    "npx",
    [
      "wrangler", "dev",
      "--ip", "127.0.0.1",
      "--port", String(workerPort),
      "--inspector-port", String(inspectorPort),
      "--persist-to", state,
      "--show-interactive-dev-session=false",
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    { env: wranglerEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  worker.stdout!.on("data", (d) => (output += d));
  worker.stderr!.on("data", (d) => (output += d));
  const stop = async () => {
    // wrangler runs workerd as a child: end the whole process group this setup started.
    if (worker.exitCode === null && worker.pid) {
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
    rmSync(state, { recursive: true, force: true });
  };

  const baseUrl = `http://127.0.0.1:${workerPort}`;
  try {
    await waitForHealth(baseUrl, worker, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, stop };
}

export default async function setup(project: TestProject) {
  const receiver = await startReceiver({ port: 0 });
  let flaghook: Awaited<ReturnType<typeof startFlaghook>>;
  try {
    flaghook = await startFlaghook({
      ADMIN_TOKEN,
      SECRETS_KEY: "browser-test-secrets-key",
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      RETRY_SCHEDULE: "1,1,1",
    });
  } catch (err) {
    await receiver.close();
    throw err;
  }
  project.provide("baseUrl", flaghook.baseUrl);
  project.provide("receiverUrl", receiver.url);
  project.provide("adminToken", ADMIN_TOKEN);
  return async () => {
    await flaghook.stop();
    await receiver.close();
  };
}
