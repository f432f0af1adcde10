// Delivery health per webhook (issue 13): the hourly roll-up the consumer writes as it records
// attempts, GET .../webhooks/{id}/stats (both scopes), and `health` on every webhook.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../src/index";
import { afterEach, describe, expect, it } from "vitest";
import { advanceClock, resetClock } from "../src/domain/clock";
import { hourOf, HOUR_MS } from "../src/domain/health";
import { sweep } from "../src/delivery/sweeper";
import { HealthRollup } from "../src/health/rollup";
import { call, countRows, createOrganisation, expectError, scriptMailbox } from "./helpers";
import { consume, deliveryRow, pendingDelivery, statsOf, webhookOn } from "./health-support";

afterEach(() => resetClock());

describe("delivery health", () => {
  it("rolls a consumer run into the webhook's hour and answers the window's figures", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, {
      responses: [{ status: 200 }, { status: 200, delayMs: 300 }, { status: 500, body: "down for maintenance" }, { status: 503 }],
    });
    const fast = await pendingDelivery(hook);
    const slow = await pendingDelivery(hook);
    const last = await pendingDelivery(hook, { attempts: 3 }); // RETRY_SCHEDULE has 3 retries in tests: this attempt is its last
    const retried = await pendingDelivery(hook);
    const waiting = await pendingDelivery(hook, { ageMs: 90_000 }); // queued, not attempted yet
    // One run, the attempts one after another in the mailbox's order.
    for (const d of [fast, slow, last, retried]) await consume([d]);
    expect((await deliveryRow(last.id))!.status).toBe("failed");
    expect((await deliveryRow(retried.id))!.status).toBe("pending");

    const stats = await statsOf(hook);
    expect(stats).toMatchObject({
      window: "24h",
      health: "failing",
      deliveries: 5,
      succeeded: 2,
      failed: 1,
      pending: 2,
      success_rate: 0.6667,
      attempts: 4,
      attempts_failed: 2,
      attempts_refused: 0,
      last_failure: "HTTP 503 Service Unavailable (empty response)",
    });
    const { created_at } = (await env.DB.prepare("select created_at from deliveries where id = ?").bind(waiting.id).first<{ created_at: number }>())!;
    expect(stats.oldest_pending_at).toBe(new Date(created_at).toISOString());
    const attemptTimes = (await env.DB.prepare("select attempted_at, status_code from attempts a join deliveries d on d.id = a.delivery_id where d.webhook_id = ? order by attempted_at").bind(hook.id).all<{ attempted_at: number; status_code: number }>()).results;
    expect(stats.last_success_at).toBe(new Date(attemptTimes.filter((a) => a.status_code === 200).at(-1)!.attempted_at).toISOString());
    expect(stats.last_failure_at).toBe(new Date(attemptTimes.at(-1)!.attempted_at).toISOString());
    // Durations from the histogram: three quick answers and one that took 300 ms or more.
    expect(stats.p50_ms as number).toBeLessThan(300);
    expect(stats.p95_ms as number).toBeGreaterThanOrEqual(300);
    // Every hour of the window, the current one last, holding the run.
    expect(stats.by_hour).toHaveLength(24);
    expect(stats.by_hour.at(-1)).toEqual({ hour: new Date(hourOf(Date.now())).toISOString(), succeeded: 2, failed: 1, attempts: 4, attempts_failed: 2 });
    expect(stats.by_hour.slice(0, -1).every((h) => h.attempts === 0)).toBe(true);
    expect(new Date(stats.by_hour[0].hour).getTime()).toBe(hourOf(Date.now()) - 23 * HOUR_MS);

    const week = await statsOf(hook, "7d");
    expect(week.by_hour).toHaveLength(168);
    expect(week).toMatchObject({ window: "7d", succeeded: 2, failed: 1, attempts: 4 });
    // Four runs, one hour: one roll-up row.
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(1);
  });

  it("counts hours apart, keeps the last success and failure beyond the window, and leaves old hours out of it", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, { responses: [{ status: 500, body: "old failure" }, { status: 200 }] });
    await consume([await pendingDelivery(hook)]);
    advanceClock(2 * 86_400_000); // two days later
    await consume([await pendingDelivery(hook)]);
    const day = await statsOf(hook);
    expect(day).toMatchObject({ attempts: 1, attempts_failed: 0, succeeded: 1, health: "healthy", last_failure: "HTTP 500 Internal Server Error: old failure" });
    expect(day.last_failure_at).not.toBeNull();
    const week = await statsOf(hook, "7d");
    expect(week).toMatchObject({ attempts: 2, attempts_failed: 1, succeeded: 1 });
    expect(week.by_hour.filter((h) => h.attempts > 0).map((h) => h.attempts_failed)).toEqual([1, 0]);
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(2);
  });

  it("counts an attempt the URL policy refused as failed and refused, and leaves it out of the durations", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org); // saved while private URLs are allowed (tests' default)
    const d = await pendingDelivery(hook);
    await consume([d], { ...env, ALLOW_PRIVATE_WEBHOOK_URLS: "false" });
    expect(await statsOf(hook)).toMatchObject({
      attempts: 1,
      attempts_failed: 1,
      attempts_refused: 1,
      p50_ms: null,
      p95_ms: null,
      succeeded: 0,
      pending: 1,
      health: "failing",
      last_failure: "refused by URL policy: the URL must use https",
    });
  });

  it("a test send counts for nothing: not in the figures, and a failed one does not make the webhook failing", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, { default: { status: 500 } });
    const test = await call(`${hook.path}/test`, { method: "POST", headers: hook.auth });
    expect(await test.json()).toMatchObject({ ok: false, test: true, status_code: 500 });
    expect(await statsOf(hook)).toMatchObject({ attempts: 0, deliveries: 0, health: "healthy", last_failure: null });
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(0);
  });

  it("says healthy, failing or disabled on every webhook, in lists and alone, in both scopes", async () => {
    const org = await createOrganisation();
    const envHook = await webhookOn(org);
    const orgHook = await webhookOn(org, { organisation: true, eventTypes: ["FLAG_UPDATED"] });
    const list = async (path: string) => ((await (await call(path, { headers: org.auth })).json()) as { results: { id: string; health: string; failing_since: string | null }[] }).results;
    const envList = envHook.path.slice(0, envHook.path.lastIndexOf("/"));
    const orgList = `/api/v1/organisations/${org.orgId}/webhooks`;
    expect((await list(envList)).map((h) => [h.id, h.health, h.failing_since])).toEqual([[envHook.id, "healthy", null]]);
    expect((await list(orgList)).map((h) => [h.id, h.health])).toEqual([[orgHook.id, "healthy"]]);

    await scriptMailbox(envHook.box, { default: { status: 500 } });
    await consume([await pendingDelivery(envHook)]);
    const [failing] = await list(envList);
    expect(failing.health).toBe("failing");
    expect(Date.parse(failing.failing_since!)).toBeGreaterThan(Date.now() - 60_000);
    expect(((await (await call(envHook.path, { headers: org.auth })).json()) as { health: string }).health).toBe("failing");

    await call(orgHook.path, { method: "PATCH", headers: org.auth, json: { enabled: false } });
    expect((await list(orgList)).map((h) => h.health)).toEqual(["disabled"]);
    expect((await statsOf(orgHook)).health).toBe("disabled");

    await scriptMailbox(envHook.box, { default: { status: 200 } });
    await consume([await pendingDelivery(envHook)]);
    expect((await list(envList)).map((h) => [h.health, h.failing_since])).toEqual([["healthy", null]]);
  });

  it("answers stats in both scopes and refuses a window it does not know, another organisation, and no key", async () => {
    const org = await createOrganisation();
    const other = await createOrganisation();
    const hook = await webhookOn(org);
    const orgHook = await webhookOn(org, { organisation: true });
    expect((await statsOf(orgHook)).by_hour).toHaveLength(24);
    await expectError(await call(`${hook.path}/stats?window=1h`, { headers: org.auth }), 400, "validation_failed", "window");
    await expectError(await call(`${hook.path}/stats?since=yesterday`, { headers: org.auth }), 400, "validation_failed");
    await expectError(await call(`${hook.path}/stats`, { headers: other.auth }), 404, "not_found");
    await expectError(await call(`/api/v1/organisations/${org.orgId}/webhooks/${hook.id}/stats`, { headers: org.auth }), 404, "not_found");
    await expectError(await call(`${hook.path}/stats`), 401, "unauthorized");
    expect((await statsOf(hook)).window).toBe("24h");
  });

  it("the roll-up costs one row written per webhook and hour of a consumer run, however many attempts it counts", async () => {
    const webhookId = `whk_rollup${Date.now()}`;
    const at = Date.now();
    const run = (attempts: number) => {
      const rollup = new HealthRollup();
      for (let i = 0; i < attempts; i++) {
        rollup.add({ webhookId, attemptedAt: at + i, durationMs: 20 + i, ok: i % 5 !== 0, refused: false, final: i % 5 !== 0 ? "delivered" : null, error: i % 5 ? null : "HTTP 500" });
      }
      return rollup.statements();
    };
    const written = async (attempts: number) => {
      const [statement] = run(attempts);
      const { sql, params } = new (await import("drizzle-orm/sqlite-core")).SQLiteAsyncDialect().sqlToQuery(statement);
      return (await env.DB.prepare(sql).bind(...params).run()).meta.rows_written;
    };
    expect(await written(250)).toBe(3); // a new hour: the row and its two index entries
    expect(await written(250)).toBe(1); // every later run of the hour: one row
    expect(await written(1)).toBe(1);
    expect(await env.DB.prepare("select attempts, delivered, attempts_failed from webhook_health where webhook_id = ?").bind(webhookId).first()).toEqual({
      attempts: 501,
      delivered: 400,
      attempts_failed: 101,
    });
  });

  it("keeps the roll-up as long as deliveries, at least a week, and deletes it with its webhook", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await consume([await pendingDelivery(hook)]);
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(1);
    advanceClock(29 * 86_400_000);
    await sweep(env);
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(1);
    advanceClock(2 * 86_400_000);
    await sweep({ ...env, DELIVERY_RETENTION_DAYS: "30" });
    expect(await countRows("webhook_health", "webhook_id = ?", hook.id)).toBe(0);

    resetClock();
    const kept = await webhookOn(org);
    await consume([await pendingDelivery(kept)]);
    advanceClock(7 * 86_400_000);
    await sweep({ ...env, DELIVERY_RETENTION_DAYS: "1" });
    expect(await countRows("webhook_health", "webhook_id = ?", kept.id)).toBe(1); // within a week
    expect((await call(kept.path, { method: "DELETE", headers: org.auth })).status).toBe(204);
    expect(await countRows("webhook_health", "webhook_id = ?", kept.id)).toBe(0);
  });

  it("counts a delivery the receiver answered 410 as failed, and its webhook as disabled", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, { default: { status: 410, body: "gone" } });
    await consume([await pendingDelivery(hook)]);
    expect(await statsOf(hook)).toMatchObject({ failed: 1, attempts_failed: 1, health: "disabled", success_rate: 0 });
  });
});

describe("the bound Analytics Engine dataset", () => {
  it("gets one data point per attempt: the webhook as index, the outcome, status, duration and attempt number", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, { responses: [{ status: 500 }, { status: 200 }] });
    // The local simulation of the binding keeps nothing to read back; this dataset passes each point
    // on to it after noting it.
    const points: AnalyticsEngineDataPoint[] = [];
    const dataset: AnalyticsEngineDataset = {
      writeDataPoint(point) {
        points.push(point!);
        env.TEST_DELIVERY_ANALYTICS.writeDataPoint(point);
      },
    };
    const analytics = { ...env, DELIVERY_ANALYTICS: dataset };
    const d = await pendingDelivery(hook);
    await consume([d], analytics);
    await consume([{ id: d.id, attempt: 1 }], analytics);
    expect(points).toEqual([
      {
        indexes: [hook.id],
        blobs: ["retrying", "FLAG_UPDATED", "event", String(org.orgId), d.id, "HTTP 500 Internal Server Error (empty response)"],
        doubles: [500, expect.any(Number), 1],
      },
      { indexes: [hook.id], blobs: ["delivered", "FLAG_UPDATED", "event", String(org.orgId), d.id, ""], doubles: [200, expect.any(Number), 2] },
    ]);
    // A test send writes one too, marked as a test.
    const res = await worker.fetch(new Request(`http://flaghook.test${hook.path}/test`, { method: "POST", headers: org.auth }), analytics, createExecutionContext());
    const { delivery_id } = (await res.json()) as { delivery_id: string };
    expect(points[2]).toEqual({ indexes: [hook.id], blobs: ["delivered", "FLAG_UPDATED", "test", String(org.orgId), delivery_id, ""], doubles: [200, expect.any(Number), 1] });
  });
});

describe("migration 0014 (test sends marked)", () => {
  it("marks the test sends stored before deliveries had a kind, and nothing else", async () => {
    const { applyD1Migrations } = await import("cloudflare:test");
    const db = env.MIGRATION_DB;
    await applyD1Migrations(db, env.TEST_MIGRATIONS.filter((m) => m.name < "0014"));
    const insert = (id: string, eventId: string | null, eventType: string, payload: string) =>
      db
        .prepare(
          `insert into deliveries (id, org_id, webhook_id, audit_entry_id, event_id, event_type, payload, status, created_at, updated_at)
           values (?, 1, 'whk_1', null, ?, ?, ?, 'failed', 1, 1)`,
        )
        .bind(id, eventId, eventType, payload);
    await db.batch([
      insert("dlv_test_org", null, "AUDIT_LOG_CREATED", '{"data": {"log": "Test webhook from flaghook: audit"}, "event_type": "AUDIT_LOG_CREATED"}'),
      insert("dlv_test_env", null, "FLAG_UPDATED", '{"data": {"new_state": {"feature": {"description": "Test webhook from flaghook"}}}, "event_type": "FLAG_UPDATED"}'),
      insert("dlv_checkpoint", null, "AUDIT_CHECKPOINT", '{"data": {"tree_size": 1}, "event_type": "AUDIT_CHECKPOINT"}'),
      insert("dlv_change", "evt_1", "FLAG_UPDATED", '{"data": {"new_state": {"feature": {"description": "Test webhook from flaghook"}}}, "event_type": "FLAG_UPDATED"}'),
    ]);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect((await db.prepare("select id, kind from deliveries order by id").all()).results).toEqual([
      { id: "dlv_change", kind: "event" },
      { id: "dlv_checkpoint", kind: "event" },
      { id: "dlv_test_env", kind: "test" },
      { id: "dlv_test_org", kind: "test" },
    ]);
  });
});
