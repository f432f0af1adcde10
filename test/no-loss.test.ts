// Nothing accepted is lost: queue sends that fail, D1 failing mid-batch, a worker dying between
// writes or before acking. Faults are injected by handing the real Worker a binding that fails.
import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import type { IngestMessage } from "../src/queues";
import { call, countRows, createOrganisation, eventually, mailbox, receiverUrl, recorded } from "./helpers";

afterEach(() => resetClock());

const failingQueue = {
  send: () => Promise.reject(new Error("queue unavailable")),
  sendBatch: () => Promise.reject(new Error("queue unavailable")),
} as unknown as Queue;

/** A D1 binding whose first `batch` call fails, as a D1 outage in the middle of a consumer batch would. */
function d1FailingOnce(): D1Database {
  let failed = false;
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "batch" && !failed) {
        failed = true;
        return () => Promise.reject(new Error("D1_ERROR: simulated outage"));
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const flagEvent = (id?: string) => ({
  ...(id ? { id } : {}),
  type: "FLAG_STATE_UPDATED",
  project: { id: 1, name: "P" },
  environment: { id: 77, name: "E" },
  feature: { id: 5, name: "no_loss" },
  new_state: { enabled: true },
});

async function environmentHook(auth: Record<string, string>, box: string) {
  const res = await call("/api/v1/environments/77/webhooks", { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${box}` } });
  expect(res.status).toBe(201);
}

const sweep = () => worker.scheduled(createScheduledController(), env, createExecutionContext());

describe("no loss", () => {
  it("records the event directly when the ingest queue refuses it, and still delivers it", async () => {
    const { auth } = await createOrganisation();
    const box = `noloss-ingest-${Date.now()}`;
    await environmentHook(auth, box);
    const req = new Request("http://flaghook.test/api/v1/events", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify(flagEvent()),
    });
    const res = await worker.fetch(req, { ...env, INGEST_QUEUE: failingQueue }, createExecutionContext());
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    const status = await recorded(auth, event_id);
    expect(status.deliveries).toHaveLength(1);
    await eventually(async () => (await mailbox(box)).count === 1);
  });

  it("answers 503 and stores nothing when neither the queue nor D1 can take the event", async () => {
    const { auth } = await createOrganisation();
    const before = await countRows("audit_entries");
    const broken = { ...env, INGEST_QUEUE: failingQueue, DB: d1FailingOnce() };
    const req = new Request("http://flaghook.test/api/v1/events", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify(flagEvent()),
    });
    const res = await worker.fetch(req, broken, createExecutionContext());
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    expect(await countRows("audit_entries")).toBe(before);
  });

  it("a delivery whose queue send failed is re-enqueued by the sweeper and arrives exactly once", async () => {
    const { auth } = await createOrganisation();
    const box = `noloss-sweep-${Date.now()}`;
    await environmentHook(auth, box);
    const req = new Request("http://flaghook.test/api/v1/events", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify(flagEvent()),
    });
    // Both queues down: the event is recorded directly and its delivery's queue send fails.
    const res = await worker.fetch(req, { ...env, INGEST_QUEUE: failingQueue, DELIVERY_QUEUE: failingQueue }, createExecutionContext());
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    const status = await recorded(auth, event_id);
    expect(status.deliveries[0].status).toBe("pending");
    await new Promise((r) => setTimeout(r, 1500));
    expect((await mailbox(box)).count).toBe(0);

    advanceClock(3 * 60_000);
    await sweep();
    await eventually(async () => (await mailbox(box)).count === 1);
    await sweep();
    advanceClock(10 * 60_000);
    await sweep();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await mailbox(box)).count).toBe(1);
  });

  it("an audit entry left without deliveries by a crash is fanned out by the sweeper", async () => {
    const { orgId, auth } = await createOrganisation();
    const box = `noloss-fanout-${Date.now()}`;
    await environmentHook(auth, box);
    const event = flagEvent();
    await env.DB.prepare(
      `insert into audit_entries (org_id, event_id, type, created_date, log, related_object_type, is_system_event, event, received_at, recorded_at, fanned_out, project_id, environment_id)
       values (?, 'evt_crashed', 'FLAG_STATE_UPDATED', '2026-01-01T00:00:00.000000Z', 'Flag state updated for feature: no_loss', 'FEATURE_STATE', 0, ?, ?, ?, 0, 1, 77)`,
    )
      .bind(orgId, JSON.stringify(event), Date.now(), Date.now())
      .run();
    advanceClock(3 * 60_000);
    await sweep();
    await eventually(async () => (await mailbox(box)).count === 1);
    expect(await countRows("audit_entries", "event_id = 'evt_crashed' and fanned_out = 1")).toBe(1);
  });

  it("the same ingest message delivered twice (consumer died before acking) records and delivers once", async () => {
    const { orgId, auth } = await createOrganisation();
    const box = `noloss-dup-${Date.now()}`;
    await environmentHook(auth, box);
    const message: IngestMessage = { orgId, eventId: "evt_duplicated", receivedAt: Date.now(), event: flagEvent() as IngestMessage["event"] };
    for (let i = 0; i < 2; i++) {
      const batch = createMessageBatch<IngestMessage>("flaghook-ingest", [{ id: `m${i}`, timestamp: new Date(), attempts: i + 1, body: message }]);
      const ctx = createExecutionContext();
      await worker.queue(batch, env, ctx);
      expect((await getQueueResult(batch, ctx)).ackAll).toBe(true);
    }
    expect(await countRows("audit_entries", "event_id = 'evt_duplicated'")).toBe(1);
    expect(await countRows("deliveries", "event_id = 'evt_duplicated'")).toBe(1);
    await eventually(async () => (await mailbox(box)).count === 1);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await mailbox(box)).count).toBe(1);
  });

  it("D1 failing in the middle of an ingest batch loses nothing and doubles nothing", async () => {
    const { orgId } = await createOrganisation();
    const messages: IngestMessage[] = [1, 2, 3].map((i) => ({
      orgId,
      eventId: `evt_midbatch_${i}`,
      receivedAt: Date.now(),
      event: flagEvent() as IngestMessage["event"],
    }));
    const batch = createMessageBatch<IngestMessage>(
      "flaghook-ingest",
      messages.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, DB: d1FailingOnce() }, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1", "m2"]);
    expect(await countRows("audit_entries", "event_id like 'evt_midbatch_%'")).toBe(3);
  });

  it("a message that cannot be recorded is retried by the queue rather than dropped", async () => {
    const { orgId } = await createOrganisation();
    let calls = 0;
    const alwaysFailing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => (calls++, Promise.reject(new Error("D1_ERROR: down")));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const body: IngestMessage = { orgId, eventId: "evt_retry_me", receivedAt: Date.now(), event: flagEvent() as IngestMessage["event"] };
    const batch = createMessageBatch<IngestMessage>("flaghook-ingest", [{ id: "m0", timestamp: new Date(), attempts: 1, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, DB: alwaysFailing }, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["m0"]);
    expect(calls).toBe(2);
  });
});

describe("retention", () => {
  it("prunes finished deliveries, their attempts and relayed-event records after DELIVERY_RETENTION_DAYS, keeps pending ones and the audit log", async () => {
    const { orgId } = await createOrganisation();
    const old = Date.now() - 31 * 86_400_000;
    for (const [id, status] of [["dlv_old_done", "delivered"], ["dlv_old_failed", "failed"], ["dlv_old_pending", "pending"]]) {
      await env.DB.prepare(
        `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
         values (?, ?, 'whk_gone', 'AUDIT_LOG_CREATED', '{}', ?, 1, 0, ?, ?, ?)`,
      )
        .bind(id, orgId, status, status === "pending" ? Date.now() + 3_600_000 : null, old, old)
        .run();
      await env.DB.prepare("insert into attempts (delivery_id, number, attempted_at, duration_ms) values (?, 1, ?, 5)").bind(id, old).run();
    }
    await env.DB.prepare(
      "insert into relayed_events (org_id, event_id, source_id, event_type, environment_id, received_at, recorded_at) values (?, 'evt_old_relayed', 'src_x', 'FLAG_UPDATED', 1, ?, ?)",
    )
      .bind(orgId, old, old)
      .run();
    // A finished delivery inside the window, inserted after them, stays: the prune reads the table's
    // head in rowid order and keeps what is not old enough.
    const young = Date.now() - 29 * 86_400_000;
    await env.DB.prepare(
      `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, created_at, updated_at)
       values ('dlv_young_done', ?, 'whk_gone', 'AUDIT_LOG_CREATED', '{}', 'delivered', 1, 0, ?, ?)`,
    )
      .bind(orgId, young, young)
      .run();
    const audit = await countRows("audit_entries");
    await sweep();
    expect(await countRows("relayed_events", "event_id = 'evt_old_relayed'")).toBe(0);
    expect(await countRows("deliveries", "id = 'dlv_young_done'")).toBe(1);
    expect(await countRows("deliveries", "id like 'dlv_old_%'")).toBe(1);
    expect(await countRows("attempts", "delivery_id like 'dlv_old_%'")).toBe(1);
    expect(await countRows("audit_entries")).toBeGreaterThanOrEqual(audit);
  });
});
