// A stand-in for wrangler 4.86 at the one boundary that cannot run here: the Cloudflare account API.
// It keeps the "account" in a JSON file (FAKE_WRANGLER_STATE), appends every call (arguments and
// stdin) to FAKE_WRANGLER_LOG, and answers each command the way wrangler 4.86 prints it (formats read
// from node_modules/wrangler/wrangler-dist/cli.js: d1 list --json, the cli-table3 tables of queues
// list, r2 bucket list's "name: / creation_date:" blocks, secret list's JSON, the UserError and
// API-error texts). `failures` in the state makes the next matching commands fail like an API error.
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const Table = require("cli-table3");

const statePath = process.env.FAKE_WRANGLER_STATE;
const state = JSON.parse(readFileSync(statePath, "utf8"));
const args = process.argv.slice(2);
const stdin = process.stdin.isTTY ? "" : readFileSync(0, "utf8");
appendFileSync(process.env.FAKE_WRANGLER_LOG, JSON.stringify({ args, stdin }) + "\n");

const out = (s) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);
const save = () => writeFileSync(statePath, JSON.stringify(state, null, 2));
const now = () => new Date("2026-05-01T10:00:00.000Z").toISOString();
const accountId = () => (state.accounts[0] ?? { id: "0" }).id;

function userError(message) {
  process.stderr.write(`\n\u2718 [ERROR] ${message}\n\n`);
  process.exit(1);
}
function apiError(path, text, code) {
  userError(
    `A request to the Cloudflare API (/accounts/${accountId()}${path}) failed.\n\n  ${text} [code: ${code}]\n\n  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose`,
  );
}

/** The Worker's config as wrangler reads it: its name and the D1 ids (from wrangler.toml in the working directory). */
function toml() {
  const text = existsSync("wrangler.toml") ? readFileSync("wrangler.toml", "utf8") : "";
  return {
    name: /^name\s*=\s*"([^"]+)"/m.exec(text)?.[1],
    databaseId: (name) => new RegExp(`database_name\\s*=\\s*"${name}"[^]*?database_id\\s*=\\s*"([^"]+)"`).exec(text)?.[1],
  };
}

function table(rows, head = rows.length ? Object.keys(rows[0]) : []) {
  const t = new Table({ style: { head: [], border: [] }, wordWrap: false, head });
  t.push(...rows.map((r) => head.map((k) => r[k])));
  return t.toString();
}

const firstFlag = args.findIndex((a) => a.startsWith("-"));
const command = (firstFlag === -1 ? args : args.slice(0, firstFlag)).slice(0, 3).join(" ");
const failure = (state.failures ?? []).find((f) => args.join(" ").startsWith(f.command) && (f.times ?? 1) > 0);
if (failure) {
  failure.times = (failure.times ?? 1) - 1;
  save();
  apiError(failure.path ?? "/", failure.text ?? "Internal server error", failure.code ?? 10001);
}

if (args[0] === "whoami") {
  if (!state.loggedIn) {
    out(JSON.stringify({ loggedIn: false }));
    process.exit(1);
  }
  out(JSON.stringify({ loggedIn: true, authType: "OAuth Token", email: state.email, accounts: state.accounts, tokenPermissions: ["account:read", "workers:write", "d1:write"] }, null, 2));
  process.exit(0);
}
if (!state.loggedIn) {
  userError(
    "In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN environment variable for wrangler to work. Please go to https://developers.cloudflare.com/fundamentals/api/get-started/create-token/ for instructions on how to create an api token, and assign its value to CLOUDFLARE_API_TOKEN as an environment variable.",
  );
}

const flag = (name) => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};

switch (true) {
  case command === "d1 list": {
    out(JSON.stringify(state.d1, null, 2));
    break;
  }
  case command.startsWith("d1 create"): {
    const name = args[2];
    if (state.d1.some((d) => d.name === name)) apiError("/d1/database", "A database with that name already exists", 7502);
    const db = { uuid: randomUUID(), name, created_at: now(), version: "production", num_tables: 0, file_size: 12288, jurisdiction: null };
    state.d1.push(db);
    save();
    out(`\u2705 Successfully created DB '${name}' in region WEUR\nCreated your new D1 database.\n`);
    out(`To access your new D1 Database in your Worker, add the following snippet to your configuration file:\n[[d1_databases]]\nbinding = "${name.replace(/-/g, "_")}"\ndatabase_name = "${name}"\ndatabase_id = "${db.uuid}"\n`);
    break;
  }
  case command.startsWith("d1 migrations apply"): {
    const name = args[3];
    const id = toml().databaseId(name);
    const db = state.d1.find((d) => d.uuid === id);
    if (!db) apiError(`/d1/database/${id}/query`, `Couldn't find DB with ID '${id}'`, 7404);
    const applied = (state.migrations[name] ??= []);
    const all = readdirSync("migrations").filter((f) => f.endsWith(".sql")).sort();
    const todo = all.filter((f) => !applied.includes(f));
    if (!todo.length) {
      out("\u2705 No migrations to apply!");
      break;
    }
    out(`Migrations to be applied:\n${table(todo.map((m) => ({ name: m })))}`);
    out("? About to apply " + todo.length + " migration(s)\nYour database may not be available to serve requests during the migration, continue?");
    out("\u{1F916} Using fallback value in non-interactive context: yes");
    out(`\u{1F300} Executing on remote database ${name} (${db.uuid}):`);
    applied.push(...todo);
    save();
    out(table(todo.map((m) => ({ name: m, status: "\u2705" }))));
    break;
  }
  case command === "queues list": {
    const per = state.queuesPerPage ?? 100;
    const page = Number(flag("--page") ?? 1);
    const rows = state.queues.slice((page - 1) * per, page * per).map((q) => ({
      id: q.queue_id,
      name: q.queue_name,
      created_on: q.created_on,
      modified_on: q.modified_on,
      producers: String(q.producers_total_count),
      consumers: String(q.consumers_total_count),
    }));
    out(table(rows));
    break;
  }
  case command.startsWith("queues create"): {
    const name = args[2];
    if (state.queues.some((q) => q.queue_name === name)) apiError("/queues", `Queue name '${name}' is already taken`, 11009);
    state.queues.push({ queue_id: randomUUID().replace(/-/g, ""), queue_name: name, created_on: now(), modified_on: now(), producers_total_count: 0, consumers_total_count: 0 });
    save();
    out(`\u{1F300} Creating queue '${name}'\n\u2705 Created queue '${name}'\n\nConfigure your Worker to send messages to this queue:\n\n[[queues.producers]]\nqueue = "${name}"\nbinding = "${name.replace(/-/g, "_")}"\n\nConfigure your Worker to consume messages from this queue:\n\n[[queues.consumers]]\nqueue = "${name}"\n`);
    break;
  }
  case command === "r2 bucket list": {
    const blocks = state.buckets.map((b) => `name:           ${b.name}\ncreation_date:  ${b.creation_date}`);
    out(`Listing buckets...\n${blocks.join("\n\n")}`);
    break;
  }
  case command.startsWith("r2 bucket create"): {
    const name = args[3];
    if (state.buckets.some((b) => b.name === name)) apiError("/r2/buckets", "The bucket you tried to create already exists, and you own it.", 10004);
    state.buckets.push({ name, creation_date: now() });
    save();
    out(`Creating bucket '${name}'...\n\u2705 Created bucket '${name}' with default storage class of Standard.\nTo access your new R2 Bucket in your Worker, add the following snippet to your configuration file:\n[[r2_buckets]]\nbucket_name = "${name}"\nbinding = "${name.replace(/-/g, "_")}"\n`);
    break;
  }
  case command === "secret list": {
    const name = toml().name;
    const worker = state.workers[name];
    if (!worker) {
      userError(
        `Worker "${name}" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.\nOtherwise, check that the Worker name is correct and you're logged into the right account.`,
      );
    }
    out(JSON.stringify(Object.keys(worker.secrets).map((s) => ({ name: s, type: "secret_text" })), null, "  "));
    break;
  }
  case command.startsWith("secret put"): {
    const key = args[2];
    const name = toml().name;
    const value = stdin.replace(/\s+$/, "");
    if (!state.workers[name]) {
      out(`? There doesn't seem to be a Worker called "${name}". Do you want to create a new Worker with that name and add secrets to it?`);
      out("\u{1F916} Using fallback value in non-interactive context: yes");
      out(`\u{1F300} Creating new Worker "${name}"...`);
      state.workers[name] = { secrets: {}, draft: true };
    }
    out(`\u{1F300} Creating the secret for the Worker "${name}" `);
    state.workers[name].secrets[key] = value;
    save();
    out(`\u2728 Success! Uploaded secret ${key}`);
    break;
  }
  case command === "deploy": {
    const name = toml().name;
    state.workers[name] = { ...(state.workers[name] ?? { secrets: {} }), draft: false, deployed: true };
    save();
    out(`Total Upload: 1291.06 KiB / gzip: 238.12 KiB\nUploaded ${name} (3.12 sec)\nDeployed ${name} triggers (1.04 sec)\n  https://${name}.example.workers.dev\n  schedule: * * * * *\nCurrent Version ID: ${randomUUID()}`);
    break;
  }
  default:
    userError(`the stand-in wrangler does not know \`wrangler ${args.join(" ")}\``);
}
