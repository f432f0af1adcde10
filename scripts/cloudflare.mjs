// What `npm run setup` and `npm run deploy` share: reading wrangler.toml, and running wrangler against
// the account that `wrangler login` or CLOUDFLARE_API_TOKEN gives. No dependency: wrangler.toml is
// read line by line (tables, arrays of tables and `key = "string"` lines are all it needs).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const ZERO_ID = "00000000-0000-0000-0000-000000000000";

/** Secrets generated here when the line in wrangler.toml doesn't list them (it normally does). */
const DEFAULT_SECRETS = ["ADMIN_TOKEN", "SECRETS_KEY"];

/**
 * The resources wrangler.toml names: the Worker, its D1 databases, every queue (producers, consumers
 * and dead-letter queues), R2 buckets, and the secrets listed on its "# Secrets ...: A, B" line.
 */
export function readWranglerToml(root) {
  const path = join(root, "wrangler.toml");
  const text = readFileSync(path, "utf8");
  const databases = [];
  const queues = new Set();
  const buckets = [];
  let name = null;
  let table = "";
  let current = null;
  for (const line of text.split("\n")) {
    const header = /^\s*\[\[?\s*([\w.]+)\s*\]\]?\s*(?:#.*)?$/.exec(line);
    if (header) {
      table = header[1];
      current = {};
      if (table === "d1_databases") databases.push(current);
      if (table === "r2_buckets") buckets.push(current);
      continue;
    }
    const pair = /^\s*([\w-]+)\s*=\s*"([^"]*)"\s*(?:#.*)?$/.exec(line);
    if (!pair) continue;
    const [, key, value] = pair;
    if (table === "" && key === "name") name = value;
    if (current) current[key] = value;
    if (table.startsWith("queues.") && (key === "queue" || key === "dead_letter_queue")) queues.add(value);
  }
  const listed = /^#\s*Secrets\b[^:\n]*:\s*([A-Z0-9_]+(?:\s*,\s*[A-Z0-9_]+)*)\s*$/m.exec(text);
  return {
    path,
    text,
    name,
    databases: databases.filter((d) => d.database_name).map((d) => ({ binding: d.binding, name: d.database_name, id: d.database_id ?? null })),
    queues: [...queues],
    buckets: buckets.filter((b) => b.bucket_name).map((b) => b.bucket_name),
    secrets: listed ? listed[1].split(",").map((s) => s.trim()) : DEFAULT_SECRETS,
  };
}

/** wrangler as `npm run` finds it (node_modules/.bin is on its PATH), else this checkout's own. */
export function wranglerCommand(root) {
  const onPath = (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(join(dir, "wrangler")));
  return onPath ? "wrangler" : join(root, "node_modules", ".bin", "wrangler");
}

/** Runs wrangler with these arguments (and stdin), quietly: answers {status, stdout, stderr}. */
export function runWrangler(root, args, input) {
  const res = spawnSync(wranglerCommand(root), args, {
    cwd: root,
    input: input ?? "",
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", NO_COLOR: "1", FORCE_COLOR: "0" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) return { status: 127, stdout: "", stderr: String(res.error) };
  return { status: res.status ?? 1, stdout: res.stdout ?? "", stderr: res.stderr ?? "" };
}

// eslint-disable-next-line no-control-regex
export const stripAnsi = (s) => s.replace(/\u001b\[[0-9;]*m/g, "");

/** The names of the Worker's secrets, or [] when the Worker does not exist yet. Throws on any other failure. */
export function secretNames(root) {
  const res = runWrangler(root, ["secret", "list", "--format", "json"]);
  const output = stripAnsi(res.stdout + res.stderr);
  if (res.status !== 0) {
    if (/Worker "[^"]*"(?: \(env: [^)]*\))? not found/.test(output) || /\b10007\b/.test(output)) return [];
    throw new WranglerFailed(["secret", "list", "--format", "json"], res);
  }
  const start = res.stdout.indexOf("[");
  return JSON.parse(res.stdout.slice(start)).map((s) => s.name);
}

export class WranglerFailed extends Error {
  constructor(args, res) {
    const said = stripAnsi(`${res.stderr}\n${res.stdout}`).trim().split("\n").slice(-12).join("\n");
    super(`\`wrangler ${args.join(" ")}\` failed (exit ${res.status}):\n${said}`);
  }
}
