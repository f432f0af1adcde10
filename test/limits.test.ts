// Limits on fan-out (issue 14, point 3): caps on webhooks per environment and per organisation
// (MAX_WEBHOOKS_PER_ENVIRONMENT, MAX_WEBHOOKS_PER_ORGANISATION), and a per-webhook attempt rate
// limit (WEBHOOK_ATTEMPTS_PER_SECOND over 10-second windows) whose deferred attempts are
// rescheduled, never dropped and never counted as failures.
import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, now, resetClock } from "../src/domain/clock";
import type { DeliveryMessage } from "../src/queues";
import { RATE_WINDOW_MS } from "../src/delivery/rate-limit";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, receiverUrl, scriptMailbox } from "./helpers";

afterEach(() => resetClock());

function request(workerEnv: typeof env, path: string, auth: Record<string, string>, json: unknown) {
  const req = new Request(`http://flaghook.test${path}`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(json) });
  return worker.fetch(req, workerEnv, createExecutionContext());
}

/** Webhooks subscribed to FLAG_DELETED only, so their own audit entries deliver nothing in the background. */
const hook = (n: number) => ({ url: `${receiverUrl()}/hooks/limits-${n}`, event_types: ["FLAG_DELETED"] });

async function stored(orgId: number) {
  return {
    webhooks: await countRows("webhooks", "org_id = ?", orgId),
    environments: await countRows("environments", "org_id = ?", orgId),
    audit: await countRows("audit_entries", "org_id = ?", orgId),
  };
}

describe("caps on webhooks", () => {
  it("an environment takes 50 webhooks by default; the 51st answers 409 with the limit, and nothing is stored", async () => {
    const { auth, orgId } = await createOrganisation("Fifty");
    for (let i = 0; i < 50; i++) {
      const res = await call("/api/v1/environments/7/webhooks", { method: "POST", headers: auth, json: hook(i) });
      expect(res.status).toBe(201);
    }
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and log like 'Webhook created:%'", orgId)) === 50);
    const before = await stored(orgId);
    const res = await call("/api/v1/environments/7/webhooks", { method: "POST", headers: auth, json: hook(50) });
    await expectError(res.clone(), 409, "limit_reached", "environment");
    const { error } = (await res.json()) as { error: { message: string } };
    expect(error.message).toBe("environment 7 already has 50 webhooks, the most allowed (MAX_WEBHOOKS_PER_ENVIRONMENT = 50); delete one first");
    // Another environment of the same organisation still takes webhooks.
    expect((await call("/api/v1/environments/8/webhooks", { method: "POST", headers: auth, json: hook(51) })).status).toBe(201);
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", orgId)) === before.audit + 1);
    expect(await stored(orgId)).toEqual({ ...before, webhooks: before.webhooks + 1, environments: before.environments + 1, audit: before.audit + 1 });
  });

  it("the organisation cap counts webhooks of both scopes; a refused one registers no environment", async () => {
    const caps = { ...env, MAX_WEBHOOKS_PER_ORGANISATION: "4", MAX_WEBHOOKS_PER_ENVIRONMENT: "3" };
    const { auth, orgId } = await createOrganisation("Four");
    const org = `/api/v1/organisations/${orgId}/webhooks`;
    expect((await request(caps, org, auth, hook(1))).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await request(caps, "/api/v1/environments/1/webhooks", auth, hook(i))).status).toBe(201);
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and log like 'Webhook created:%'", orgId)) === 4);
    const before = await stored(orgId);
    for (const path of [org, "/api/v1/environments/2/webhooks", "/api/v1/environments/1/webhooks"]) {
      const res = await request(caps, path, auth, hook(9));
      await expectError(res.clone(), 409, "limit_reached");
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/already has 4 webhooks, the most allowed \(MAX_WEBHOOKS_PER_ORGANISATION = 4\)|already has 3 webhooks, the most allowed \(MAX_WEBHOOKS_PER_ENVIRONMENT = 3\)/);
    }
    expect(await stored(orgId)).toEqual(before);
    expect(await countRows("environments", "org_id = ? and id = 2", orgId)).toBe(0);
  });

  it("concurrent creations cannot pass a cap together", async () => {
    const caps = { ...env, MAX_WEBHOOKS_PER_ENVIRONMENT: "3" };
    const { auth, orgId } = await createOrganisation("Race");
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => request(caps, "/api/v1/environments/3/webhooks", auth, hook(i))));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(3);
  });

  it("0 turns a cap off", async () => {
    const caps = { ...env, MAX_WEBHOOKS_PER_ENVIRONMENT: "0", MAX_WEBHOOKS_PER_ORGANISATION: "0" };
    const { auth } = await createOrganisation("Uncapped");
    for (let i = 0; i < 3; i++) expect((await request({ ...caps, MAX_WEBHOOKS_PER_ENVIRONMENT: i < 2 ? "2" : "0" }, "/api/v1/environments/4/webhooks", auth, hook(i))).status).toBe(201);
  });
});

describe("the per-webhook attempt rate limit", () => {
  it("defers attempts over the limit to the next window: rescheduled, never dropped, never failures; other webhooks go on", async () => {
    // At the start of a window, so the deferred attempts wait a whole window (10 s) in the queue.
    advanceClock(RATE_WINDOW_MS - (now() % RATE_WINDOW_MS) + 100);
    const limited = { ...env, WEBHOOK_ATTEMPTS_PER_SECOND: "0.5" }; // 5 a window
    const busy = await createOrganisation("Busy tenant");
    const quiet = await createOrganisation("Quiet tenant");
    const boxes = { busy: `rate-busy-${Date.now()}`, quiet: `rate-quiet-${Date.now()}` };
    await scriptMailbox(boxes.busy, { default: { status: 200 } });
    await scriptMailbox(boxes.quiet, { default: { status: 200 } });
    const create = async (who: typeof busy, box: string) =>
      ((await (await request(env, "/api/v1/environments/11/webhooks", who.auth, { url: `${receiverUrl()}/hooks/${box}` })).json()) as { id: string }).id;
    const busyHook = await create(busy, boxes.busy);
    const quietHook = await create(quiet, boxes.quiet);
    const ids: { id: string; hook: string }[] = [];
    for (const [who, hookId, count] of [[busy, busyHook, 12], [quiet, quietHook, 3]] as const) {
      for (let i = 0; i < count; i++) {
        const id = `dlv_rate${i}${hookId.slice(-6)}x${Date.now()}`;
        ids.push({ id, hook: hookId });
        await env.DB.prepare(
          `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
           values (?, ?, ?, 'FLAG_UPDATED', '{"data": {}, "event_type": "FLAG_UPDATED"}', 'pending', 0, 0, ?, ?, ?)`,
        )
          .bind(id, who.orgId, hookId, now(), now() + i, now())
          .run();
      }
    }
    const batch = createMessageBatch<DeliveryMessage>("flaghook-deliveries", [
      { id: "rate-1", timestamp: new Date(), attempts: 1, body: { deliveries: ids.map(({ id }) => ({ id, attempt: 0 })) } },
    ]);
    await worker.queue(batch, limited, createExecutionContext());

    expect((await mailbox(boxes.busy)).count).toBe(5);
    expect((await mailbox(boxes.quiet)).count).toBe(3);
    const deferred = await env.DB.prepare("select status, attempt_count, next_attempt_at from deliveries where webhook_id = ? and status = 'pending'").bind(busyHook).all();
    const windowEnd = (Math.floor(now() / RATE_WINDOW_MS) + 1) * RATE_WINDOW_MS;
    expect(deferred.results).toEqual(Array.from({ length: 7 }, () => ({ status: "pending", attempt_count: 0, next_attempt_at: windowEnd })));
    expect(await countRows("attempts", "delivery_id in (select id from deliveries where webhook_id = ?)", busyHook)).toBe(5);
    const webhook = await env.DB.prepare("select enabled, failing_since from webhooks where id = ?").bind(busyHook).first();
    expect(webhook).toEqual({ enabled: 1, failing_since: null });

    // The deferred attempts were queued again: the queue's own consumer makes them once the window is over.
    await eventually(async () => (await countRows("deliveries", "webhook_id = ? and status = 'delivered'", busyHook)) === 12, 30_000);
    expect((await mailbox(boxes.busy)).count).toBe(12);
    expect(await countRows("attempts", "delivery_id in (select id from deliveries where webhook_id = ?)", busyHook)).toBe(12);
    expect(new Set((await mailbox(boxes.busy)).requests.map((r) => r.headers["webhook-id"])).size).toBe(12);
  }, 60_000);
});
