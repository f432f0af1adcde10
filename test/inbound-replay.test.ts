// Replay after pruning (issue 14, point 7). flaghook remembers a relayed Flagsmith flag event only
// DELIVERY_RETENTION_DAYS (30), then prunes the record that makes a resend a no-op. A captured,
// signed body replayed after that would be delivered again, with the same webhook-id and fresh
// signatures; so inbound bodies whose own time is older than the window (less a day of clock skew),
// or more than a day ahead, are refused. Audit log bodies are remembered as long as the audit log
// keeps them: for ever unless AUDIT_RETENTION_DAYS is set.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, isoMicro, now, resetClock } from "../src/domain/clock";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, receiverUrl, scriptMailbox } from "./helpers";

afterEach(() => resetClock());

const DAY = 86_400_000;

async function sign(secret: string, body: string) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function flagUpdated(environmentId: number, timestamp: string) {
  const state = {
    enabled: true,
    environment: { id: environmentId, name: "Development" },
    feature: { id: 7168, name: "butter_bar", project: { id: 12, name: "Flagsmith Website" }, type: "CONFIG" },
    feature_segment: null,
    feature_state_value: "on",
    identity: null,
    identity_identifier: null,
  };
  return JSON.stringify({ data: { changed_by: "Kyle Johnson", new_state: state, timestamp }, event_type: "FLAG_UPDATED" });
}
const auditLog = (created_date: string) =>
  JSON.stringify({ data: { created_date, log: "Flag state updated for feature: butter_bar", author: null, is_system_event: false }, event_type: "AUDIT_LOG_CREATED" });

async function setUp(box: string) {
  const org = await createOrganisation("Replayed");
  await scriptMailbox(box, { default: { status: 200 } });
  const environmentId = 4000 + Math.floor(Math.random() * 100_000);
  expect((await call(`/api/v1/environments/${environmentId}/webhooks`, { method: "POST", headers: org.auth, json: { url: `${receiverUrl()}/hooks/${box}` } })).status).toBe(201);
  const source = (await (await call(`/api/v1/organisations/${org.orgId}/inbound-sources`, { method: "POST", headers: org.auth, json: {} })).json()) as { url: string; secret: string };
  const post = async (body: string, workerEnv: typeof env = env) =>
    worker.fetch(
      new Request(`http://flaghook.test${new URL(source.url).pathname}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-flagsmith-signature": await sign(source.secret, body) },
        body,
      }),
      workerEnv,
      createExecutionContext(),
    );
  return { ...org, environmentId, post };
}

describe("inbound Flagsmith bodies outside the replay window", () => {
  it("a captured flag event replayed after its record was pruned is refused, and delivered no second time", async () => {
    const box = `replay-${Date.now()}`;
    const { orgId, environmentId, post } = await setUp(box);
    const captured = flagUpdated(environmentId, isoMicro(now() - 60_000));
    expect((await post(captured)).status).toBe(202);
    await eventually(async () => (await mailbox(box)).count === 1);
    // The receiver has it before the consumer records the answer: a delivery still pending when the
    // clock jumps would be re-sent by the sweeper, not pruned.
    await eventually(async () => (await countRows("deliveries", "org_id = ? and status = 'delivered'", orgId)) === 1);
    expect(await countRows("relayed_events", "org_id = ?", orgId)).toBe(1);
    // The receiver has it before the consumer records it delivered; a pending delivery is never pruned.
    await eventually(async () => (await countRows("deliveries", "org_id = ? and status = 'delivered'", orgId)) === 1);

    // 31 days on, the sweeper has pruned the delivery and the relayed-event record.
    advanceClock(31 * DAY);
    await worker.scheduled(createScheduledController(), env, createExecutionContext());
    expect(await countRows("relayed_events", "org_id = ?", orgId)).toBe(0);
    expect(await countRows("deliveries", "org_id = ? and event_type = 'FLAG_UPDATED'", orgId)).toBe(0);

    const replayed = await post(captured);
    await expectError(replayed.clone(), 400, "timestamp_out_of_range", "data.timestamp");
    expect(((await replayed.json()) as { error: { message: string } }).error.message).toBe(
      "data.timestamp is older than 29 days: a body that old could be a replay of one already relayed and forgotten",
    );
    await new Promise((r) => setTimeout(r, 1500)); // the ingest queue would have recorded it by now
    expect(await countRows("relayed_events", "org_id = ?", orgId)).toBe(0);
    expect(await countRows("deliveries", "org_id = ? and event_type = 'FLAG_UPDATED'", orgId)).toBe(0);
    expect((await mailbox(box)).count).toBe(1);
  });

  it("the window follows DELIVERY_RETENTION_DAYS, less a day of clock skew", async () => {
    const { environmentId, post } = await setUp(`replay-window-${Date.now()}`);
    const ten = { ...env, DELIVERY_RETENTION_DAYS: "10" };
    expect((await post(flagUpdated(environmentId, isoMicro(now() - 9 * DAY + 60_000)), ten)).status).toBe(202);
    await expectError(await post(flagUpdated(environmentId, isoMicro(now() - 9 * DAY - 60_000)), ten), 400, "timestamp_out_of_range", "data.timestamp");
  });

  it("a body more than a day in the future is refused (it would stay inside any window long after its record is gone)", async () => {
    const { environmentId, post } = await setUp(`replay-future-${Date.now()}`);
    await expectError(await post(flagUpdated(environmentId, isoMicro(now() + DAY + 60_000))), 400, "timestamp_out_of_range", "data.timestamp");
    await expectError(await post(auditLog(isoMicro(now() + DAY + 60_000))), 400, "timestamp_out_of_range", "data.created_date");
    expect((await post(flagUpdated(environmentId, isoMicro(now() + DAY - 60_000)))).status).toBe(202);
  });

  it("audit log bodies of any age are accepted while the audit log keeps its entries for ever, and refused past AUDIT_RETENTION_DAYS", async () => {
    const { post } = await setUp(`replay-audit-${Date.now()}`);
    expect((await post(auditLog("2020-02-23T17:30:57.006318Z"))).status).toBe(202);
    const keepYear = { ...env, AUDIT_RETENTION_DAYS: "365" };
    expect((await post(auditLog(isoMicro(now() - 363 * DAY)), keepYear)).status).toBe(202);
    await expectError(await post(auditLog(isoMicro(now() - 365 * DAY)), keepYear), 400, "timestamp_out_of_range", "data.created_date");
  });
});
