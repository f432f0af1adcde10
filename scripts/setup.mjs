// `npm run setup [-- --dry-run]`: prepares the Cloudflare account that `wrangler login` (or
// CLOUDFLARE_API_TOKEN) gives for flaghook. It creates only what is missing: the D1 database (and
// writes its id into wrangler.toml), the queues, the R2 buckets wrangler.toml names, and the Worker
// secrets it lists (generated here); then it applies the remote D1 migrations. Running it again
// changes nothing that exists. A failed step stops it; what was done is kept, so fix and re-run.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ZERO_ID, WranglerFailed, readWranglerToml, runWrangler, secretNames, stripAnsi } from "./cloudflare.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const dryRun = process.argv.includes("--dry-run");
const say = (line = "") => console.log(line);

/** How each secret is made; a secret not known here gets 32 random bytes, base64 (a key or an Ed25519 seed). */
const GENERATORS = {
  ADMIN_TOKEN: () => randomBytes(32).toString("base64url"),
  SECRETS_KEY: () => randomBytes(32).toString("base64"),
};
const generate = (name) => (GENERATORS[name] ?? (() => randomBytes(32).toString("base64")))();

function run(args, input) {
  const res = runWrangler(root, args, input);
  if (res.status !== 0) throw new WranglerFailed(args, res);
  return res.stdout;
}

function mutate(args, input) {
  say(`  $ wrangler ${args.join(" ")}${input === undefined ? "" : " < (generated value)"}`);
  return run(args, input);
}

/** Rows of a cli-table3 table (wrangler's `logger.table`), as objects keyed by the header row. */
function tableRows(text) {
  const rows = stripAnsi(text)
    .split("\n")
    .filter((l) => l.trim().startsWith("│"))
    .map((l) => l.trim().slice(1, -1).split("│").map((c) => c.trim()));
  const [head, ...body] = rows;
  return head ? body.map((cells) => Object.fromEntries(head.map((h, i) => [h, cells[i]]))) : [];
}

/** Every queue name of the account (`wrangler queues list` pages until a page brings nothing new). */
function queueNames(wanted) {
  const names = new Set();
  for (let page = 1; page <= 50; page++) {
    const found = tableRows(run(["queues", "list", "--page", String(page)])).map((r) => r.name);
    const fresh = found.filter((n) => !names.has(n));
    fresh.forEach((n) => names.add(n));
    if (!fresh.length || wanted.every((w) => names.has(w))) break;
  }
  return names;
}

/** Bucket names from `wrangler r2 bucket list` ("name:  x" / "creation_date:  ..." blocks). */
const bucketNames = (text) => new Set([...stripAnsi(text).matchAll(/^name:\s+(\S+)\s*$/gm)].map((m) => m[1]));

function checkAccount() {
  const res = runWrangler(root, ["whoami", "--json"]);
  let who = null;
  try {
    who = JSON.parse(res.stdout.slice(res.stdout.indexOf("{")));
  } catch {
    // not JSON: not logged in, or wrangler failed
  }
  if (res.status !== 0 || !who?.loggedIn) {
    throw new Error(
      "Not signed in to Cloudflare. Run `npx wrangler login` (a browser opens), or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID) to an API token that may edit Workers, D1, Queues and R2, then run `npm run setup` again.",
    );
  }
  const accounts = who.accounts ?? [];
  if (accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID) {
    const list = accounts.map((a) => `  ${a.id}  ${a.name}`).join("\n");
    throw new Error(`This login reaches ${accounts.length} accounts. Choose one: CLOUDFLARE_ACCOUNT_ID=<id> npm run setup\n${list}`);
  }
  const account = accounts.find((a) => a.id === process.env.CLOUDFLARE_ACCOUNT_ID) ?? accounts[0];
  say(`Cloudflare account: ${account ? `${account.name} (${account.id})` : "(from CLOUDFLARE_ACCOUNT_ID)"}${who.email ? `, signed in as ${who.email}` : ""}`);
}

/** The D1 database: found by name or created; its id goes into wrangler.toml (that line only). */
function database(config, db) {
  const find = () => JSON.parse(run(["d1", "list", "--json"]).replace(/^[^[]*/, "")).find((d) => d.name === db.name);
  let found = find();
  if (found) say(`D1 database ${db.name}: exists (${found.uuid})`);
  else {
    say(`D1 database ${db.name}: creating`);
    mutate(["d1", "create", db.name]);
    found = find();
    if (!found) throw new Error(`wrangler d1 create ${db.name} succeeded but \`wrangler d1 list\` does not show it; run npm run setup again`);
  }
  if (db.id === found.uuid) return;
  if (db.id && db.id !== ZERO_ID) {
    throw new Error(
      `wrangler.toml says database_id = "${db.id}" for ${db.name}, but this account's ${db.name} is ${found.uuid}. ` +
        "If wrangler.toml was set up for another account, put the zero id back (or this one) and run again.",
    );
  }
  const text = readWranglerToml(root).text;
  const edited = text.replace(
    new RegExp(`(database_name\\s*=\\s*"${db.name}"[^]*?database_id\\s*=\\s*")${ZERO_ID}(")`),
    `$1${found.uuid}$2`,
  );
  if (edited === text) throw new Error(`could not find database_id = "${ZERO_ID}" after database_name = "${db.name}" in wrangler.toml; set it to ${found.uuid} by hand`);
  writeFileSync(config.path, edited);
  say(`  wrote database_id = "${found.uuid}" into wrangler.toml`);
}

function secrets(config) {
  const present = new Set(secretNames(root));
  const made = [];
  for (const name of config.secrets) {
    if (present.has(name)) {
      say(`Secret ${name}: set (left as it is)`);
      continue;
    }
    say(`Secret ${name}: generating and setting`);
    const value = generate(name);
    mutate(["secret", "put", name], value);
    made.push([name, value]);
  }
  for (const [name, value] of made) {
    say();
    if (name === "ADMIN_TOKEN") {
      say(`ADMIN_TOKEN (the operator token; shown only now, keep it in your password manager):\n  ${value}`);
    } else if (name === "SECRETS_KEY") {
      say(`SECRETS_KEY (encrypts every webhook secret): store this copy somewhere safe NOW, for example your password manager.`);
      say(`  ${value}`);
      say("  Cloudflare never shows a secret again. Without this value a lost or changed SECRETS_KEY makes every stored webhook secret unreadable.");
    } else {
      say(`${name} (shown only now; keep a copy):\n  ${value}`);
    }
  }
}

function printPlan(config) {
  say("Dry run: these are the commands npm run setup runs (reads first; each change only if it is missing).");
  say("  wrangler whoami --json");
  for (const db of config.databases) {
    say("  wrangler d1 list --json");
    say(`  wrangler d1 create ${db.name}            # if missing; then its id is written into wrangler.toml`);
  }
  say("  wrangler queues list --page 1             # more pages while they bring new names");
  for (const q of config.queues) say(`  wrangler queues create ${q}   # if missing`);
  if (config.buckets.length) say("  wrangler r2 bucket list");
  for (const b of config.buckets) say(`  wrangler r2 bucket create ${b}   # if missing`);
  say("  wrangler secret list --format json");
  for (const s of config.secrets) say(`  wrangler secret put ${s} < (generated)   # if not set`);
  for (const db of config.databases) say(`  wrangler d1 migrations apply ${db.name} --remote`);
}

function setup() {
  const config = readWranglerToml(root);
  if (dryRun) return printPlan(config);
  checkAccount();
  for (const db of config.databases) database(config, db);

  const queues = queueNames(config.queues);
  for (const q of config.queues) {
    if (queues.has(q)) say(`Queue ${q}: exists`);
    else {
      say(`Queue ${q}: creating`);
      mutate(["queues", "create", q]);
    }
  }

  if (config.buckets.length) {
    const buckets = bucketNames(run(["r2", "bucket", "list"]));
    for (const b of config.buckets) {
      if (buckets.has(b)) say(`R2 bucket ${b}: exists`);
      else {
        say(`R2 bucket ${b}: creating`);
        mutate(["r2", "bucket", "create", b]);
      }
    }
  }

  secrets(config);

  for (const db of config.databases) {
    say(`\nD1 migrations (${db.name}, remote):`);
    const out = mutate(["d1", "migrations", "apply", db.name, "--remote"]);
    for (const line of stripAnsi(out).split("\n")) if (line.trim()) say(`    ${line}`);
  }
  say("\nDone. Deploy with: npm run deploy");
}

try {
  setup();
} catch (err) {
  console.error(`\nnpm run setup stopped: ${err instanceof Error ? err.message : String(err)}`);
  console.error("Everything done before this step is kept; fix the cause and run npm run setup again.");
  process.exit(1);
}
