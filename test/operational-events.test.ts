// Operational events (issue 13): DELIVERY_FAILED, WEBHOOK_DISABLED and WEBHOOK_RECOVERED go to the
// organisation webhooks subscribed to them, never to the webhook they are about, and are recorded as
// system audit entries; no notification can cause another. The queues run for real: what the consumer
// enqueues is delivered to the local receiver in the background.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { advanceClock, resetClock } from "../src/domain/clock";
import { DEFAULT_EVENT_TYPES, planDeliveries, planOrganisationEvent, type Subscriber } from "../src/domain/fanout";
import { settle, attempt } from "../src/delivery/consumer";
import { database } from "../src/db/client";
import type { DeliveryRow, WebhookRow } from "../src/db/schema";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, scriptMailbox } from "./helpers";
import { consume, pendingDelivery, webhookOn, type Hook, type Org } from "./health-support";

const OPERATIONAL = ["DELIVERY_FAILED", "WEBHOOK_DISABLED", "WEBHOOK_RECOVERED"];

afterEach(() => resetClock());

/** The bodies a mailbox received of one event type, parsed. */
async function received(hook: Hook, eventType: string) {
  return (await mailbox(hook.box)).requests.map((r) => JSON.parse(r.body) as { event_type: string; data: Record<string, any> }).filter((b) => b.event_type === eventType);
}

/** The organisation's operational audit entries (WEBHOOK_HEALTH), oldest first. */
const healthEntries = (org: Org) =>
  env.DB.prepare(
    "select log, related_object_uuid as about, is_system_event, submitter_type from audit_entries where org_id = ? and related_object_type = 'WEBHOOK_HEALTH' order by seq",
  )
    .bind(org.orgId)
    .all<{ log: string; about: string; is_system_event: number; submitter_type: string }>()
    .then((r) => r.results);

const deliveriesOf = (eventType: string, webhookId?: string) =>
  env.DB.prepare(`select id, webhook_id, kind, payload from deliveries where event_type = ? ${webhookId ? "and webhook_id = ?" : ""}`)
    .bind(...[eventType, ...(webhookId ? [webhookId] : [])])
    .all<{ id: string; webhook_id: string; kind: string; payload: string }>()
    .then((r) => r.results);

/** An organisation with a watcher subscribed to the operational events, and the environment webhook they will be about. */
async function watched() {
  const org = await createOrganisation();
  const watcher = await webhookOn(org, { organisation: true, eventTypes: OPERATIONAL, name: "on-call" });
  const subject = await webhookOn(org, { name: "billing sync" });
  return { org, watcher, subject };
}

describe("operational events", () => {
  it("DELIVERY_FAILED: a delivery that used its last attempt is sent to the subscribed webhooks and audited", async () => {
    const { org, watcher, subject } = await watched();
    const bystander = await webhookOn(org, { organisation: true, eventTypes: ["FLAG_UPDATED"] }); // not subscribed
    await scriptMailbox(subject.box, { default: { status: 502, body: "bad gateway" } });
    const d = await pendingDelivery(subject, { attempts: 3 }); // its fourth attempt is its last in tests
    await consume([d]);

    const [event] = await eventually(async () => {
      const bodies = await received(watcher, "DELIVERY_FAILED");
      return bodies.length ? bodies : undefined;
    });
    expect(event.data).toEqual({
      webhook: { id: subject.id, name: "billing sync", url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/hooks\/…$/), scope: "environment", environment: expect.any(Number) },
      delivery: { id: d.id, event_type: "FLAG_UPDATED", event_id: null, created_at: expect.any(String), attempts: 4 },
      last_attempt: { number: 4, attempted_at: expect.any(String), status_code: 502, duration_ms: expect.any(Number), error: "HTTP 502 Bad Gateway: bad gateway" },
      failed_at: expect.any(String),
    });
    expect((await mailbox(watcher.box)).requests[0].headers["webhook-signature"]).toMatch(/^v1,/);
    expect(await received(bystander, "DELIVERY_FAILED")).toEqual([]);
    expect((await deliveriesOf("DELIVERY_FAILED")).filter((x) => x.payload.includes(d.id)).map((x) => [x.webhook_id, x.kind])).toEqual([[watcher.id, "operational"]]);

    const entries = await eventually(async () => {
      const rows = await healthEntries(org);
      return rows.length ? rows : undefined;
    });
    expect(entries).toEqual([
      {
        log: expect.stringMatching(new RegExp(`^Delivery failed: ${d.id} \\(FLAG_UPDATED\\) to billing sync \\(http://127\\.0\\.0\\.1:\\d+/hooks/…\\) after 4 attempts: HTTP 502 Bad Gateway: bad gateway$`)),
        about: subject.id,
        is_system_event: 1,
        submitter_type: "flaghook",
      },
    ]);
  });

  it("WEBHOOK_DISABLED: on 410 Gone, once, saying why", async () => {
    const { org, watcher, subject } = await watched();
    await scriptMailbox(subject.box, { default: { status: 410 } });
    await consume([await pendingDelivery(subject)]);
    const [event] = await eventually(async () => {
      const bodies = await received(watcher, "WEBHOOK_DISABLED");
      return bodies.length ? bodies : undefined;
    });
    expect(event.data).toMatchObject({ webhook: { id: subject.id, name: "billing sync" }, reason: "receiver answered 410 Gone", disabled_at: expect.any(String) });
    await eventually(async () => (await healthEntries(org)).some((e) => e.log.endsWith(": receiver answered 410 Gone")));
    const disabledEntries = (await healthEntries(org)).filter((e) => e.log.startsWith("Webhook disabled:"));
    expect(disabledEntries).toEqual([expect.objectContaining({ about: subject.id, is_system_event: 1 })]);
  });

  it("WEBHOOK_DISABLED: after failing for WEBHOOK_FAILURE_DISABLE_DAYS; a consumer run that comes second sends nothing", async () => {
    const { org, watcher, subject } = await watched();
    await scriptMailbox(subject.box, { default: { status: 500 } });
    const d = await pendingDelivery(subject);
    await consume([d]);
    advanceClock(5 * 86_400_000 + 1000);
    // Two runs racing, each holding the webhook as it was before either disabled it.
    const db = database(env.DB);
    const hook = (await env.DB.prepare("select * from webhooks where id = ?").bind(subject.id).first())!;
    const webhook = { ...(await db.query.webhooks.findFirst({ where: (w, { eq }) => eq(w.id, subject.id) }))! } as WebhookRow;
    expect(hook.failing_since).not.toBeNull();
    const second = await pendingDelivery(subject);
    const rowOf = async (id: string) => (await db.query.deliveries.findFirst({ where: (x, { eq }) => eq(x.id, id) }))! as DeliveryRow;
    const claimed = async (id: string) => {
      await env.DB.prepare("update deliveries set attempt_count = attempt_count + 1 where id = ?").bind(id).run();
      return { ...(await rowOf(id)), attemptCount: (await rowOf(id)).attemptCount - 1 };
    };
    const one = await claimed(d.id);
    const two = await claimed(second.id);
    await settle(env, db, [{ delivery: one, webhook, result: await attempt(env, one, webhook, Date.now()) }]);
    await settle(env, db, [{ delivery: two, webhook, result: await attempt(env, two, webhook, Date.now()) }]);
    expect(await env.DB.prepare("select enabled, disabled_reason from webhooks where id = ?").bind(subject.id).first()).toEqual({
      enabled: 0,
      disabled_reason: "every delivery failed for 5 days",
    });
    await eventually(async () => (await received(watcher, "WEBHOOK_DISABLED")).length === 1);
    expect((await deliveriesOf("WEBHOOK_DISABLED", watcher.id)).length).toBe(1);
    await eventually(async () => (await healthEntries(org)).some((e) => e.log.startsWith("Webhook disabled:")));
    await new Promise((r) => setTimeout(r, 500));
    expect((await healthEntries(org)).filter((e) => e.log.startsWith("Webhook disabled:"))).toHaveLength(1);
  });

  it("WEBHOOK_RECOVERED: the first success after failures, once", async () => {
    const { org, watcher, subject } = await watched();
    await scriptMailbox(subject.box, { responses: [{ status: 500 }], default: { status: 200 } });
    const d = await pendingDelivery(subject);
    await consume([d]);
    const { failing_since } = (await env.DB.prepare("select failing_since from webhooks where id = ?").bind(subject.id).first<{ failing_since: number }>())!;
    await consume([{ id: d.id, attempt: 1 }]);
    await consume([await pendingDelivery(subject)]); // already healthy: nothing more
    const [event] = await eventually(async () => {
      const bodies = await received(watcher, "WEBHOOK_RECOVERED");
      return bodies.length ? bodies : undefined;
    });
    expect(event.data).toEqual({
      webhook: expect.objectContaining({ id: subject.id }),
      failing_since: new Date(failing_since).toISOString(),
      recovered_at: expect.any(String),
    });
    await eventually(async () => (await healthEntries(org)).some((e) => e.log.startsWith("Webhook recovered:")));
    await new Promise((r) => setTimeout(r, 500));
    expect(await received(watcher, "WEBHOOK_RECOVERED")).toHaveLength(1);
    expect((await healthEntries(org)).map((e) => e.log)).toEqual([
      expect.stringMatching(/^Webhook recovered: billing sync \(.*\): delivered again after failing since \d{4}-/),
    ]);
  });

  it("no notification causes another: a notification that fails for good, or a 410 to one, sends nothing more", async () => {
    const { org, watcher, subject } = await watched();
    const second = await webhookOn(org, { organisation: true, eventTypes: OPERATIONAL, name: "pager" });
    // The watcher fails every notification, then says it is gone; "pager" takes them.
    await scriptMailbox(watcher.box, { responses: [{ status: 500 }, { status: 500 }, { status: 500 }], default: { status: 410 } });
    await scriptMailbox(subject.box, { default: { status: 500 } });
    const d = await pendingDelivery(subject, { attempts: 3 });
    await consume([d]);
    // Both get the DELIVERY_FAILED; the watcher's copy fails three times, then meets 410: the watcher is disabled.
    await eventually(async () => (await received(second, "DELIVERY_FAILED")).length === 1);
    await eventually(async () => ((await env.DB.prepare("select enabled from webhooks where id = ?").bind(watcher.id).first<number>("enabled")) === 0));
    expect(await env.DB.prepare("select disabled_reason from webhooks where id = ?").bind(watcher.id).first("disabled_reason")).toBe("receiver answered 410 Gone");
    // Its disabling is audited, but raises no WEBHOOK_DISABLED: it was caused by notifications alone.
    await eventually(async () => (await healthEntries(org)).some((e) => e.about === watcher.id));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await received(second, "WEBHOOK_DISABLED")).toEqual([]);
    expect(await deliveriesOf("WEBHOOK_DISABLED", second.id)).toEqual([]);
    // And the watcher's failed notification raised no DELIVERY_FAILED of its own.
    expect((await deliveriesOf("DELIVERY_FAILED")).filter((x) => x.payload.includes(watcher.id))).toEqual([]);
    expect((await healthEntries(org)).map((e) => e.log.split(":")[0])).toEqual(["Delivery failed", "Webhook disabled"]);
  });

  it("are opt-in: not among a new webhook's defaults, and only organisation webhooks may subscribe", async () => {
    expect(DEFAULT_EVENT_TYPES.organisation).not.toContain("DELIVERY_FAILED");
    const org = await createOrganisation();
    const created = (await (await call(`/api/v1/organisations/${org.orgId}/webhooks`, { method: "POST", headers: org.auth, json: { url: "http://127.0.0.1:1/x" } })).json()) as { event_types: string[] };
    expect(created.event_types).toEqual(["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"]);
    await expectError(
      await call("/api/v1/environments/5/webhooks", { method: "POST", headers: org.auth, json: { url: "http://127.0.0.1:1/x", event_types: ["WEBHOOK_DISABLED"] } }),
      400,
      "validation_failed",
      "event_types",
    );
    expect(await countRows("webhooks", "org_id = ? and environment_id = 5", org.orgId)).toBe(0);
  });
});

describe("planning operational deliveries", () => {
  const hook = (id: string, scope: "organisation" | "environment", eventTypes: string[]): Subscriber =>
    ({ id, scope, environmentId: scope === "environment" ? 1 : null, eventTypes }) as Subscriber;

  it("an operational event goes to subscribed organisation webhooks except the one it is about, as an operational delivery", () => {
    const webhooks = [hook("whk_a", "organisation", OPERATIONAL), hook("whk_b", "organisation", OPERATIONAL), hook("whk_c", "organisation", ["AUDIT_LOG_CREATED"]), hook("whk_d", "environment", ["FLAG_UPDATED"])];
    expect(planOrganisationEvent("WEBHOOK_DISABLED", "{}", webhooks, "whk_a")).toEqual([
      { webhookId: "whk_b", eventType: "WEBHOOK_DISABLED", environmentId: null, payload: "{}", kind: "operational" },
    ]);
  });

  it("the audit entry of an operational event reaches AUDIT_LOG_CREATED subscribers except its webhook, as an operational delivery", () => {
    const webhooks = [hook("whk_a", "organisation", ["AUDIT_LOG_CREATED"]), hook("whk_b", "organisation", ["AUDIT_LOG_CREATED"])];
    const plan = (type: string) =>
      planDeliveries({
        event: { type: "CUSTOM", log: "x", related_object: { type, id: null, uuid: "whk_a" } } as never,
        auditData: { id: 1 },
        timestamp: "2024-01-01T00:00:00.000000Z",
        webhooks,
        projectEnvironments: [],
        projectName: null,
      }).map((p) => [p.webhookId, p.kind ?? "event"]);
    expect(plan("WEBHOOK_HEALTH")).toEqual([["whk_b", "operational"]]);
    // Other entries about a webhook (created, updated, ...) reach it as before.
    expect(plan("WEBHOOK")).toEqual([
      ["whk_a", "event"],
      ["whk_b", "event"],
    ]);
  });
});
