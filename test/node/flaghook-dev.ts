/// <reference types="node" />
// flaghook under `wrangler dev` for the tests that run in Node (test/node, test/browser): free
// ports, a migrated local D1 of its own, and a stop that ends the whole process group.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");

/** Offline and quiet: wrangler must not try to reach Cloudflare from this machine. */
export const wranglerEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

/** A port the system has just handed out as free (wrangler takes ports by number, not 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Flaghook {
  baseUrl: string;
  /** What wrangler dev printed so far. */
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * flaghook under `wrangler dev` on free ports of 127.0.0.1, with its own migrated local D1 in a
 * temporary folder and these vars; `stop` ends the whole process group and deletes the state.
 */
export async function startFlaghook(vars: Record<string, string>, timeoutMs = 120_000): Promise<Flaghook> {
  const state = mkdtempSync(join(tmpdir(), "flaghook-test-"));
  const migrate = spawnSync(process.execPath, [WRANGLER, "d1", "migrations", "apply", "flaghook", "--local", "--persist-to", state], {
    cwd: ROOT,
    env: wranglerEnv,
    encoding: "utf8",
  });
  if (migrate.status !== 0) {
    rmSync(state, { recursive: true, force: true });
    throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);
  }
  const port = await freePort();
  const inspectorPort = await freePort();
  let output = "";
  const worker = spawn(
    process.execPath,
    [
      WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
      "--persist-to", state, "--show-interactive-dev-session=false",
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    { cwd: ROOT, env: wranglerEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  worker.stdout!.on("data", (d) => (output += d));
  worker.stderr!.on("data", (d) => (output += d));
  const stop = async () => {
    // wrangler runs workerd as a child: end the whole process group started here.
    if (worker.exitCode === null && worker.pid) {
      for (const signal of ["SIGTERM", "SIGKILL"] as const) {
        try {
          process.kill(-worker.pid, signal);
        } catch {
          // already gone
        }
        if (signal === "SIGTERM") await new Promise((r) => setTimeout(r, 500));
      }
    }
    rmSync(state, { recursive: true, force: true });
  };

  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: string | undefined;
    if (worker.exitCode !== null) failure = `wrangler dev exited with ${worker.exitCode}`;
    else if (Date.now() > deadline) failure = `wrangler dev did not answer ${baseUrl}/healthz within ${timeoutMs} ms`;
    if (failure) {
      await stop();
      throw new Error(`${failure}:\n${output}`);
    }
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { baseUrl, output: () => output, stop };
}
