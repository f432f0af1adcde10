// The delivery consumer against a real receiver: what each answer does to the delivery, its attempts,
// its schedule and its webhook. Messages are handed to worker.queue() as the runtime would.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import type { DeliveryMessage, DeliveryRef } from "../src/queues";
import { call, countRows, createOrganisation, mailbox, receiverUrl, scriptMailbox } from "./helpers";

const PRODUCTION_SCHEDULE = { ...env, RETRY_SCHEDULE: "5,300,1800,7200,18000,36000,36000", RETRY_THROTTLE_FLOOR_SECONDS: "60" };
const BODY = '{"data": {"log": "hello"}, "event_type": "AUDIT_LOG_CREATED"}';
let n = 0;

afterEach(() => resetClock());

/**
 * An environment webhook pointing at a fresh mailbox, and one pending delivery to it. (An
 * organisation webhook would also receive its own "Webhook created" audit entry in the background.)
 */
async function pendingDelivery(opts: { attemptCount?: number; url?: string } = {}) {
  const environmentId = ++n;
  const box = `consumer-${environmentId}-${Date.now()}`;
  const { orgId, auth } = await createOrganisation();
  const hook = (await (
    await call(`/api/v1/environments/${environmentId}/webhooks`, {
      method: "POST",
      headers: auth,
      json: { url: opts.url ?? `${receiverUrl()}/hooks/${box}`, secret: "whsec_" + btoa("0123456789abcdef0123456789abcdef") },
    })
  ).json()) as { id: string; secret: string };
  const id = `dlv_test${environmentId}x${Date.now()}`;
  const attemptCount = opts.attemptCount ?? 0;
  await env.DB.prepare(
    `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
     values (?, ?, ?, 'AUDIT_LOG_CREATED', ?, 'pending', ?, 0, ?, ?, ?)`,
  )
    .bind(id, orgId, hook.id, BODY, attemptCount, Date.now(), Date.now(), Date.now())
    .run();
  return { id, box, hook, orgId, auth, attemptCount, hookPath: `/api/v1/environments/${environmentId}/webhooks/${hook.id}` };
}

/** Hands the consumer one queue message per ref, as the runtime would. */
async function consume(refs: DeliveryRef[], workerEnv: typeof env = PRODUCTION_SCHEDULE) {
  const batch = createMessageBatch<DeliveryMessage>(
    "flaghook-deliveries",
    refs.map((ref, i) => ({ id: `msg-${i}`, timestamp: new Date(), attempts: 1, body: { deliveries: [ref] } })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, workerEnv, ctx);
  return getQueueResult(batch, ctx);
}

const delivery = (id: string) =>
  env.DB.prepare("select * from deliveries where id = ?").bind(id).first<{
    status: string;
    attempt_count: number;
    next_attempt_at: number | null;
    last_status_code: number | null;
    last_error: string | null;
  }>();
const attemptsOf = (id: string) =>
  env.DB.prepare("select * from attempts where delivery_id = ? order by number").bind(id).all<{
    number: number;
    attempted_at: number;
    status_code: number | null;
    duration_ms: number;
    error: string | null;
    response_body: string | null;
  }>().then((r) => r.results);

/** Seconds between the attempt and the next one scheduled. */
async function scheduledDelay(id: string) {
  const [last] = (await attemptsOf(id)).slice(-1);
  return ((await delivery(id))!.next_attempt_at! - last.attempted_at) / 1000;
}

describe("delivery consumer", () => {
  it("a 2xx marks the delivery delivered, stores the attempt with the response excerpt, and acks", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 202, body: "thanks" } });
    const result = await consume([{ id: d.id, attempt: 0 }]);
    expect(result.ackAll).toBe(true);
    expect(result.retryMessages).toEqual([]);
    expect(await delivery(d.id)).toMatchObject({ status: "delivered", attempt_count: 1, last_status_code: 202, next_attempt_at: null });
    const [attempt] = await attemptsOf(d.id);
    expect(attempt).toMatchObject({ number: 1, status_code: 202, error: null, response_body: "thanks" });
    const { requests } = await mailbox(d.box);
    expect(requests).toHaveLength(1);
    expect(requests[0].body).toBe(BODY);
    expect(requests[0].headers["webhook-id"]).toBe(d.id);
  });

  it("still reads a message of the older one-delivery shape (queued before a deploy)", async () => {
    const d = await pendingDelivery();
    const batch = createMessageBatch<unknown>("flaghook-deliveries", [{ id: "legacy", timestamp: new Date(), attempts: 1, body: { id: d.id, attempt: 0 } }]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<DeliveryMessage>, PRODUCTION_SCHEDULE, ctx);
    expect((await getQueueResult(batch, ctx)).ackAll).toBe(true);
    expect(await delivery(d.id)).toMatchObject({ status: "delivered", attempt_count: 1 });
  });

  it("keeps only the first 2 KiB of a response body", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 200, body: "x".repeat(10_000) } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect((await attemptsOf(d.id))[0].response_body).toBe("x".repeat(2048));
  });

  it("a 500 is retried after 5 s +-20%", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 500, body: "boom" } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "pending", attempt_count: 1, last_status_code: 500 });
    const delay = await scheduledDelay(d.id);
    expect(delay).toBeGreaterThanOrEqual(4);
    expect(delay).toBeLessThanOrEqual(6);
  });

  it("the third attempt waits 1800 s +-20%", async () => {
    const d = await pendingDelivery({ attemptCount: 2 });
    await scriptMailbox(d.box, { default: { status: 502 } });
    await consume([{ id: d.id, attempt: 2 }]);
    const delay = await scheduledDelay(d.id);
    expect(delay).toBeGreaterThanOrEqual(1440);
    expect(delay).toBeLessThanOrEqual(2160);
  });

  it("a timeout is recorded as such and waits at least 60 s", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 200, delayMs: 3000 } }); // DELIVERY_TIMEOUT_MS is 2000 in tests
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "pending", last_status_code: null, last_error: "timed out after 2000 ms" });
    expect(await scheduledDelay(d.id)).toBeGreaterThanOrEqual(60);
  });

  it("a refused connection is retried on the normal schedule", async () => {
    const d = await pendingDelivery({ url: "http://127.0.0.1:9/hooks/nobody" });
    await consume([{ id: d.id, attempt: 0 }]);
    const row = await delivery(d.id);
    expect(row).toMatchObject({ status: "pending", last_status_code: null });
    expect(row!.last_error).toBe("connection refused: nothing accepts connections on 127.0.0.1:9");
    expect(await scheduledDelay(d.id)).toBeLessThanOrEqual(6);
  });

  it("a connection reset mid-request is retried", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { reset: true } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "pending", attempt_count: 1, last_status_code: null });
    expect((await delivery(d.id))!.last_error).toMatch(/^closed before answering: /);
  });

  it("a 429 waits at least 60 s even when Retry-After asks for less", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 429, headers: { "retry-after": "7" } } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await scheduledDelay(d.id)).toBe(60);
  });

  it("Retry-After is honoured within [delay, 2 x delay]", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 503, headers: { "retry-after": "9" } } });
    await consume([{ id: d.id, attempt: 0 }]);
    const delay = await scheduledDelay(d.id);
    expect(delay).toBeGreaterThanOrEqual(8); // 2 x the jittered 4..6 s
    expect(delay).toBeLessThanOrEqual(9);

    const e = await pendingDelivery();
    await scriptMailbox(e.box, { default: { status: 503, headers: { "retry-after": "86400" } } });
    await consume([{ id: e.id, attempt: 0 }]);
    expect(await scheduledDelay(e.id)).toBeLessThanOrEqual(12);
  });

  it("a redirect is not followed and is retried", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 301, headers: { location: `${receiverUrl()}/hooks/${d.box}-elsewhere` } } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "pending", last_status_code: 301 });
    expect((await delivery(d.id))!.last_error).toMatch(/redirect .* not followed/);
    expect((await mailbox(`${d.box}-elsewhere`)).count).toBe(0);
  });

  it("410 Gone fails the delivery, disables the webhook and audits why", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 410 } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "failed", last_status_code: 410 });
    const hook = (await (await call(d.hookPath, { headers: d.auth })).json()) as {
      enabled: boolean;
      disabled_reason: string;
    };
    expect(hook).toMatchObject({ enabled: false, disabled_reason: "receiver answered 410 Gone" });
    // Nobody but flaghook did it: the entry's submitter is flaghook.
    await expect
      .poll(async () => countRows("audit_entries", "org_id = ? and log like 'Webhook disabled:%' and is_system_event = 1 and submitter_type = 'flaghook'", d.orgId), { timeout: 15_000 })
      .toBe(1);
  });

  it("the eighth failed attempt marks the delivery failed, with nothing scheduled", async () => {
    const d = await pendingDelivery({ attemptCount: 7 });
    await scriptMailbox(d.box, { default: { status: 500 } });
    await consume([{ id: d.id, attempt: 7 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "failed", attempt_count: 8, next_attempt_at: null });
  });

  it("a run makes at most 16 attempts at once and still makes them all", async () => {
    const first = await pendingDelivery();
    await scriptMailbox(first.box, { default: { status: 200, delayMs: 150 } });
    const ids = [first.id];
    for (let i = 1; i < 40; i++) {
      const id = `${first.id}-${i}`;
      await env.DB.prepare(
        `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
         select ?, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at from deliveries where id = ?`,
      )
        .bind(id, first.id)
        .run();
      ids.push(id);
    }
    await consume(ids.map((id) => ({ id, attempt: 0 })));
    const box = await mailbox(first.box);
    expect(box.count).toBe(40);
    expect(box.maxInFlight).toBeGreaterThan(1);
    expect(box.maxInFlight).toBeLessThanOrEqual(16);
    expect(await countRows("deliveries", "id like ? and status = 'delivered'", `${first.id}%`)).toBe(40);
  });

  it("a stale copy in the same batch as the current message does not hide it", async () => {
    const d = await pendingDelivery({ attemptCount: 1 });
    const result = await consume([{ id: d.id, attempt: 1 }, { id: d.id, attempt: 0 }]);
    expect(result.ackAll).toBe(true);
    expect((await mailbox(d.box)).count).toBe(1);
    expect(await delivery(d.id)).toMatchObject({ status: "delivered", attempt_count: 2 });
  });

  it("a duplicate message for a delivered delivery sends nothing", async () => {
    const d = await pendingDelivery();
    await consume([{ id: d.id, attempt: 0 }]);
    await consume([{ id: d.id, attempt: 0 }]);
    await consume([{ id: d.id, attempt: 0 }, { id: d.id, attempt: 0 }]);
    expect((await mailbox(d.box)).count).toBe(1);
    expect(await attemptsOf(d.id)).toHaveLength(1);
  });

  it("a stale message (an attempt already made) sends nothing", async () => {
    const d = await pendingDelivery({ attemptCount: 3 });
    await consume([{ id: d.id, attempt: 2 }]);
    expect((await mailbox(d.box)).count).toBe(0);
  });

  it("every attempt carries a fresh webhook-timestamp and the same webhook-id and body", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { responses: [{ status: 500 }], default: { status: 200 } });
    await consume([{ id: d.id, attempt: 0 }]);
    advanceClock(10_000);
    await consume([{ id: d.id, attempt: 1 }]);
    const [first, second] = (await mailbox(d.box)).requests;
    expect(second.headers["webhook-id"]).toBe(first.headers["webhook-id"]);
    expect(second.body).toBe(first.body);
    expect(Number(second.headers["webhook-timestamp"]) - Number(first.headers["webhook-timestamp"])).toBeGreaterThanOrEqual(10);
    expect(second.headers["x-flagsmith-signature"]).toBe(first.headers["x-flagsmith-signature"]);
  });

  it("a webhook whose deliveries all failed for 5 days is disabled with a system audit entry", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { default: { status: 500 } });
    await consume([{ id: d.id, attempt: 0 }]);
    const since = await env.DB.prepare("select failing_since from webhooks where id = ?").bind(d.hook.id).first<number>("failing_since");
    expect(since).not.toBeNull();
    advanceClock(5 * 86_400_000 + 1000);
    await consume([{ id: d.id, attempt: 1 }]);
    const hook = await env.DB.prepare("select enabled, disabled_reason from webhooks where id = ?").bind(d.hook.id).first();
    expect(hook).toEqual({ enabled: 0, disabled_reason: "every delivery failed for 5 days" });
    await expect
      .poll(async () => countRows("audit_entries", "org_id = ? and log like 'Webhook disabled:%every delivery failed for 5 days'", d.orgId), { timeout: 15_000 })
      .toBe(1);
  });

  it("a success restarts the failure clock", async () => {
    const d = await pendingDelivery();
    await scriptMailbox(d.box, { responses: [{ status: 500 }], default: { status: 200 } });
    await consume([{ id: d.id, attempt: 0 }]);
    await consume([{ id: d.id, attempt: 1 }]);
    const since = await env.DB.prepare("select failing_since from webhooks where id = ?").bind(d.hook.id).first("failing_since");
    expect(since).toBeNull();
  });

  it("a delivery to a disabled webhook is failed without sending", async () => {
    const d = await pendingDelivery();
    await call(d.hookPath, { method: "PATCH", headers: d.auth, json: { enabled: false } });
    await consume([{ id: d.id, attempt: 0 }]);
    expect(await delivery(d.id)).toMatchObject({ status: "failed", last_error: "webhook is disabled" });
    expect((await mailbox(d.box)).count).toBe(0);
  });
});

describe("secret rotation", () => {
  it("signs with both secrets during the grace period, then with the new one only", async () => {
    const d = await pendingDelivery();
    const rotated = (await (
      await call(`${d.hookPath}/rotate-secret`, { method: "POST", headers: d.auth })
    ).json()) as { secret: string; previous_secret_expires_at: string };
    expect(rotated.secret).not.toBe(d.hook.secret);
    await consume([{ id: d.id, attempt: 0 }]);
    const [during] = (await mailbox(d.box)).requests;
    expect(during.headers["webhook-signature"].split(" ")).toHaveLength(2);
    for (const secret of [rotated.secret, d.hook.secret]) {
      expect(new StandardWebhook(secret.slice("whsec_".length)).verify(during.body, during.headers)).toBeTruthy();
    }

    const later = await pendingDelivery();
    await env.DB.prepare("update deliveries set webhook_id = ?, org_id = ? where id = ?").bind(d.hook.id, d.orgId, later.id).run();
    advanceClock(24 * 3_600_000 + 1000);
    await consume([{ id: later.id, attempt: 0 }]);
    const after = (await mailbox(d.box)).requests[1];
    expect(after.headers["webhook-signature"].split(" ")).toHaveLength(1);
    expect(() => new StandardWebhook(d.hook.secret.slice("whsec_".length)).verify(after.body, after.headers)).toThrow();
  });
});
