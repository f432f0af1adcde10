// The flaghook under test is a copy of src/, migrations/ and the configs taken once per bench
// run, served by `wrangler dev` from that copy: an edit under src/ during a run then neither
// reloads the Worker (a reload drops everything in the simulated queues) nor mixes two versions
// in one run. Its wrangler.toml is rewritten into the copy, so no .dev.vars applies;
// `consumers: false` drops the queue consumers and cron (flaghook's accept path alone).
// The baseline Workers run from bench/workers/ as they are.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./wrangler.mjs";

const BASELINES = {
  hello: "bench/workers/hello/wrangler.toml",
  "d1-insert": "bench/workers/d1-insert/wrangler.toml",
};
let snapshot = null;

const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return null;
  }
};

function takeSnapshot() {
  if (snapshot) return snapshot;
  const dir = mkdtempSync(join(tmpdir(), "flaghook-bench-snapshot-"));
  const source = {
    commit: git("rev-parse", "--short", "HEAD"),
    uncommitted_src: git("status", "--porcelain", "--", "src", "migrations", "wrangler.toml")?.split("\n").filter(Boolean) ?? null,
  };
  for (const part of ["src", "migrations", "wrangler.toml", "tsconfig.json", "package.json"]) {
    if (existsSync(join(ROOT, part))) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  snapshot = { dir, source, configs: new Map() };
  return snapshot;
}

/** Deletes the copy; call once every Worker served from it has stopped. */
export function removeSnapshot() {
  if (snapshot) rmSync(snapshot.dir, { recursive: true, force: true });
  snapshot = null;
}

/** The directory holding the copy (src/, migrations/, the configs). */
export const snapshotDir = () => takeSnapshot().dir;

/** The commit (and uncommitted files under src/, migrations/, wrangler.toml) the snapshot was taken from. */
export const snapshotSource = () => takeSnapshot().source;

/** A wrangler.toml for `name`: "flaghook" (the snapshot), "hello" or "d1-insert". */
export function workerConfig(name, { consumers = true } = {}) {
  if (BASELINES[name]) return join(ROOT, BASELINES[name]);
  const snap = takeSnapshot();
  const file = consumers ? "bench.wrangler.toml" : "bench-accept-only.wrangler.toml";
  if (!snap.configs.has(file)) {
    const lines = [];
    let skipping = false;
    for (const line of readFileSync(join(snap.dir, "wrangler.toml"), "utf8").split("\n")) {
      if (line.startsWith("[")) skipping = !consumers && (line.startsWith("[[queues.consumers]]") || line.startsWith("[triggers]"));
      if (!skipping) lines.push(line);
    }
    writeFileSync(join(snap.dir, file), lines.join("\n"));
    snap.configs.set(file, join(snap.dir, file));
  }
  return snap.configs.get(file);
}
