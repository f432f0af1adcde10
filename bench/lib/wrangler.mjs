// Runs a Worker under `wrangler dev` (local runtime: workerd with simulated D1 and Queues) for a
// bench: its own port, inspector port and --persist-to directory; stopped by its process group.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
let logDir = join(ROOT, "bench/results/logs");
/** Where each wrangler session's output goes (one file per session label). */
export const setLogDir = (dir) => (logDir = dir);

/** Every port the bench listens on is BENCH_PORT_BASE (default 8800) + 11..54. */
export const port = (offset) => Number(process.env.BENCH_PORT_BASE || 8800) + offset;

export const baseEnv = () => ({
  ...process.env,
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  CI: "1",
  NO_COLOR: "1",
});

/** wrangler [args] to completion; throws with its output when it fails. */
export function wranglerSync(args, { cwd = ROOT } = {}) {
  const run = spawnSync(process.execPath, [WRANGLER, ...args], { cwd, env: baseEnv(), encoding: "utf8", maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

export function newPersistDir(label) {
  return mkdtempSync(join(tmpdir(), `flaghook-bench-${label}-`));
}

export function portIsFree(port) {
  return new Promise((ok) => {
    const server = net.createServer();
    server.once("error", () => ok(false));
    server.listen(port, "127.0.0.1", () => server.close(() => ok(true)));
  });
}

/**
 * Starts `wrangler dev` for the Worker whose wrangler.toml is `config` (relative to the repository).
 * `proxy: false` sets VSCODE_INSPECTOR_OPTIONS, which makes wrangler skip its inspector proxy.
 */
export async function startWorker({ label, config, port, inspectorPort, persistTo, d1, vars = {}, proxy = true, readyPath = "/" }) {
  for (const p of [port, inspectorPort]) {
    if (!(await portIsFree(p))) throw new Error(`port ${p} is busy: another bench or dev server is using it`);
  }
  const persist = persistTo ?? newPersistDir(label);
  const configPath = resolve(ROOT, config);
  if (d1) wranglerSync(["d1", "migrations", "apply", d1, "--local", "--persist-to", persist, "--config", configPath]);
  const args = [
    WRANGLER, "dev", "--config", configPath, "--ip", "127.0.0.1", "--port", String(port),
    "--inspector-port", String(inspectorPort), "--persist-to", persist, "--test-scheduled",
    "--show-interactive-dev-session=false",
  ];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const env = baseEnv();
  if (proxy) delete env.VSCODE_INSPECTOR_OPTIONS;
  else env.VSCODE_INSPECTOR_OPTIONS = "1";
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${label}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(process.execPath, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child.pid);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((ok) => child.on("exit", (code, signal) => ok((exited = { code, signal }))));
  const url = `http://127.0.0.1:${port}`;

  const worker = {
    label,
    url,
    persistTo: persist,
    pid: child.pid,
    logPath,
    /** CPU time (ms) used so far by the Worker's workerd, the proxy's workerd and wrangler's node. */
    cpu: () => processCpu(child.pid, port),
    async stop() {
      if (!exited) {
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {}
        const timer = setTimeout(() => {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {}
        }, 5000);
        await exit;
        clearTimeout(timer);
        // workerd children sometimes outlive wrangler for a moment; make sure the group is gone.
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }
      running.delete(child.pid);
      log.end();
      if (!persistTo) rmSync(persist, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) {
      await worker.stop();
      throw new Error(`wrangler dev for ${label} exited (${JSON.stringify(exited)}); log:\n${tail(logPath)}`);
    }
    try {
      const res = await fetch(url + readyPath, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status < 500) break;
    } catch {}
    if (Date.now() > deadline) {
      await worker.stop();
      throw new Error(`wrangler dev for ${label} was not ready within 90 s; log:\n${tail(logPath)}`);
    }
    await sleep(250);
  }
  return worker;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Process groups of the wrangler dev sessions still running, killed if the bench is interrupted. */
const running = new Set();
const killAll = () => {
  for (const pgid of running) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {}
  }
  running.clear();
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

function tail(path, lines = 30) {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

const TICK_MS = 1000 / (Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100);

/** CPU ms of every process under `rootPid`, split into the user Worker's workerd, the proxy workerd and node. */
function processCpu(rootPid, port) {
  const out = { worker: 0, proxy: 0, wrangler: 0 };
  const parents = new Map();
  const stats = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry), Number(fields[1]));
      stats.set(Number(entry), { comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {}
  }
  const inTree = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 20; p = parents.get(p), hops++) if (p === rootPid) return true;
    return false;
  };
  for (const [pid, { comm, ticks }] of stats) {
    if (!inTree(pid)) continue;
    const ms = ticks * TICK_MS;
    if (comm === "workerd") {
      let cmd = "";
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {}
      if (cmd.includes(`entry=127.0.0.1:${port}`)) out.proxy += ms;
      else out.worker += ms;
    } else {
      out.wrangler += ms;
    }
  }
  return out;
}

/** Waits until the processes of `workers` together use under 10% of a core (queues drained), at most `maxMs`. */
export async function settle(workers, maxMs = 60_000) {
  const total = (w) => w.reduce((sum, x) => { const c = x.cpu(); return sum + c.worker + c.proxy + c.wrangler; }, 0);
  const deadline = Date.now() + maxMs;
  let before = total(workers);
  while (Date.now() < deadline) {
    await sleep(500);
    const now = total(workers);
    if (now - before < 50) return true;
    before = now;
  }
  return false;
}

export const cpuDelta = (a, b) => ({ worker: b.worker - a.worker, proxy: b.proxy - a.proxy, wrangler: b.wrangler - a.wrangler });
