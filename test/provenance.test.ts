// Provenance (issue 11, part 1): who submitted each entry, recorded by flaghook and never taken from
// the body; only flaghook writes system events; claimed times kept, marked, and unable to pin an
// entry on top; per-organisation numbers assigned without gaps or repeats; old ids still working.
import { applyD1Migrations, createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { recordEvents } from "../src/ingest/record";
import { FLAGHOOK, type Submitter } from "../src/domain/provenance";
import type { IngestMessage } from "../src/queues";
import { ADMIN, call, countRows, createOrganisation, eventually, expectError, recorded } from "./helpers";

type Org = Awaited<ReturnType<typeof createOrganisation>>;
type Entry = { id: number; seq: number; log: string; created_date: string; received_at: string; time_warning: string | null; is_system_event: boolean; api_key_name?: string | null; submitter: Submitter | null };

async function ingest(org: Org, event: unknown): Promise<Entry> {
  const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
  expect(res.status).toBe(202);
  const { audit_entry_id } = await recorded(org.auth, ((await res.json()) as { event_id: string }).event_id);
  return (await (await call(`/api/v1/audit/${audit_entry_id}`, { headers: org.auth })).json()) as Entry;
}

async function list(org: Org, query = ""): Promise<Entry[]> {
  const res = await call(`/api/v1/audit/?page_size=200&${query}`, { headers: org.auth });
  expect(res.status).toBe(200);
  return ((await res.json()) as { results: Entry[] }).results;
}

/** A fresh organisation whose "API key created" entry has landed. */
async function organisation(name: string): Promise<Org> {
  const org = await createOrganisation(name);
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 1);
  return org;
}

const note = { type: "CUSTOM", log: "a note", related_object: { type: "NOTE" } };

describe("only flaghook writes system events", () => {
  const forged = [
    ["flaghook's own 'API key revoked' entry", { type: "CUSTOM", log: "API key revoked: ci", author: null, related_object: { type: "API_KEY", uuid: "key_x" } }],
    ["a webhook entry", { type: "CUSTOM", log: "Webhook deleted: prod", related_object: { type: "WEBHOOK" } }],
    ["an inbound source entry", { type: "CUSTOM", log: "Inbound source revoked", related_object: { type: "INBOUND_SOURCE" } }],
    ["an audit log entry", { type: "CUSTOM", log: "Audit log verification failed", related_object: { type: "AUDIT_LOG" } }],
    ["a checkpoint entry", { type: "CUSTOM", log: "checkpoint", related_object: { type: "AUDIT_CHECKPOINT" } }],
    ["a reserved type in lower case", { type: "CUSTOM", log: "x", related_object: { type: "api_key" } }],
  ] as const;

  it.each(forged)("an API key cannot write %s: 400, nothing stored", async (_, event) => {
    const org = await organisation("Forger");
    await expectError(await call("/api/v1/events", { method: "POST", headers: org.auth, json: event }), 400, "validation_failed", "related_object.type");
    await expectError(
      await call("/api/v1/events/batch", { method: "POST", headers: org.auth, json: { events: [note, event] } }),
      400,
      "validation_failed",
      "events.1.related_object.type",
    );
    // A valid event sent after them is the only one recorded.
    await ingest(org, note);
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(2);
  });

  it("an API key cannot set is_system_event: 400, nothing stored", async () => {
    const org = await organisation("Forger");
    const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: { ...note, is_system_event: true } });
    await expectError(res, 400, "validation_failed");
    await ingest(org, note);
    expect(await countRows("audit_entries", "org_id = ? and is_system_event = 1", org.orgId)).toBe(1);
  });

  it("an event without author or key name from an API key is not a system event, and says which key sent it", async () => {
    const org = await organisation("Keyed");
    const entry = await ingest(org, { type: "CUSTOM", log: "automated change", author: null, related_object: { type: "NOTE" } });
    expect(entry).toMatchObject({ is_system_event: false, submitter: { type: "api_key", id: org.keyId, name: "ci" } });
  });

  it("api_key_name is what the body claims; the submitter is the key that sent it", async () => {
    const org = await organisation("Claims");
    const entry = await ingest(org, { ...note, api_key_name: "release-bot" });
    expect([entry.api_key_name, entry.submitter]).toEqual(["release-bot", { type: "api_key", id: org.keyId, name: "ci" }]);
  });

  it("flaghook's own entries name who caused them: the operator, an API key (flaghook itself: test/delivery-consumer.test.ts)", async () => {
    const org = await organisation("Caused");
    const hook = await call(`/api/v1/organisations/${org.orgId}/webhooks`, { method: "POST", headers: org.auth, json: { url: "https://example.com/hook", event_types: ["FLAG_DELETED"] } });
    expect(hook.status).toBe(201);
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 2);
    const entries = await list(org);
    expect(entries.map((e) => [e.log.split(":")[0], e.is_system_event, e.submitter])).toEqual([
      ["Webhook created", true, { type: "api_key", id: org.keyId, name: "ci" }],
      ["API key created", true, { type: "operator", id: null, name: "operator" }],
    ]);
  });
});

describe("submitter filters", () => {
  it("submitter_type and submitter select entries by who sent them", async () => {
    const org = await organisation("Filtered");
    const second = (await (await call(`/api/v1/organisations/${org.orgId}/api-keys`, { method: "POST", headers: ADMIN, json: { name: "second" } })).json()) as { id: string; key: string };
    const other = { ...org, auth: { Authorization: `Api-Key ${second.key}` } };
    const mine = await ingest(org, { ...note, log: "from ci" });
    const theirs = await ingest(other, { ...note, log: "from second" });
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 4);
    expect((await list(org, `submitter=${org.keyId}`)).map((e) => e.seq)).toEqual([mine.seq]);
    expect((await list(org, `submitter=${second.id}`)).map((e) => e.seq)).toEqual([theirs.seq]);
    expect((await list(org, "submitter_type=api_key")).map((e) => e.seq)).toEqual([theirs.seq, mine.seq]);
    expect((await list(org, "submitter_type=operator")).map((e) => e.log)).toEqual(["API key created: second", "API key created: ci"]);
    expect(await list(org, "submitter_type=person")).toEqual([]);
    await expectError(await call("/api/v1/audit/?submitter_type=admin", { headers: org.auth }), 400, "validation_failed", "submitter_type");
    await expectError(await call("/api/v1/audit/?submitter=a%20b", { headers: org.auth }), 400, "validation_failed", "submitter");
  });
});

describe("claimed times", () => {
  it("a date in the future sorts at its receipt, below entries received later, and is marked", async () => {
    const org = await organisation("Future");
    const future = await ingest(org, { ...note, log: "from the future", occurred_at: "9999-12-31T23:59:59Z" });
    const later = await ingest(org, { ...note, log: "received later" });
    expect(future).toMatchObject({ created_date: "9999-12-31T23:59:59Z", time_warning: "ahead_of_receipt" });
    expect(later.time_warning).toBeNull();
    expect((await list(org)).map((e) => e.log)).toEqual(["received later", "from the future", "API key created: ci"]);
    // since/until select by the same time: the future entry is not "after" tomorrow.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    expect(await list(org, `since=${tomorrow}`)).toEqual([]);
  });

  it("a backdated import sorts where it happened, and is marked when older than AUDIT_MAX_PAST_DAYS", async () => {
    const org = await organisation("Backdated");
    const old = await ingest(org, { ...note, log: "imported", occurred_at: "2020-01-01T00:00:00Z" });
    const recent = await ingest(org, { ...note, log: "an hour ago", occurred_at: new Date(Date.now() - 3_600_000).toISOString() });
    expect([old.time_warning, recent.time_warning]).toEqual(["behind_receipt", null]);
    expect((await list(org)).map((e) => e.log)).toEqual(["API key created: ci", "an hour ago", "imported"]);
  });

  it("the limits are AUDIT_MAX_FUTURE_SECONDS and AUDIT_MAX_PAST_DAYS", async () => {
    const org = await organisation("Limits");
    const soon = await ingest(org, { ...note, occurred_at: new Date(Date.now() + 120_000).toISOString() });
    expect(soon.time_warning).toBeNull();
    const strict = { ...env, AUDIT_MAX_FUTURE_SECONDS: "60", AUDIT_MAX_PAST_DAYS: "0" };
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(`http://flaghook.test/api/v1/audit/${soon.seq}`, { headers: org.auth }), strict, ctx);
    await waitOnExecutionContext(ctx);
    expect(((await res.json()) as Entry).time_warning).toBe("ahead_of_receipt");
  });
});

describe("per-organisation numbers", () => {
  it("concurrent recorder batches for one organisation never repeat or skip a number", async () => {
    const org = await organisation("Concurrent");
    const message = (i: number): IngestMessage => ({
      orgId: org.orgId,
      eventId: `evt_concurrent_${i}`,
      receivedAt: Date.now(),
      event: { type: "CUSTOM", log: `entry ${i}`, related_object: { type: "NOTE", id: i } } as IngestMessage["event"],
      submitter: FLAGHOOK,
    });
    // 12 batches of 25 at once, and each batch again (a duplicate queue delivery) while they run.
    const batches = Array.from({ length: 12 }, (_, b) => Array.from({ length: 25 }, (_, i) => message(b * 25 + i)));
    await Promise.all([...batches, ...batches].map((batch) => recordEvents(env, batch)));
    const rows = (await env.DB.prepare("select seq, event_id from audit_entries where org_id = ? order by seq").bind(org.orgId).all<{ seq: number; event_id: string }>()).results;
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(301);
    // Within a batch, numbers follow the order of the messages.
    const seqOf = new Map(rows.map((r) => [r.event_id, r.seq]));
    for (const batch of batches) {
      const seqs = batch.map((m) => seqOf.get(m.eventId)!);
      expect(seqs).toEqual(Array.from({ length: 25 }, (_, i) => seqs[0] + i));
    }
  }, 60_000);

  it("two organisations count separately", async () => {
    const a = await organisation("Count A");
    const b = await organisation("Count B");
    expect((await ingest(a, note)).seq).toBe(2);
    expect((await ingest(a, note)).seq).toBe(3);
    expect((await ingest(b, note)).seq).toBe(2);
  });
});

describe("entries recorded before per-organisation numbers", () => {
  it("keep their old global id as legacy_id, and the old address redirects within the organisation", async () => {
    const a = await organisation("Legacy A");
    const b = await organisation("Legacy B");
    const entry = await ingest(a, note);
    // What migration 0004 does for entries recorded before it.
    await env.DB.prepare("update audit_entries set legacy_id = 424242 where org_id = ? and seq = ?").bind(a.orgId, entry.seq).run();
    expect((await (await call(`/api/v1/audit/${entry.seq}`, { headers: a.auth })).json()) as Entry).toMatchObject({ seq: entry.seq, legacy_id: 424242 });
    const moved = await call("/api/v1/audit/legacy/424242", { headers: a.auth, redirect: "manual" });
    expect([moved.status, moved.headers.get("location")]).toEqual([308, `/api/v1/audit/${entry.seq}`]);
    await expectError(await call("/api/v1/audit/legacy/424242/", { headers: b.auth }), 404, "not_found");
    await expectError(await call("/api/v1/audit/legacy/999999999", { headers: a.auth }), 404, "not_found");
    await expectError(await call("/api/v1/audit/legacy/abc", { headers: a.auth }), 400, "validation_failed", "old_id");
    await expectError(await call("/api/v1/audit/legacy/424242"), 401, "unauthorized");
  });

  it("migration 0008 numbers stored entries per organisation in id order and keeps their ids", async () => {
    const db = env.MIGRATION_DB;
    const before = env.TEST_MIGRATIONS.filter((m) => m.name < "0003");
    await applyD1Migrations(db, before);
    const insert = (id: number, org: number, created: string, receivedAt: number) =>
      db
        .prepare(
          `insert into audit_entries (id, org_id, event_id, type, created_date, log, related_object_type, is_system_event, event, received_at, recorded_at)
           values (?, ?, ?, 'CUSTOM', ?, 'old', 'NOTE', 0, '{}', ?, ?)`,
        )
        .bind(id, org, `evt_${id}`, created, receivedAt, receivedAt);
    const received = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    await db.batch([
      insert(3, 1, "2021-01-01T00:00:00.000000Z", received),
      insert(5, 2, "2021-01-01T00:00:00.000000Z", received),
      insert(8, 1, "2030-01-01T00:00:00.000000Z", received), // claimed future: sorts at receipt
      insert(9, 1, "2024-01-02T03:04:05.678999Z", received), // a microsecond after receipt's millisecond
    ]);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    const rows = (await db.prepare("select id, org_id, seq, legacy_id, sort_time from audit_entries order by id").all()).results;
    expect(rows).toEqual([
      { id: 3, org_id: 1, seq: 1, legacy_id: 3, sort_time: "2021-01-01T00:00:00.000000Z" },
      { id: 5, org_id: 2, seq: 1, legacy_id: 5, sort_time: "2021-01-01T00:00:00.000000Z" },
      { id: 8, org_id: 1, seq: 2, legacy_id: 8, sort_time: "2024-01-02T03:04:05.678000Z" },
      { id: 9, org_id: 1, seq: 3, legacy_id: 9, sort_time: "2024-01-02T03:04:05.678000Z" },
    ]);
    // The unique index made after numbering holds them.
    await expect(db.prepare("update audit_entries set seq = 1 where id = 8").run()).rejects.toThrow(/UNIQUE/);
  });
});
