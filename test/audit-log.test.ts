// The signed audit log (issue 11): sealing into C2SP checkpoints kept in D1 and R2 and delivered as
// AUDIT_CHECKPOINT, inclusion and consistency proofs checked by an implementation of RFC 9162
// written apart from src/ (test/support/rfc9162.ts), and verification that finds tampering.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { sealLogs } from "../src/audit/seal";
import { advanceClock, resetClock } from "../src/domain/clock";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, receiverUrl } from "./helpers";
import { b64, hashLeaf, mth, unb64, verifyConsistency, verifyInclusion } from "./support/rfc9162";

type Org = Awaited<ReturnType<typeof createOrganisation>>;
interface Checkpoint {
  tree_size: number;
  root_hash: string;
  note: string;
  origin: string;
  created_at: string;
}

afterEach(() => resetClock());

const DAY = 86_400_000;
const custom = (i: number) => ({ type: "CUSTOM", log: `change ${i}`, related_object: { type: "NOTE", id: i } });

/** Ingests `n` events in batches of 100 and waits until the organisation's log holds `total` entries. */
async function grow(org: Org, n: number, total: number, offset = 0) {
  for (let start = 0; start < n; start += 100) {
    const events = Array.from({ length: Math.min(100, n - start) }, (_, i) => custom(offset + start + i));
    const res = await call("/api/v1/events/batch", { method: "POST", headers: org.auth, json: { events } });
    expect(res.status).toBe(202);
  }
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === total, 60_000);
}

async function get<T>(org: Org, path: string): Promise<T> {
  const res = await call(path, { headers: org.auth });
  expect([path, res.status]).toEqual([path, 200]);
  return (await res.json()) as T;
}

const latest = (org: Org) => get<Checkpoint>(org, "/api/v1/audit/checkpoints/latest");

/** Every NDJSON export line's leaf, in seq order. */
async function leaves(org: Org): Promise<string[]> {
  const text = await (await call("/api/v1/audit/export?format=ndjson", { headers: org.auth })).text();
  const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number; leaf: string });
  return lines.sort((a, b) => a.seq - b.seq).map((l) => l.leaf);
}

/** An organisation whose log of `n` entries (its key's creation, then n - 1 events) is sealed. */
async function sealedOrg(name: string, n: number): Promise<Org> {
  const org = await createOrganisation(name);
  await grow(org, n - 1, n);
  await sealLogs(env);
  expect((await latest(org)).tree_size).toBe(n);
  return org;
}

/** Checks a note's Ed25519 signature with the vkey the API publishes, parsed here by the C2SP format. */
async function signatureValid(org: Org, note: string): Promise<boolean> {
  const { vkey } = await get<{ vkey: string }>(org, "/api/v1/audit/public-key");
  // name+id+key: the base64 key may itself hold "+".
  const [, name, id, key] = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(vkey)!;
  const raw = unb64(key);
  expect(raw[0]).toBe(1);
  const publicKey = raw.slice(1);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array([...new TextEncoder().encode(name), 0x0a, 0x01, ...publicKey])));
  expect(id).toBe([...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(""));
  const [body, signatures] = note.split("\n\n");
  const line = signatures.split("\n").find((l) => l.startsWith(`\u2014 ${name} `))!;
  const sig = unb64(line.split(" ")[2]);
  expect(b64(sig.slice(0, 4))).toBe(b64(digest.slice(0, 4)));
  const verifier = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify("Ed25519", verifier, sig.slice(4), new TextEncoder().encode(body + "\n"));
}

describe("sealing", () => {
  it("signs a checkpoint of each organisation's log, kept in D1 and in R2, verifiable with its public key", async () => {
    const org = await createOrganisation("Sealed");
    await grow(org, 5, 6);
    await worker.scheduled(createScheduledController(), env, createExecutionContext());
    const checkpoint = await latest(org);
    const root = await mth(await Promise.all((await leaves(org)).map(hashLeaf)));
    const origin = `flaghook.test/org/${org.orgId}`;
    expect(checkpoint).toEqual({ tree_size: 6, root_hash: b64(root), origin, created_at: expect.stringMatching(/Z$/), note: expect.any(String) });
    const [body, signature] = checkpoint.note.split("\n\n");
    expect(body + "\n").toBe(`${origin}\n6\n${b64(root)}\n`);
    expect(signature).toMatch(new RegExp(`^\u2014 ${origin.replace(/\./g, "\\.")} [A-Za-z0-9+/]{91}=\\n$`));
    expect(await signatureValid(org, checkpoint.note)).toBe(true);
    expect(await signatureValid(org, checkpoint.note.replace("\n6\n", "\n5\n"))).toBe(false);

    const object = await env.AUDIT_BUCKET.get(`checkpoints/${org.orgId}/00000000000000000006.note`);
    expect(await object?.text()).toBe(checkpoint.note);
    expect(await get(org, "/api/v1/audit/checkpoints/")).toEqual({ results: [checkpoint], next: null });
  });

  it("seals again only when the log grows, or once a day so a cut log shows", async () => {
    const org = await sealedOrg("Daily", 3);
    await sealLogs(env);
    expect((await get<{ results: Checkpoint[] }>(org, "/api/v1/audit/checkpoints")).results).toHaveLength(1);
    advanceClock(DAY);
    await sealLogs(env);
    const { results } = await get<{ results: Checkpoint[] }>(org, "/api/v1/audit/checkpoints");
    // The same tree signed again: the same note (Ed25519 is deterministic), a new date, one R2 object.
    expect(results.map((c) => [c.tree_size, c.note])).toEqual([
      [3, results[1].note],
      [3, results[1].note],
    ]);
    expect(results[0].created_at > results[1].created_at).toBe(true);
    expect((await env.AUDIT_BUCKET.list({ prefix: `checkpoints/${org.orgId}/` })).objects.map((o) => o.key)).toEqual([
      `checkpoints/${org.orgId}/00000000000000000003.note`,
    ]);
    await grow(org, 2, 5);
    await sealLogs(env);
    expect((await latest(org)).tree_size).toBe(5);
  });

  it("delivers AUDIT_CHECKPOINT to the organisation webhooks subscribed to it, and only to them", async () => {
    const org = await createOrganisation("Watcher");
    const box = `checkpoints-${org.orgId}`;
    const other = `checkpoints-other-${org.orgId}`;
    for (const [name, types] of [[box, ["AUDIT_CHECKPOINT"]], [other, null]] as const) {
      const res = await call(`/api/v1/organisations/${org.orgId}/webhooks`, {
        method: "POST",
        headers: org.auth,
        json: { url: `${receiverUrl()}/hooks/${name}`, event_types: types },
      });
      expect(res.status).toBe(201);
    }
    await grow(org, 1, 4);
    await sealLogs(env);
    const checkpoint = await latest(org);
    const [delivery] = (await eventually(async () => ((await mailbox(box)).count === 1 ? mailbox(box) : null))).requests;
    expect(JSON.parse(delivery.body)).toEqual({
      data: { organisation: org.orgId, origin: checkpoint.origin, tree_size: 4, root_hash: checkpoint.root_hash, note: checkpoint.note, created_at: checkpoint.created_at },
      event_type: "AUDIT_CHECKPOINT",
    });
    await eventually(async () => (await mailbox(other)).count >= 2);
    expect((await mailbox(other)).requests.map((r) => JSON.parse(r.body).event_type)).not.toContain("AUDIT_CHECKPOINT");
  });

  it("never seals past a missing entry", async () => {
    const org = await createOrganisation("Gap");
    await grow(org, 5, 6);
    await env.DB.prepare("delete from audit_entries where org_id = ? and seq = 5").bind(org.orgId).run();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    await sealLogs(env);
    expect(errors.mock.calls.map(([line]) => String(line))).toContain(`audit log of organisation ${org.orgId} has no entry 5: sealing up to it`);
    errors.mockRestore();
    expect((await latest(org)).tree_size).toBe(4);
    // Leaves the log whole again at 4, so later seals in this file do not report the gap.
    await env.DB.prepare("delete from audit_entries where org_id = ? and seq = 6").bind(org.orgId).run();
  });

  it("answers 409 for proofs, 404 for the latest checkpoint, before the first seal", async () => {
    const org = await createOrganisation("Unsealed");
    await expectError(await call("/api/v1/audit/checkpoints/latest", { headers: org.auth }), 404, "not_found");
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 1);
    await expectError(await call("/api/v1/audit/1/proof", { headers: org.auth }), 409, "not_sealed");
    await expectError(await call("/api/v1/audit/consistency?from=1", { headers: org.auth }), 409, "not_sealed");
    expect(await get(org, "/api/v1/audit/checkpoints")).toEqual({ results: [], next: null });
  });
});

describe("proofs, checked by RFC 9162's algorithms", () => {
  let org: Org;
  let first: Checkpoint;
  let second: Checkpoint;
  let leafText: string[];

  beforeAll(async () => {
    // Two checkpoints: 301 entries, then 601, so proofs cross tiles (256 leaves) and their levels.
    org = await createOrganisation("Proofs");
    await grow(org, 300, 301);
    await sealLogs(env);
    first = await latest(org);
    await grow(org, 300, 601, 300);
    await sealLogs(env);
    second = await latest(org);
    leafText = await leaves(org);
  }, 120_000);

  it("the checkpoints' roots are the Merkle Tree Hashes of the exported leaves", async () => {
    const hashes = await Promise.all(leafText.map(hashLeaf));
    expect([first.tree_size, second.tree_size]).toEqual([301, 601]);
    expect(first.root_hash).toBe(b64(await mth(hashes.slice(0, 301))));
    expect(second.root_hash).toBe(b64(await mth(hashes)));
  });

  it("entries' inclusion proofs verify against the latest checkpoint, and against an earlier one", async () => {
    // Every 7th entry, and each side of every tile and subtree boundary.
    const sample = new Set([...Array.from({ length: 86 }, (_, i) => 1 + 7 * i), 2, 128, 129, 255, 256, 257, 511, 512, 513, 600, 601]);
    for (const seq of [...sample].sort((a, b) => a - b)) {
      const proof = await get<{ seq: number; leaf_index: number; tree_size: number; leaf: string; proof: string[] }>(org, `/api/v1/audit/${seq}/proof`);
      expect([proof.seq, proof.leaf_index, proof.tree_size, proof.leaf]).toEqual([seq, seq - 1, 601, leafText[seq - 1]]);
      const ok = await verifyInclusion(seq - 1, 601, await hashLeaf(proof.leaf), proof.proof.map(unb64), unb64(second.root_hash));
      expect([seq, ok]).toEqual([seq, true]);
    }
    for (const seq of [1, 2, 255, 256, 257, 300, 301]) {
      const proof = await get<{ leaf: string; proof: string[] }>(org, `/api/v1/audit/${seq}/proof?tree_size=301`);
      expect(await verifyInclusion(seq - 1, 301, await hashLeaf(proof.leaf), proof.proof.map(unb64), unb64(first.root_hash))).toBe(true);
    }
  }, 120_000);

  it("a proof does not verify a changed leaf", async () => {
    const proof = await get<{ leaf: string; proof: string[] }>(org, "/api/v1/audit/200/proof");
    const forged = proof.leaf.replace("change 198", "change 999");
    expect(forged).not.toBe(proof.leaf);
    expect(await verifyInclusion(199, 601, await hashLeaf(forged), proof.proof.map(unb64), unb64(second.root_hash))).toBe(false);
  });

  it("consistency proofs verify between the checkpoints, and from any earlier size", async () => {
    const between = await get<{ from: number; to: number; proof: string[] }>(org, "/api/v1/audit/consistency?from=301&to=601");
    expect([between.from, between.to]).toEqual([301, 601]);
    expect(await verifyConsistency(301, 601, unb64(first.root_hash), unb64(second.root_hash), between.proof.map(unb64))).toBe(true);
    const hashes = await Promise.all(leafText.map(hashLeaf));
    for (const m of [1, 2, 3, 128, 255, 256, 257, 511, 512, 513, 600, 601]) {
      const { proof } = await get<{ proof: string[] }>(org, `/api/v1/audit/consistency?from=${m}`);
      const ok = await verifyConsistency(m, 601, await mth(hashes.slice(0, m)), unb64(second.root_hash), proof.map(unb64));
      expect([m, ok]).toEqual([m, true]);
    }
  });

  it.each([
    ["/api/v1/audit/1/proof?tree_size=602", 400, "validation_failed", "tree_size"],
    ["/api/v1/audit/400/proof?tree_size=301", 400, "validation_failed", "tree_size"],
    ["/api/v1/audit/1/proof?tree_size=0", 400, "validation_failed", "tree_size"],
    ["/api/v1/audit/1/proof?size=3", 400, "validation_failed", undefined],
    ["/api/v1/audit/9999/proof", 404, "not_found", undefined],
    ["/api/v1/audit/consistency?from=0", 400, "validation_failed", "from"],
    ["/api/v1/audit/consistency?from=9&to=3", 400, "validation_failed", "from"],
    ["/api/v1/audit/consistency?from=3&to=700", 400, "validation_failed", "to"],
    ["/api/v1/audit/consistency", 400, "validation_failed", "from"],
    ["/api/v1/audit/verify?limit=10001", 400, "validation_failed", "limit"],
    ["/api/v1/audit/checkpoints?cursor=nope", 400, "invalid_cursor", "cursor"],
  ] as const)("%s answers %i %s", async (path, status, code, field) => {
    await expectError(await call(path, { headers: org.auth }), status, code, field);
  });

  it("answers nothing about another organisation's log, and nothing without a key", async () => {
    const other = await createOrganisation("Other");
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", other.orgId)) === 1);
    await expectError(await call("/api/v1/audit/600/proof", { headers: other.auth }), 404, "not_found");
    for (const path of ["/api/v1/audit/checkpoints/latest", "/api/v1/audit/public-key", "/api/v1/audit/1/proof", "/api/v1/audit/verify", "/api/v1/audit/consistency?from=1"]) {
      await expectError(await call(path), 401, "unauthorized");
    }
  });
});

describe("verification finds tampering after a checkpoint", () => {
  const N = 10;
  const db = () => env.DB;
  const verify = async (org: Org) => get<{ ok: boolean; tree_size: number; checked: number; problems: { seq: number | null; problem: string }[] }>(org, "/api/v1/audit/verify");

  it("an untouched log verifies", async () => {
    const org = await sealedOrg("Untouched", N);
    expect(await verify(org)).toEqual({ ok: true, tree_size: N, checked: N, removed_through: 0, from: 1, to: N, next: null, problems: [] });
  });

  it("checks a window at a time", async () => {
    const org = await sealedOrg("Windows", N);
    expect(await get(org, "/api/v1/audit/verify?from=4&limit=3")).toEqual({ ok: true, tree_size: N, checked: 3, removed_through: 0, from: 4, to: 6, next: 7, problems: [] });
  });

  it("a column edited", async () => {
    const org = await sealedOrg("Edited", N);
    await db().prepare("update audit_entries set log = 'nothing happened' where org_id = ? and seq = 3").bind(org.orgId).run();
    expect(await verify(org)).toMatchObject({ ok: false, problems: [{ seq: 3, problem: expect.stringMatching(/^changed/) }] });
  });

  it("a submitter rewritten (provenance is in the leaf)", async () => {
    const org = await sealedOrg("Reattributed", N);
    await db().prepare("update audit_entries set submitter_name = 'someone else' where org_id = ? and seq = 4").bind(org.orgId).run();
    expect((await verify(org)).problems).toEqual([{ seq: 4, problem: expect.stringMatching(/^changed/) }]);
  });

  it("a row deleted", async () => {
    const org = await sealedOrg("Deleted", N);
    await db().prepare("delete from audit_entries where org_id = ? and seq = 4").bind(org.orgId).run();
    expect((await verify(org)).problems).toEqual([{ seq: 4, problem: expect.stringMatching(/^missing/) }]);
  });

  it("a row inserted (the later ones renumbered to make room)", async () => {
    const org = await sealedOrg("Inserted", N);
    await db().batch([
      db().prepare("update audit_entries set seq = seq + 1000 where org_id = ? and seq >= 5").bind(org.orgId),
      db().prepare("update audit_entries set seq = seq - 999 where org_id = ? and seq >= 1005").bind(org.orgId),
      db()
        .prepare(
          `insert into audit_entries (org_id, seq, event_id, type, created_date, log, related_object_type, is_system_event, event, received_at, sort_time, recorded_at)
           select org_id, 5, 'evt_forged', type, created_date, 'a change nobody made', related_object_type, is_system_event, event, received_at, sort_time, recorded_at
           from audit_entries where org_id = ? and seq = 4`,
        )
        .bind(org.orgId),
    ]);
    expect((await verify(org)).problems.map((p) => p.seq)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it("two rows swapped", async () => {
    const org = await sealedOrg("Swapped", N);
    await db().batch([
      db().prepare("update audit_entries set seq = -1 where org_id = ? and seq = 2").bind(org.orgId),
      db().prepare("update audit_entries set seq = 2 where org_id = ? and seq = 6").bind(org.orgId),
      db().prepare("update audit_entries set seq = 6 where org_id = ? and seq = -1").bind(org.orgId),
    ]);
    expect((await verify(org)).problems).toEqual([
      { seq: 2, problem: expect.stringMatching(/^changed/) },
      { seq: 6, problem: expect.stringMatching(/^changed/) },
    ]);
  });

  it("the newest rows cut off", async () => {
    const org = await sealedOrg("Cut", N);
    await db().prepare("delete from audit_entries where org_id = ? and seq > ?").bind(org.orgId, N - 2).run();
    expect((await verify(org)).problems).toEqual([
      { seq: null, problem: `the log ends at entry ${N - 2} but the checkpoint covers ${N}: entries were cut off` },
      { seq: N - 1, problem: expect.stringMatching(/^missing/) },
      { seq: N, problem: expect.stringMatching(/^missing/) },
    ]);
  });

  it("the newest rows and the checkpoints covering them cut off: R2 still has the checkpoint", async () => {
    const org = await createOrganisation("Rewound");
    await grow(org, 4, 5);
    await sealLogs(env);
    await grow(org, 3, 8, 4);
    await sealLogs(env);
    await db().batch([
      db().prepare("delete from audit_entries where org_id = ? and seq > 5").bind(org.orgId),
      db().prepare("delete from audit_checkpoints where org_id = ? and tree_size = 8").bind(org.orgId),
    ]);
    expect(await verify(org)).toMatchObject({
      ok: false,
      tree_size: 5,
      problems: [{ seq: null, problem: expect.stringMatching(/^R2 keeps a checkpoint of 8 entries/) }],
    });
  });

  it("a stored tree hash replaced", async () => {
    const org = await sealedOrg("Tree", N);
    await db().prepare("update audit_tiles set hashes = zeroblob(length(hashes)) where org_id = ?").bind(org.orgId).run();
    const { problems } = await verify(org);
    expect(problems[0]).toEqual({ seq: null, problem: "the stored tree does not hash to the signed root" });
  });

  it("a checkpoint's root rewritten in D1 no longer matches its signature", async () => {
    const org = await sealedOrg("Resigned", N);
    const forged = b64(new Uint8Array(32));
    const { note } = await latest(org);
    await db()
      .prepare("update audit_checkpoints set root_hash = ?, note = ? where org_id = ?")
      .bind(forged, note.replace(/\n[A-Za-z0-9+/]{43}=\n\n/, `\n${forged}\n\n`), org.orgId)
      .run();
    expect((await verify(org)).problems[0]).toEqual({ seq: null, problem: "the latest checkpoint's signature does not verify with this deployment's key" });
  });

  it("the scheduled check records a system entry, delivers AUDIT_VERIFICATION_FAILED and says it once a day", async () => {
    const org = await createOrganisation("Alerted");
    const box = `verification-${org.orgId}`;
    const res = await call(`/api/v1/organisations/${org.orgId}/webhooks`, {
      method: "POST",
      headers: org.auth,
      json: { url: `${receiverUrl()}/hooks/${box}`, event_types: ["AUDIT_VERIFICATION_FAILED"] },
    });
    expect(res.status).toBe(201);
    await grow(org, 3, 5);
    await sealLogs(env);
    await db().prepare("update audit_entries set log = 'rewritten' where org_id = ? and seq = 3").bind(org.orgId).run();
    const run = () => worker.scheduled(createScheduledController(), env, createExecutionContext());
    // The alert is also an error log line (for the operator's log alerts); other organisations of this
    // file, tampered with above, are reported too.
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    await run();
    const lines = errors.mock.calls.map(([line]) => String(line)).filter((line) => line.startsWith("{"));
    expect(lines.map((line) => JSON.parse(line)).find((a) => a.organisation === org.orgId)).toEqual({
      alert: "audit_log_verification_failed",
      organisation: org.orgId,
      tree_size: 5,
      problems: [{ seq: 3, problem: expect.stringMatching(/^changed/) }],
    });
    const [alert] = (await eventually(async () => ((await mailbox(box)).count === 1 ? mailbox(box) : null))).requests;
    expect(JSON.parse(alert.body)).toEqual({
      data: {
        organisation: org.orgId,
        tree_size: 5,
        checked_from: 1,
        checked_to: 5,
        problems: [{ seq: 3, problem: expect.stringMatching(/^changed/) }],
        detected_at: expect.any(String),
      },
      event_type: "AUDIT_VERIFICATION_FAILED",
    });
    const entries = async () =>
      (await get<{ results: { log: string; is_system_event: boolean; submitter: unknown }[] }>(org, "/api/v1/audit/?related_object_type=AUDIT_LOG")).results;
    await eventually(async () => (await entries()).length === 1);
    expect(await entries()).toMatchObject([
      { log: "Audit log verification failed: entry 3: changed: the entry does not hash to the leaf that was sealed", is_system_event: true, submitter: { type: "flaghook" } },
    ]);
    await run();
    errors.mockRestore();
    await new Promise((r) => setTimeout(r, 500));
    expect((await mailbox(box)).count).toBe(1);
    expect(await entries()).toHaveLength(1);
  });
});
