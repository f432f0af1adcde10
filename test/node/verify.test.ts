/// <reference types="node" />
// `npm run verify`, the offline verifier, run as people run it: against a real flaghook under
// `wrangler dev` (local D1 and R2), its exports and checkpoints saved to files, the checkpoints'
// signatures also checked here with Node's crypto (outside WebCrypto), and the log then tampered
// with in the local D1 while flaghook is stopped.
import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, randomBytes, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./flaghook-dev";
import { ROOT, setLogDir, startWorker, wranglerSync } from "../../bench/lib/wrangler.mjs";

const ADMIN_TOKEN = "verify-test-admin-token";
const SEED = randomBytes(32);
const ORIGIN = "verify.test";
const CASES = ["good", "edited", "deleted", "inserted", "swapped", "cut", "retained"] as const;
type Case = (typeof CASES)[number];
const ENTRIES = 12;

const dir = mkdtempSync(join(tmpdir(), "flaghook-verify-test-"));
const persist = join(dir, "state");
let worker: Awaited<ReturnType<typeof startWorker>>;
const orgs = {} as Record<Case, { orgId: number; auth: Record<string, string> }>;

async function start() {
  const port = await freePort();
  worker = await startWorker({
    label: "verify-test",
    config: "wrangler.toml",
    port,
    inspectorPort: await freePort(),
    persistTo: persist,
    d1: "flaghook",
    proxy: false,
    readyPath: "/healthz",
    // Entries received over a day ago move to R2, over 30 days ago are removed ("retained" only: the others' are new).
    vars: { ADMIN_TOKEN, SECRETS_KEY: randomBytes(32).toString("base64"), AUDIT_SIGNING_KEY: SEED.toString("base64"), AUDIT_LOG_ORIGIN: ORIGIN, AUDIT_HOT_DAYS: "1", AUDIT_RETENTION_DAYS: "30" },
  });
}

async function api<T>(path: string, init: { method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<T> {
  const res = await fetch(worker.url + path, {
    method: init.method ?? "GET",
    headers: { ...init.headers, ...(init.json === undefined ? {} : { "content-type": "application/json" }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const seal = () => fetch(`${worker.url}/cdn-cgi/handler/scheduled`).then((r) => r.text());
const latest = (c: Case) => api<{ tree_size: number; note: string }>("/api/v1/audit/checkpoints/latest", { headers: orgs[c].auth });

/** Saves what a customer keeps: the export, the latest checkpoint, the vkey. */
async function save(c: Case, suffix = "") {
  const exportFile = join(dir, `${c}${suffix}.ndjson`);
  writeFileSync(exportFile, await (await fetch(`${worker.url}/api/v1/audit/export?format=ndjson`, { headers: orgs[c].auth })).text());
  const note = join(dir, `${c}${suffix}.note`);
  writeFileSync(note, (await latest(c)).note);
  const { vkey } = await api<{ vkey: string }>("/api/v1/audit/public-key", { headers: orgs[c].auth });
  return { exportFile, note, vkey };
}

function runVerify(args: string[]) {
  const run = spawnSync("npm", ["run", "--silent", "verify", "--", ...args], { encoding: "utf8" });
  return { status: run.status, out: run.stdout + run.stderr };
}

async function ingest(c: Case, n: number, from = 0) {
  const events = Array.from({ length: n }, (_, i) => ({ type: "CUSTOM", log: `${c} change ${from + i}`, related_object: { type: "NOTE", id: from + i } }));
  await api("/api/v1/events/batch", { method: "POST", headers: orgs[c].auth, json: { events } });
}

const count = async (c: Case) => (await api<{ results: unknown[] }>("/api/v1/audit/?page_size=200", { headers: orgs[c].auth })).results.length;

const saved = {} as Record<Case, Awaited<ReturnType<typeof save>>>;

beforeAll(async () => {
  setLogDir(join(dir, "logs"));
  await start();
  for (const c of CASES) {
    const org = await api<{ id: number }>("/api/v1/organisations", { method: "POST", headers: admin, json: { name: c } });
    const key = await api<{ key: string }>(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: admin, json: { name: "ci" } });
    orgs[c] = { orgId: org.id, auth: { Authorization: `Api-Key ${key.key}` } };
    await ingest(c, ENTRIES - 1);
  }
  for (const c of CASES) await until(async () => (await count(c)) === ENTRIES, `${c}'s entries`);
  // "retained": its first 8 entries received long ago (before anything is sealed, so their leaves say
  // so): 1..4 forty days ago (the archive, then retention, takes them), 5..8 ten days ago (archived).
  await worker.stop();
  const received = (days: number) => `received_at - ${days} * 86400000`;
  const iso = "strftime('%Y-%m-%dT%H:%M:%S', received_at / 1000, 'unixepoch') || '.' || printf('%03d', received_at % 1000) || '000Z'";
  const retained = `org_id = ${orgs.retained.orgId}`;
  wranglerSync([
    "d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", "wrangler.toml", "--command",
    [
      `update audit_entries set received_at = ${received(40)}, recorded_at = ${received(40)} where ${retained} and seq <= 4`,
      `update audit_entries set received_at = ${received(10)}, recorded_at = ${received(10)} where ${retained} and seq between 5 and 8`,
      `update audit_entries set created_date = ${iso}, sort_time = ${iso} where ${retained} and seq <= 8`,
    ].join("; "),
  ]);
  await start();
  // One scheduled run seals, then archives what is sealed and old, then applies retention.
  await seal();
  for (const c of CASES) {
    await until(async () => (await latest(c).catch(() => ({ tree_size: 0 }))).tree_size === ENTRIES, `${c}'s checkpoint`);
    saved[c] = await save(c);
  }
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run verify", () => {
  it("accepts an untouched export with its checkpoint and key", () => {
    const { exportFile, note, vkey } = saved.good;
    const run = runVerify([exportFile, "--checkpoint", note, "--key", vkey]);
    expect(run.out).toContain(`OK: entries 1..${ENTRIES} are exactly what the checkpoint signs`);
    expect(run.status).toBe(0);
  });

  it("the checkpoint's Ed25519 signature verifies with Node's crypto, under the public key of AUDIT_SIGNING_KEY", async () => {
    const { note } = await latest("good");
    const { vkey } = saved.good;
    // The public key of the seed, computed by Node from the PKCS#8 form flaghook imports.
    const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), SEED]), format: "der", type: "pkcs8" });
    const publicKey = createPublicKey(privateKey);
    const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
    const [, name, , key] = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(vkey)!;
    expect(name).toBe(`${ORIGIN}/org/${orgs.good.orgId}`);
    expect(Buffer.from(key, "base64")).toEqual(Buffer.concat([Buffer.from([1]), raw]));
    const [body, signatureLine] = note.split("\n\n");
    const signature = Buffer.from(signatureLine.trim().split(" ")[2], "base64").subarray(4);
    expect(verify(null, Buffer.from(body + "\n"), publicKey, signature)).toBe(true);
    expect(verify(null, Buffer.from(body.replace(/\n\d+\n/, "\n1\n") + "\n"), publicKey, signature)).toBe(false);
  });

  // The README's short Python verifier, as printed there, on the same files.
  const python = /The same in Python[^\n]*\n\n```python\n([\s\S]+?)```/.exec(readFileSync(join(ROOT, "README.md"), "utf8"))?.[1];
  const hasCryptography = spawnSync("python3", ["-c", "import cryptography"]).status === 0;
  it.skipIf(!hasCryptography)("the README's Python verifier accepts the untouched export and refuses an edited one", () => {
    expect(python).toBeDefined();
    const script = join(dir, "verify.py");
    writeFileSync(script, python!);
    const { exportFile, note, vkey } = saved.good;
    const ok = spawnSync("python3", [script, exportFile, note, vkey], { encoding: "utf8" });
    expect([ok.status, ok.stdout.trim()]).toEqual([0, `OK: ${ORIGIN}/org/${orgs.good.orgId}, entries 1..${ENTRIES}`]);
    const lines = readFileSync(exportFile, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    lines[2].leaf = lines[2].leaf.replace(/"log":"[^"]*"/, '"log":"edited"');
    const edited = join(dir, "edited-for-python.ndjson");
    writeFileSync(edited, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const bad = spawnSync("python3", [script, edited, note, vkey], { encoding: "utf8" });
    expect([bad.status, bad.stderr]).toEqual([1, expect.stringContaining("the entries are not what was signed")]);
  });

  it("checks a log part archived and part removed by retention: the removed entries by their leaf hashes, saying so", () => {
    const { exportFile, note, vkey } = saved.retained;
    const lines = readFileSync(exportFile, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number; removed?: boolean });
    expect(lines.map((l) => [l.seq, l.removed === true])).toEqual(Array.from({ length: ENTRIES }, (_, i) => [ENTRIES - i, ENTRIES - i <= 4]));
    const run = runVerify([exportFile, "--checkpoint", note, "--key", vkey]);
    expect(run.out).toContain("removed by retention: entries 1..4: only their sealed leaf hashes are in the export");
    expect(run.out).toContain(`OK: entries 1..${ENTRIES} are exactly what the checkpoint signs (of them, 1..4 by their leaf hashes only)`);
    expect(run.status).toBe(0);
    // A changed hash of a removed entry is found like any changed entry.
    const forged = lines.map((l) => (l.seq === 2 ? { ...l, leaf_hash: Buffer.alloc(32).toString("base64") } : l));
    const file = join(dir, "retained-forged.ndjson");
    writeFileSync(file, forged.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const bad = runVerify([file, "--checkpoint", note, "--key", vkey]);
    expect([bad.status, bad.out]).toEqual([1, expect.stringContaining("hash to")]);
    if (hasCryptography) {
      const script = join(dir, "verify-retained.py");
      writeFileSync(script, python!);
      const ok = spawnSync("python3", [script, exportFile, note, vkey], { encoding: "utf8" });
      expect([ok.status, ok.stdout.trim()]).toEqual([0, `OK: ${ORIGIN}/org/${orgs.retained.orgId}, entries 1..${ENTRIES}`]);
    }
  });

  it("with two checkpoints, checks that the first log is a prefix of the second", async () => {
    await ingest("good", 5, 100);
    await until(async () => (await count("good")) === ENTRIES + 5, "more entries");
    await seal();
    await until(async () => (await latest("good")).tree_size === ENTRIES + 5, "the second checkpoint");
    const later = await save("good", "-later");
    const run = runVerify([later.exportFile, "--checkpoint", saved.good.note, "--checkpoint", later.note, "--key", later.vkey]);
    expect(run.out).toContain(`consistent: each checkpoint's log is a prefix of the next (${ENTRIES} <= ${ENTRIES + 5} entries)`);
    expect(run.status).toBe(0);
  });

  it("refuses a checkpoint under another key, and bad usage", () => {
    const { exportFile, note } = saved.good;
    const other = runVerify([exportFile, "--checkpoint", note, "--key", saved.edited.vkey]);
    expect([other.status, other.out]).toEqual([1, expect.stringContaining(`no signature by ${ORIGIN}/org/${orgs.edited.orgId}`)]);
    const usage = runVerify([exportFile]);
    expect([usage.status, usage.out]).toEqual([2, expect.stringContaining("usage: npm run verify")]);
  });

  describe("finds tampering in D1 after the checkpoint", () => {
    beforeAll(async () => {
      await worker.stop();
      const where = (c: Case) => `org_id = ${orgs[c].orgId}`;
      const statements = [
        `update audit_entries set log = 'nothing happened' where ${where("edited")} and seq = 3`,
        `delete from audit_entries where ${where("deleted")} and seq = 4`,
        `update audit_entries set seq = seq + 1000 where ${where("inserted")} and seq >= 5`,
        `update audit_entries set seq = seq - 999 where ${where("inserted")} and seq >= 1005`,
        `insert into audit_entries (org_id, seq, event_id, type, created_date, log, related_object_type, is_system_event, event, received_at, sort_time, recorded_at, submitter_type, submitter_id, submitter_name)
           select org_id, 5, 'evt_forged', type, created_date, 'a change nobody made', related_object_type, is_system_event, event, received_at, sort_time, recorded_at, submitter_type, submitter_id, submitter_name
           from audit_entries where ${where("inserted")} and seq = 4`,
        `update audit_entries set seq = -1 where ${where("swapped")} and seq = 2`,
        `update audit_entries set seq = 2 where ${where("swapped")} and seq = 6`,
        `update audit_entries set seq = 6 where ${where("swapped")} and seq = -1`,
        `delete from audit_entries where ${where("cut")} and seq > ${ENTRIES - 2}`,
      ];
      wranglerSync(["d1", "execute", "flaghook", "--local", "--persist-to", persist, "--config", "wrangler.toml", "--command", statements.join("; ")]);
      await start();
    }, 120_000);

    const expected: [Exclude<Case, "good">, RegExp][] = [
      ["edited", /hash to .*, not to the checkpoint's root/],
      ["deleted", /entry 4 is missing from the export/],
      ["inserted", /hash to .*, not to the checkpoint's root/],
      ["swapped", /hash to .*, not to the checkpoint's root/],
      ["cut", new RegExp(`entry ${ENTRIES - 1} is missing from the export`)],
    ];

    it.each(expected)("%s rows: the offline verifier fails, and so does GET /api/v1/audit/verify", async (c, message) => {
      const { exportFile } = await save(c, "-after");
      const run = runVerify([exportFile, "--checkpoint", saved[c].note, "--key", saved[c].vkey]);
      expect(run.out).toMatch(message);
      expect(run.status).toBe(1);
      const verdict = await api<{ ok: boolean; problems: unknown[] }>("/api/v1/audit/verify", { headers: orgs[c].auth });
      expect(verdict.ok).toBe(false);
    });

    it("an export edited after it was taken fails too", () => {
      const { exportFile, note, vkey } = saved.good;
      const lines = readFileSync(exportFile, "utf8").trimEnd().split("\n");
      const line = JSON.parse(lines[1]);
      lines[1] = JSON.stringify({ ...line, log: "edited in the file" });
      const edited = join(dir, "edited-file.ndjson");
      writeFileSync(edited, lines.join("\n") + "\n");
      const run = runVerify([edited, "--checkpoint", note, "--key", vkey]);
      expect([run.status, run.out]).toEqual([1, expect.stringContaining(`entry ${line.seq}'s log differs from its leaf`)]);
    });
  });
});
