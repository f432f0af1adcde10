// The R2 archive (AUDIT_HOT_DAYS, src/audit/archive.ts) and retention over it: every read path answers
// the same before and after entries move (saying when it read the archive, within its bound), the move
// copies, verifies and only then deletes, a failure injected at each step loses nothing and the next
// run finishes, and retention past the archive leaves a log whose tree and remaining entries verify.
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { applyRetention, archiveLogs, type ArchiveStep } from "../src/audit/archive";
import { SEGMENTS_PER_ANSWER } from "../src/audit/entries";
import { sealLogs } from "../src/audit/seal";
import { advanceClock, resetClock } from "../src/domain/clock";
import type { Env } from "../src/env";
import { call, countRows, createOrganisation, eventually, expectError } from "./helpers";
import { hashLeaf, unb64, verifyInclusion } from "./support/rfc9162";

type Org = Awaited<ReturnType<typeof createOrganisation>>;
type Entry = { id: number; seq: number; log: string; event_id: string } & Record<string, unknown>;
type Page = { results: Entry[]; next: string | null; archive?: { segments_read: number; partial: boolean } };

const DAY = 86_400_000;
afterEach(() => resetClock());
/** The clock `days` days after the real one (history() leaves it at its number of days). */
const at = (days: number) => {
  resetClock();
  advanceClock(days * DAY);
};

/** The Worker's env with some variables set (config is read once per env object). */
const withVars = (vars: Partial<Env>): Env => ({ ...env, ...vars }) as Env;
const hot = withVars({ AUDIT_HOT_DAYS: "1" });

/** Scheduled runs of the archive until one moves nothing (a run moves a bounded number of segments). */
async function archiveAll(target = hot, options?: Parameters<typeof archiveLogs>[1]) {
  const moved = [];
  for (;;) {
    const run = await archiveLogs(target, options);
    if (!run.length) return moved;
    moved.push(...run);
  }
}

async function get<T>(org: Org, path: string, status = 200): Promise<T> {
  const res = await call(path, { headers: org.auth });
  expect([path, res.status]).toEqual([path, status]);
  return (await res.json()) as T;
}

/**
 * An organisation whose log is `days` days of `perDay` events each (the clock moved a day between
 * them), alternating projects 1 and 2, authors 3 and 4, the log naming its day; then sealed.
 */
async function history(name: string, days: number, perDay: number): Promise<Org> {
  const org = await createOrganisation(name);
  let total = 1;
  for (let d = 0; d < days; d++) {
    const events = Array.from({ length: perDay }, (_, i) => ({
      type: "CUSTOM",
      log: `day ${d} change ${i}${d === 0 && i === 0 ? " with a rare needle" : ""}`,
      related_object: { type: i % 3 ? "NOTE" : "TICKET", id: i },
      project: { id: 1 + (i % 2), name: `P${1 + (i % 2)}` },
      author: { id: 3 + (i % 2), email: `person${i % 2}@example.com`, first_name: "P", last_name: String(i % 2) },
    }));
    const res = await call("/api/v1/events/batch", { method: "POST", headers: org.auth, json: { events } });
    expect(res.status).toBe(202);
    total += perDay;
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and fanned_out = 1", org.orgId)) === total, 30_000);
    advanceClock(DAY);
  }
  await sealLogs(env);
  return org;
}

/** Every page of a list, following `next`; with what each page said of the archive. */
async function pages(org: Org, query: string, pageSize: number) {
  const results: Entry[] = [];
  const archive: Page["archive"][] = [];
  let cursor: string | null = null;
  for (let n = 0; n < 500; n++) {
    const page: Page = await get<Page>(org, `/api/v1/audit/?${query}&page_size=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    results.push(...page.results);
    archive.push(page.archive);
    cursor = page.next;
    if (!cursor) return { results, archive };
  }
  throw new Error("the pages never ended");
}

/** The failure tests' shorter look: the list, a filter, a search. */
const FEW = ["", "project=1", "search=change%201"];

const QUERIES = [
  "",
  "project=1",
  "author=4",
  "author=person0%40example.com",
  "related_object_type=TICKET",
  "is_system_event=false",
  "search=change%201",
  "search=ay",
  "search=rare%20needle",
  "search=no%20such%20text",
  `since=${encodeURIComponent(new Date(Date.now() + 2 * DAY).toISOString())}`,
  `until=${encodeURIComponent(new Date(Date.now() + 3 * DAY).toISOString())}&project=2`,
];

/** What the API answers about the organisation's log, with the archive's notes taken out (for comparing). */
async function snapshot(org: Org, queries = QUERIES) {
  const lists: Record<string, number[]> = {};
  for (const q of queries) for (const size of [3, 200]) lists[`${q} / ${size}`] = (await pages(org, q, size)).results.map((e) => e.seq);
  const { results } = await pages(org, "", 200);
  const details = await Promise.all(results.map((e) => get<Record<string, unknown>>(org, `/api/v1/audit/${e.seq}`)));
  const ndjson = await (await call("/api/v1/audit/export?format=ndjson", { headers: org.auth })).text();
  const csv = await (await call("/api/v1/audit/export?format=csv&project=1", { headers: org.auth })).text();
  const proofs = await Promise.all(results.map((e) => get<{ leaf: string; proof: string[] }>(org, `/api/v1/audit/${e.seq}/proof`)));
  const verification = await get<Record<string, unknown>>(org, "/api/v1/audit/verify");
  const strip = ({ archive: _, ...rest }: Record<string, unknown>) => rest;
  return {
    lists,
    full: results,
    details: details.map(strip),
    ndjson,
    csv,
    proofs: proofs.map((p) => ({ leaf: p.leaf, proof: p.proof })),
    verification,
  };
}

describe("archiving to R2", () => {
  let org: Org;
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    org = await history("Archived", 12, 4);
    before = await snapshot(org);
    expect(before.full.length).toBe(49);
    expect(before.verification).toMatchObject({ ok: true, checked: 49 });
  }, 120_000);

  it("moves whole days of receipt older than AUDIT_HOT_DAYS, a segment each, and keeps the last entry in D1", async () => {
    at(12);
    // The key's entry and day 0 were received the same day; days 1..11 one each; the newest entry stays.
    const moved = await archiveAll();
    const mine = moved.filter((m) => m.orgId === org.orgId);
    expect(mine.map((m) => [m.seqLo, m.seqHi])).toEqual([[1, 5], ...Array.from({ length: 10 }, (_, d) => [6 + 4 * d, 9 + 4 * d])]);
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(49 - 45);
    const segments = (await env.DB.prepare("select key, entries, seq_lo, seq_hi from audit_segments where org_id = ? order by seq_lo").bind(org.orgId).all()).results;
    expect(segments.length).toBe(11);
    for (const s of segments as { key: string; entries: number; seq_lo: number; seq_hi: number }[]) {
      const object = await env.AUDIT_BUCKET.get(s.key);
      expect(object?.customMetadata).toMatchObject({ entries: String(s.entries), seq_lo: String(s.seq_lo), seq_hi: String(s.seq_hi) });
      // gzip, then NDJSON of the rows
      const text = await new Response(object!.body.pipeThrough(new DecompressionStream("gzip"))).text();
      expect(text.trimEnd().split("\n").map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: s.entries }, (_, i) => s.seq_lo + i));
    }
    // A second run has nothing more to move today.
    expect((await archiveLogs(hot)).filter((m) => m.orgId === org.orgId)).toEqual([]);
  });

  it("answers every list, filter, page, entry, export, proof and verification as before", async () => {
    const after = await snapshot(org);
    expect(after.lists).toEqual(before.lists);
    expect(after.full).toEqual(before.full);
    expect(after.details).toEqual(before.details);
    expect(after.ndjson).toBe(before.ndjson);
    expect(after.csv).toBe(before.csv);
    expect(after.proofs).toEqual(before.proofs);
    expect(after.verification).toEqual(before.verification);
  });

  it("says when an answer read the archive, and reads at most its bound of segments", async () => {
    const newest = await get<Page>(org, "/api/v1/audit/?page_size=2");
    expect(newest.archive).toBeUndefined(); // the newest entries are all still in D1
    const deep = await pages(org, "", 10);
    expect(deep.archive.some((a) => a && a.segments_read > 0)).toBe(true);
    for (const a of deep.archive) if (a) expect(a.segments_read).toBeLessThanOrEqual(SEGMENTS_PER_ANSWER);
    // A search matching only the oldest entry passes the other segments by, a bounded number per answer.
    const rare = await pages(org, "search=rare%20needle", 5);
    expect(rare.results.map((e) => e.log)).toEqual(["day 0 change 0 with a rare needle"]);
    expect(rare.archive[0]).toEqual({ segments_read: SEGMENTS_PER_ANSWER, partial: true });
    expect(rare.archive.length).toBeGreaterThan(1);
    const detail = await get<{ archive?: unknown }>(org, "/api/v1/audit/2");
    expect(detail.archive).toEqual({ segments_read: 1, partial: false });
    const proof = await get<{ archive?: unknown; leaf_hash: string; leaf: string }>(org, "/api/v1/audit/2/proof");
    expect(proof.archive).toEqual({ segments_read: 1, partial: false });
    expect(proof.leaf_hash).toBe(Buffer.from(await hashLeaf(proof.leaf)).toString("base64"));
    const exported = await call("/api/v1/audit/export?format=ndjson", { headers: org.auth });
    expect(exported.headers.get("flaghook-archive")).toBe("segments=11");
    await exported.text();
  });

  it("keeps numbering, idempotency and event status across the archive", async () => {
    const archivedEvent = before.full.find((e) => e.seq === 7)!.event_id;
    const status = await get<{ status: string; audit_entry_id: number }>(org, `/api/v1/events/${archivedEvent}`);
    expect([status.status, status.audit_entry_id]).toEqual(["recorded", 7]);
    // The same client id again: the same event, nothing new recorded.
    at(12);
    const again = { type: "CUSTOM", id: "client-once", log: "once", related_object: { type: "NOTE" } };
    const first = (await (await call("/api/v1/events", { method: "POST", headers: org.auth, json: again })).json()) as { event_id: string };
    await eventually(async () => (await get<{ status: string }>(org, `/api/v1/events/${first.event_id}`)).status === "recorded");
    const seq = (await get<{ audit_entry_id: number }>(org, `/api/v1/events/${first.event_id}`)).audit_entry_id;
    expect(seq).toBe(50);
    // Move it to the archive too (a newer entry stays in D1), then send it again.
    at(14);
    await call("/api/v1/events", { method: "POST", headers: org.auth, json: { type: "CUSTOM", log: "newer", related_object: { type: "NOTE" } } });
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and seq = 51 and fanned_out = 1", org.orgId)) === 1);
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and seq = 50 and fanned_out = 1", org.orgId)) === 1);
    await sealLogs(env);
    await archiveAll();
    expect(await countRows("audit_entries", "org_id = ? and seq = 50", org.orgId)).toBe(0);
    const repeat = (await (await call("/api/v1/events", { method: "POST", headers: org.auth, json: again })).json()) as { event_id: string };
    expect(repeat.event_id).toBe(first.event_id);
    await new Promise((r) => setTimeout(r, 500));
    await eventually(async () => (await env.DB.prepare("select count(*) as n from audit_event_ids where org_id = ?").bind(org.orgId).first<{ n: number }>())!.n === 51);
    expect((await get<{ audit_entry_id: number }>(org, `/api/v1/events/${first.event_id}`)).audit_entry_id).toBe(50);
    expect((await get<Entry>(org, "/api/v1/audit/50")).log).toBe("once");
  });
});

describe("a failure at each step of the move loses nothing, and the next run finishes", () => {
  const steps: ArchiveStep[] = ["read", "copy", "verify", "commit"];

  it.each(steps)("failing before %s", async (failAt) => {
    const org = await history(`Fails at ${failAt}`, 3, 3);
    const before = await snapshot(org, FEW);
    at(4);
    const attempted: ArchiveStep[] = [];
    // Runs until nothing more moves (other organisations' logs too); this one fails every time.
    await archiveAll(hot, {
      beforeStep: (step, segment) => {
        if (segment.orgId !== org.orgId) return;
        attempted.push(step);
        if (step === failAt) throw new Error(`injected failure before ${step}`);
      },
    });
    expect(attempted.slice(0, steps.indexOf(failAt) + 1)).toEqual(steps.slice(0, steps.indexOf(failAt) + 1));
    expect(attempted.filter((step) => steps.indexOf(step) > steps.indexOf(failAt))).toEqual([]);
    // Nothing left D1, no segment is indexed, every answer is as before.
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(10);
    expect(await countRows("audit_segments", "org_id = ?", org.orgId)).toBe(0);
    expect(await snapshot(org, FEW)).toEqual(before);
    // The next run moves it all (the object written again), once.
    const moved = (await archiveAll()).filter((m) => m.orgId === org.orgId);
    expect(moved.map((m) => [m.seqLo, m.seqHi])).toEqual([[1, 4], [5, 7], [8, 9]]);
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(1);
    expect(await snapshot(org, FEW)).toEqual(before);
  }, 120_000);

  it("a copy that does not read back as written is never trusted: the entries stay, the next run rewrites it", async () => {
    const org = await history("Corrupt copy", 2, 3);
    const before = await snapshot(org, FEW);
    at(3);
    await archiveAll(hot, {
      beforeStep: async (step, segment) => {
        if (segment.orgId === org.orgId && step === "verify") await env.AUDIT_BUCKET.put(segment.key, "not what was written");
      },
    });
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(7);
    expect(await countRows("audit_segments", "org_id = ?", org.orgId)).toBe(0);
    await archiveAll();
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(1);
    expect(await snapshot(org, FEW)).toEqual(before);
  }, 120_000);

  it("R2 refusing the write leaves everything in D1", async () => {
    const org = await history("R2 down", 2, 2);
    const before = await snapshot(org, FEW);
    at(3);
    const bucket = env.AUDIT_BUCKET;
    const failing = new Proxy(bucket, {
      get: (target, name) => (name === "put" ? () => Promise.reject(new Error("R2 unavailable")) : Reflect.get(target, name).bind(target)),
    });
    expect(await archiveLogs(withVars({ AUDIT_HOT_DAYS: "1", AUDIT_BUCKET: failing }))).toEqual([]);
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(5);
    expect(await snapshot(org, FEW)).toEqual(before);
  }, 120_000);

  it("a run that lost the race to another (a different range indexed first) deletes nothing", async () => {
    const org = await history("Raced", 2, 2);
    at(3);
    // Another run indexed entries 1..2 as a segment of its own in the meantime.
    await archiveLogs(hot, {
      beforeStep: async (step, segment) => {
        if (segment.orgId !== org.orgId || step !== "commit") return;
        await env.DB.prepare(
          "insert into audit_segments (org_id, seq_lo, seq_hi, key, entries, bytes, sha256, sort_min, sort_max, received_max, created_at) values (?, ?, 2, 'elsewhere', 2, 0, '', '', '', 0, 0)",
        )
          .bind(org.orgId, segment.seqLo)
          .run();
      },
    });
    expect(await countRows("audit_entries", "org_id = ? and seq <= 3", org.orgId)).toBe(3);
    expect(await countRows("audit_segments", "org_id = ? and key != 'elsewhere'", org.orgId)).toBe(0);
  }, 60_000);
});

describe("retention over the archive (AUDIT_RETENTION_DAYS)", () => {
  it("removes old segments and rows in seq order; the tree, the proofs and what is left still verify, and every answer says what is gone", async () => {
    const org = await history("Retained", 6, 2);
    const before = await snapshot(org);
    at(7);
    await archiveAll();
    expect(await countRows("audit_segments", "org_id = ?", org.orgId)).toBe(6);
    // Keep 3 days: segments received more than 3 days ago go (the key's entry and days 0..3), the object first.
    const keys = (await env.DB.prepare("select key from audit_segments where org_id = ? order by seq_lo").bind(org.orgId).all<{ key: string }>()).results.map((r) => r.key);
    // Half a day back, so the cut falls between days 3 and 4 however long the test has run.
    at(6.5);
    const removed = await applyRetention(withVars({ AUDIT_HOT_DAYS: "1", AUDIT_RETENTION_DAYS: "3" }));
    const through = removed.find((r) => r.orgId === org.orgId)!.removedThrough;
    expect(through).toBe(9);
    expect(await countRows("audit_segments", "org_id = ?", org.orgId)).toBe(2);
    for (const key of keys.slice(0, 4)) expect(await env.AUDIT_BUCKET.head(key)).toBeNull();

    const verification = await get<{ ok: boolean; checked: number; removed_through: number; problems: unknown[] }>(org, "/api/v1/audit/verify");
    expect(verification).toMatchObject({ ok: true, checked: 13 - 9, removed_through: 9, problems: [] });
    await expectError(await call("/api/v1/audit/3", { headers: org.auth }), 410, "removed_by_retention");
    // The proof of a removed entry: no leaf, its sealed hash, the same audit path as before.
    const proof = await get<{ leaf: string | null; leaf_hash: string; removed?: boolean; proof: string[]; tree_size: number }>(org, "/api/v1/audit/3/proof");
    expect([proof.leaf, proof.removed, proof.proof]).toEqual([null, true, before.proofs[before.full.findIndex((e) => e.seq === 3)].proof]);
    const root = (await get<{ root_hash: string }>(org, "/api/v1/audit/checkpoints/latest")).root_hash;
    expect(await verifyInclusion(2, proof.tree_size, unb64(proof.leaf_hash), proof.proof.map(unb64), unb64(root))).toBe(true);
    // Lists answer what is left; the export ends with the removed entries' leaf hashes.
    expect((await pages(org, "", 200)).results.map((e) => e.seq)).toEqual(before.full.map((e) => e.seq).filter((s) => s > 9));
    const exported = await call("/api/v1/audit/export?format=ndjson", { headers: org.auth });
    expect(exported.headers.get("flaghook-removed-through")).toBe("9");
    const lines = (await exported.text()).trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number; removed?: boolean; leaf_hash?: string; leaf?: string });
    expect(lines.filter((l) => l.removed).map((l) => l.seq)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    const beforeLeaves = new Map(before.ndjson.trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number; leaf: string }).map((l) => [l.seq, l.leaf]));
    for (const l of lines.filter((x) => x.removed)) expect(l.leaf_hash).toBe(Buffer.from(await hashLeaf(beforeLeaves.get(l.seq)!)).toString("base64"));
  }, 120_000);

  it("without an archive, removes rows from D1 in seq order, never the organisation's last entry", async () => {
    const org = await history("Retained in D1", 3, 2);
    at(4);
    const removed = await applyRetention(withVars({ AUDIT_RETENTION_DAYS: "1" }));
    // Everything is older than a day now, but the newest entry stays (numbering continues from it).
    expect(removed.find((r) => r.orgId === org.orgId)!.removedThrough).toBe(6);
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(1);
    await call("/api/v1/events", { method: "POST", headers: org.auth, json: { type: "CUSTOM", log: "after retention", related_object: { type: "NOTE" } } });
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and seq = 8", org.orgId)) === 1);
    await sealLogs(env);
    expect(await get<{ ok: boolean; removed_through: number; checked: number }>(org, "/api/v1/audit/verify")).toMatchObject({ ok: true, removed_through: 6, checked: 2 });
  }, 60_000);
});
