// `npm run deploy`: remote D1 migrations first, then `wrangler deploy`, but only once wrangler.toml
// points at a real database and the Worker has every secret it needs (npm run setup does both).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ZERO_ID, WranglerFailed, readWranglerToml, secretNames, wranglerCommand } from "./cloudflare.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));

function refuse(message) {
  console.error(`npm run deploy refused: ${message}`);
  process.exit(1);
}

const config = readWranglerToml(root);
for (const db of config.databases) {
  if (!db.id || db.id === ZERO_ID) {
    refuse(`wrangler.toml has no database_id for the D1 database "${db.name}" (it is still ${ZERO_ID}). Run npm run setup first: it creates the database and writes its id.`);
  }
}
let present;
try {
  present = new Set(secretNames(root));
} catch (err) {
  refuse(err instanceof WranglerFailed ? err.message : String(err));
}
const missing = config.secrets.filter((s) => !present.has(s));
if (missing.length) {
  refuse(
    `the Worker "${config.name}" has no ${missing.join(", ")} secret${missing.length > 1 ? "s" : ""}. Run npm run setup (it generates and sets them), or set ${missing.length > 1 ? "each" : "it"} with: npx wrangler secret put ${missing[0]}`,
  );
}

const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
for (const args of [...config.databases.map((db) => ["d1", "migrations", "apply", db.name, "--remote"]), ["deploy", ...process.argv.slice(2)]]) {
  console.log(`$ wrangler ${args.join(" ")}`);
  const res = spawnSync(wranglerCommand(root), args, { cwd: root, stdio: "inherit", env });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
