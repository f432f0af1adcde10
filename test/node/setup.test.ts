/// <reference types="node" />
// `npm run setup` and `npm run deploy` run as a person runs them (node scripts/*.mjs in a checkout),
// against a stand-in `wrangler` on PATH (test/node/fake-wrangler) that keeps a pretend account in a
// JSON file and answers in wrangler 4.86's formats. Each test gets its own copy of wrangler.toml,
// migrations/ and scripts/, so the file edit is checked on a real copy.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..", "..");
const STAND_IN = join(import.meta.dirname, "fake-wrangler");
const ZERO = "00000000-0000-0000-0000-000000000000";
const QUEUES = ["flaghook-ingest", "flaghook-deliveries", "flaghook-ingest-dlq", "flaghook-deliveries-dlq"];
const MIGRATIONS = readFileSync(join(repo, "migrations", "meta", "_journal.json"), "utf8").match(/"tag": "[^"]+"/g)!.length;

interface Account {
  loggedIn: boolean;
  email: string;
  accounts: { id: string; name: string }[];
  d1: { uuid: string; name: string }[];
  queues: { queue_id: string; queue_name: string; created_on: string; modified_on: string; producers_total_count: number; consumers_total_count: number }[];
  queuesPerPage?: number;
  buckets: { name: string; creation_date: string }[];
  workers: Record<string, { secrets: Record<string, string>; draft?: boolean; deployed?: boolean }>;
  migrations: Record<string, string[]>;
  failures?: { command: string; times?: number; text?: string; code?: number }[];
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A checkout (its wrangler.toml, migrations and scripts) and a pretend Cloudflare account. */
function checkout(account: Partial<Account> = {}, editToml?: (toml: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), "flaghook-setup-"));
  dirs.push(dir);
  for (const part of ["wrangler.toml", "migrations", "scripts", "package.json"]) cpSync(join(repo, part), join(dir, part), { recursive: true });
  if (editToml) writeFileSync(join(dir, "wrangler.toml"), editToml(readFileSync(join(dir, "wrangler.toml"), "utf8")));
  const state: Account = {
    loggedIn: true,
    email: "ops@acme.test",
    accounts: [{ id: "a1b2c3d4e5f60718293a4b5c6d7e8f90", name: "Acme" }],
    d1: [],
    queues: [],
    buckets: [],
    workers: {},
    migrations: {},
    ...account,
  };
  writeFileSync(join(dir, "account.json"), JSON.stringify(state));
  writeFileSync(join(dir, "calls.jsonl"), "");
  const run = (script: "setup" | "deploy", ...args: string[]) => {
    const res = spawnSync(process.execPath, [join(dir, "scripts", `${script}.mjs`), ...args], {
      cwd: dir,
      encoding: "utf8",
      env: {
        PATH: `${STAND_IN}:${process.env.PATH}`,
        FAKE_WRANGLER_STATE: join(dir, "account.json"),
        FAKE_WRANGLER_LOG: join(dir, "calls.jsonl"),
        HOME: dir,
      },
    });
    return { status: res.status, stdout: res.stdout, stderr: res.stderr };
  };
  return {
    dir,
    run,
    toml: () => readFileSync(join(dir, "wrangler.toml"), "utf8"),
    account: () => JSON.parse(readFileSync(join(dir, "account.json"), "utf8")) as Account,
    setAccount: (change: (a: Account) => void) => {
      const a = JSON.parse(readFileSync(join(dir, "account.json"), "utf8")) as Account;
      change(a);
      writeFileSync(join(dir, "account.json"), JSON.stringify(a));
    },
    /** Every wrangler command run so far, as one string each ("d1 create flaghook"), and what went to stdin. */
    calls: () =>
      readFileSync(join(dir, "calls.jsonl"), "utf8")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { args: string[]; stdin: string }),
    clearCalls: () => writeFileSync(join(dir, "calls.jsonl"), ""),
  };
}

const commands = (calls: { args: string[] }[]) => calls.map((c) => c.args.join(" "));
const changes = (calls: { args: string[] }[]) =>
  commands(calls).filter((c) => /^(d1 create|queues create|r2 bucket create|secret put|d1 migrations apply|deploy)/.test(c));

describe("npm run setup", () => {
  it("creates everything on a fresh account, writes the database id into wrangler.toml and nothing else", () => {
    const c = checkout();
    const before = c.toml();
    const res = c.run("setup");
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);

    const account = c.account();
    const db = account.d1.find((d) => d.name === "flaghook")!;
    expect(db.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.toml()).toBe(before.replace(`database_id = "${ZERO}"`, `database_id = "${db.uuid}"`));
    expect(account.queues.map((q) => q.queue_name).sort()).toEqual([...QUEUES].sort());
    expect(account.migrations.flaghook).toHaveLength(MIGRATIONS);

    const secrets = account.workers.flaghook.secrets;
    expect(Object.keys(secrets).sort()).toEqual(["ADMIN_TOKEN", "AUDIT_SIGNING_KEY", "SECRETS_KEY"]);
    expect(secrets.ADMIN_TOKEN).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secrets.SECRETS_KEY, "base64")).toHaveLength(32);
    // The signed audit log's key: an Ed25519 seed, 32 bytes.
    expect(Buffer.from(secrets.AUDIT_SIGNING_KEY, "base64")).toHaveLength(32);
    expect(account.buckets.map((b) => b.name)).toEqual(["flaghook-audit"]);
    // ADMIN_TOKEN printed once, SECRETS_KEY printed with the warning to store it; no other copy of either.
    expect(res.stdout.split(secrets.ADMIN_TOKEN)).toHaveLength(2);
    expect(res.stdout.split(secrets.SECRETS_KEY)).toHaveLength(2);
    expect(res.stdout).toMatch(/SECRETS_KEY \(encrypts every webhook secret\): store this copy somewhere safe NOW/);
    // Secrets go to wrangler on stdin, never as arguments.
    for (const call of c.calls()) expect(call.args.join(" ")).not.toContain(secrets.ADMIN_TOKEN);

    expect(changes(c.calls())).toEqual([
      "d1 create flaghook",
      ...QUEUES.map((q) => `queues create ${q}`),
      "r2 bucket create flaghook-audit",
      "secret put ADMIN_TOKEN",
      "secret put SECRETS_KEY",
      "secret put AUDIT_SIGNING_KEY",
      "d1 migrations apply flaghook --remote",
    ]);
  });

  it("changes nothing when run again: no create, no secret, the same wrangler.toml", () => {
    const c = checkout();
    expect(c.run("setup").status).toBe(0);
    const toml = c.toml();
    const secrets = c.account().workers.flaghook.secrets;
    c.clearCalls();

    const again = c.run("setup");
    expect(again.status).toBe(0);
    expect(changes(c.calls())).toEqual(["d1 migrations apply flaghook --remote"]);
    expect(c.toml()).toBe(toml);
    expect(c.account().workers.flaghook.secrets).toEqual(secrets);
    expect(again.stdout).toContain("Secret ADMIN_TOKEN: set (left as it is)");
    expect(again.stdout).toContain("No migrations to apply");
    expect(again.stdout).not.toContain(secrets.ADMIN_TOKEN);
  });

  it("finds what an account already has, on later pages of the queue list too, and creates only the rest", () => {
    const other = Array.from({ length: 30 }, (_, i) => ({
      queue_id: `q${i}`,
      queue_name: `someone-else-${i}`,
      created_on: "2025-01-01T00:00:00Z",
      modified_on: "2025-01-01T00:00:00Z",
      producers_total_count: 0,
      consumers_total_count: 0,
    }));
    const ours = { ...other[0], queue_id: "q-ours", queue_name: "flaghook-deliveries-dlq" };
    const c = checkout({
      d1: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "flaghook" }],
      queues: [...other, ours],
      queuesPerPage: 20,
      workers: { flaghook: { secrets: { ADMIN_TOKEN: "kept" } } },
    });
    const res = c.run("setup");
    expect(res.status).toBe(0);
    expect(c.toml()).toContain('database_id = "11111111-2222-3333-4444-555555555555"');
    expect(commands(c.calls())).toContain("queues list --page 2");
    expect(changes(c.calls())).toEqual([
      "queues create flaghook-ingest",
      "queues create flaghook-deliveries",
      "queues create flaghook-ingest-dlq",
      "r2 bucket create flaghook-audit",
      "secret put SECRETS_KEY",
      "secret put AUDIT_SIGNING_KEY",
      "d1 migrations apply flaghook --remote",
    ]);
    expect(c.account().workers.flaghook.secrets.ADMIN_TOKEN).toBe("kept");
    expect(res.stdout).not.toMatch(/ADMIN_TOKEN \(the operator token/);
  });

  it("stops at a failed step with wrangler's own error, keeps what it did, and finishes on the next run", () => {
    const c = checkout({ failures: [{ command: "queues create flaghook-ingest-dlq", text: "Internal server error", code: 10001 }] });
    const first = c.run("setup");
    expect(first.status).toBe(1);
    expect(first.stderr).toContain("npm run setup stopped: `wrangler queues create flaghook-ingest-dlq` failed (exit 1)");
    expect(first.stderr).toContain("Internal server error [code: 10001]");
    expect(first.stderr).toContain("run npm run setup again");
    const db = c.account().d1[0];
    expect(c.toml()).toContain(`database_id = "${db.uuid}"`); // written as soon as the database existed
    expect(c.account().queues.map((q) => q.queue_name)).toEqual(["flaghook-ingest", "flaghook-deliveries"]);
    expect(c.account().workers).toEqual({}); // no secret set yet, none printed
    expect(first.stdout).not.toMatch(/ADMIN_TOKEN \(/);

    c.clearCalls();
    const second = c.run("setup");
    expect(second.status).toBe(0);
    expect(changes(c.calls())).toEqual([
      "queues create flaghook-ingest-dlq",
      "queues create flaghook-deliveries-dlq",
      "r2 bucket create flaghook-audit",
      "secret put ADMIN_TOKEN",
      "secret put SECRETS_KEY",
      "secret put AUDIT_SIGNING_KEY",
      "d1 migrations apply flaghook --remote",
    ]);
    expect(c.account().d1).toHaveLength(1);
  });

  it("prints a secret only once it is set: a failed SECRETS_KEY is made again on the next run, ADMIN_TOKEN is kept", () => {
    const c = checkout({ failures: [{ command: "secret put SECRETS_KEY" }] });
    const first = c.run("setup");
    expect(first.status).toBe(1);
    const adminToken = c.account().workers.flaghook.secrets.ADMIN_TOKEN;
    expect(adminToken).toBeTruthy();
    expect(c.account().workers.flaghook.secrets.SECRETS_KEY).toBeUndefined();
    expect(first.stdout).not.toContain("SECRETS_KEY (encrypts");
    expect(c.account().migrations.flaghook).toBeUndefined();

    c.clearCalls();
    const second = c.run("setup");
    expect(second.status).toBe(0);
    expect(changes(c.calls())).toEqual(["secret put SECRETS_KEY", "secret put AUDIT_SIGNING_KEY", "d1 migrations apply flaghook --remote"]);
    expect(c.account().workers.flaghook.secrets.ADMIN_TOKEN).toBe(adminToken);
    expect(second.stdout).toContain(c.account().workers.flaghook.secrets.SECRETS_KEY);
  });

  it("refuses a wrangler.toml that points at another database, changing nothing", () => {
    const c = checkout({ d1: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "flaghook" }] }, (t) =>
      t.replace(`database_id = "${ZERO}"`, 'database_id = "99999999-8888-7777-6666-555555555555"'),
    );
    const toml = c.toml();
    const res = c.run("setup");
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('wrangler.toml says database_id = "99999999-8888-7777-6666-555555555555" for flaghook, but this account\'s flaghook is 11111111-2222-3333-4444-555555555555');
    expect(c.toml()).toBe(toml);
    expect(changes(c.calls())).toEqual([]);
  });

  it("says how to sign in when wrangler is not logged in, and runs nothing else", () => {
    const c = checkout({ loggedIn: false });
    const res = c.run("setup");
    expect(res.status).toBe(1);
    expect(res.stderr).toContain("Not signed in to Cloudflare. Run `npx wrangler login`");
    expect(res.stderr).toContain("CLOUDFLARE_API_TOKEN");
    expect(commands(c.calls())).toEqual(["whoami --json"]);
  });

  it("asks which account when the login reaches several", () => {
    const c = checkout({ accounts: [{ id: "a1", name: "Acme" }, { id: "b2", name: "Acme Staging" }] });
    const res = c.run("setup");
    expect(res.status).toBe(1);
    expect(res.stderr).toContain("This login reaches 2 accounts. Choose one: CLOUDFLARE_ACCOUNT_ID=<id> npm run setup");
    expect(res.stderr).toContain("b2  Acme Staging");
  });

  it("creates the R2 buckets and sets the secrets that wrangler.toml lists, and any a later version adds", () => {
    const c = checkout({ buckets: [{ name: "unrelated", creation_date: "2025-01-01T00:00:00Z" }] }, (t) =>
      t
        .replace("ADMIN_TOKEN, SECRETS_KEY, AUDIT_SIGNING_KEY", "ADMIN_TOKEN, SECRETS_KEY, AUDIT_SIGNING_KEY, LATER_KEY")
        .concat('\n[[r2_buckets]]\nbinding = "LATER_BUCKET"\nbucket_name = "flaghook-later"\n'),
    );
    const res = c.run("setup");
    expect(res.status).toBe(0);
    expect(c.account().buckets.map((b) => b.name)).toEqual(["unrelated", "flaghook-audit", "flaghook-later"]);
    expect(Buffer.from(c.account().workers.flaghook.secrets.AUDIT_SIGNING_KEY, "base64")).toHaveLength(32);
    expect(Buffer.from(c.account().workers.flaghook.secrets.LATER_KEY, "base64")).toHaveLength(32);
    expect(changes(c.calls())).toContain("r2 bucket create flaghook-audit");
    expect(changes(c.calls())).toContain("r2 bucket create flaghook-later");
    c.clearCalls();
    expect(c.run("setup").status).toBe(0);
    expect(changes(c.calls())).toEqual(["d1 migrations apply flaghook --remote"]);
  });

  it("--dry-run prints every command and runs none", () => {
    const c = checkout();
    const toml = c.toml();
    const res = c.run("setup", "--dry-run");
    expect(res.status).toBe(0);
    expect(c.calls()).toEqual([]);
    expect(c.toml()).toBe(toml);
    for (const line of [
      "wrangler whoami --json",
      "wrangler d1 list --json",
      "wrangler d1 create flaghook",
      ...QUEUES.map((q) => `wrangler queues create ${q}`),
      "wrangler r2 bucket list",
      "wrangler r2 bucket create flaghook-audit",
      "wrangler secret list --format json",
      "wrangler secret put ADMIN_TOKEN",
      "wrangler secret put SECRETS_KEY",
      "wrangler secret put AUDIT_SIGNING_KEY",
      "wrangler d1 migrations apply flaghook --remote",
    ]) {
      expect(res.stdout).toContain(line);
    }
  });
});

describe("npm run deploy", () => {
  it("refuses while database_id is all zeros, before calling wrangler", () => {
    const c = checkout({ workers: { flaghook: { secrets: { ADMIN_TOKEN: "x", SECRETS_KEY: "y" } } } });
    const res = c.run("deploy");
    expect(res.status).toBe(1);
    expect(res.stderr).toContain(`npm run deploy refused: wrangler.toml has no database_id for the D1 database "flaghook" (it is still ${ZERO}). Run npm run setup first`);
    expect(c.calls()).toEqual([]);
  });

  it("refuses while a secret is unset, or the Worker does not exist yet", () => {
    const withId = (t: string) => t.replace(`database_id = "${ZERO}"`, 'database_id = "11111111-2222-3333-4444-555555555555"');
    const none = checkout({ d1: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "flaghook" }] }, withId);
    const res = none.run("deploy");
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('npm run deploy refused: the Worker "flaghook" has no ADMIN_TOKEN, SECRETS_KEY, AUDIT_SIGNING_KEY secrets. Run npm run setup');
    expect(changes(none.calls())).toEqual([]);

    const half = checkout({ d1: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "flaghook" }], workers: { flaghook: { secrets: { ADMIN_TOKEN: "x", AUDIT_SIGNING_KEY: "z" } } } }, withId);
    const res2 = half.run("deploy");
    expect(res2.status).toBe(1);
    expect(res2.stderr).toContain("has no SECRETS_KEY secret. Run npm run setup (it generates and sets them), or set it with: npx wrangler secret put SECRETS_KEY");
    expect(changes(half.calls())).toEqual([]);
  });

  it("after setup, applies the remote migrations first and then deploys", () => {
    const c = checkout();
    expect(c.run("setup").status).toBe(0);
    c.clearCalls();
    const res = c.run("deploy");
    expect(res.status).toBe(0);
    expect(changes(c.calls())).toEqual(["d1 migrations apply flaghook --remote", "deploy"]);
    expect(res.stdout).toContain("https://flaghook.example.workers.dev");
    expect(c.account().workers.flaghook.deployed).toBe(true);
  });
});
