// What a real Flagsmith sends at the edges (issue 10, point 5): an empty timestamp, bodies far over
// 256 KiB, secrets of any length, and no signature at all when its secret is blank.
// api/features/tasks.py (trigger_feature_state_change_webhooks) writes "timestamp": "" and
// "changed_by": "" for a feature state without a history record; feature descriptions are unbounded
// (features/models.py: a TextField) and every FLAG_UPDATED carries the feature twice; api/webhooks/webhooks.py
// signs only `if webhook.secret`. Bodies are json.dumps(sort_keys=True), non-ASCII written \uXXXX.
import { describe, expect, it } from "vitest";
import { MAX_STORED_BYTES } from "../src/ingest/accept";
import { createSource, flagsmithBody, flagsmithSignature, postAsFlagsmith, recentTimestamp, webhook, hookUrl } from "./flagsmith";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, seedPythonSays } from "./helpers";

function flagState(description: string, enabled: boolean) {
  return {
    enabled,
    environment: { id: 55, name: "Production" },
    feature: {
      created_date: "2023-03-04T05:06:07.080910Z",
      default_enabled: false,
      description,
      id: 880,
      initial_value: null,
      name: "long_description",
      project: { id: 5, name: "Shop" },
      type: "STANDARD",
    },
    feature_segment: null,
    feature_state_value: null,
    identity: null,
    identity_identifier: null,
    multivariate_feature_state_values: [],
  };
}

describe("edge inputs a real Flagsmith sends", () => {
  it('accepts "timestamp": "" (a state without a history record), dating the change on receipt and relaying the bytes as sent', async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/55", { url: hookUrl("edge-empty-timestamp") });
    const source = await createSource(org);
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "", timestamp: "", new_state: flagState("d", true) });
    const res = await postAsFlagsmith(source, body, source.secret);
    expect(res.status).toBe(202);
    const relayed = await eventually(async () => (await mailbox("edge-empty-timestamp")).requests[0]);
    expect(relayed.body).toBe(body);
    expect(relayed.body).toContain('"timestamp": ""');
  });

  it("accepts a body of 1.2 MB (a feature description of 600,000 characters, twice), records it before answering and relays it byte for byte", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/55", { url: hookUrl("edge-large") });
    const source = await createSource(org);
    const description = "lorem ipsum ".repeat(50_000);
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "ops@example.com", timestamp: recentTimestamp(1), new_state: flagState(description, true), previous_state: flagState(description, false) });
    expect(body.length).toBeGreaterThan(1_200_000);
    const res = await postAsFlagsmith(source, body, source.secret);
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    // Too large for a queue message (128 KB): written to D1 before the 202.
    expect(await countRows("relayed_events", "org_id = ? and event_id = ?", org.orgId, event_id)).toBe(1);
    const relayed = await eventually(async () => (await mailbox("edge-large")).requests[0], 30_000);
    expect(relayed.body.length).toBe(body.length);
    expect(relayed.body === body).toBe(true);
  });

  it("refuses with 413, storing nothing, a body whose stored form would not fit D1's 2 MB values, and one over 2,000,000 bytes", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/55", { url: hookUrl("edge-too-large") });
    const source = await createSource(org);
    // 150,000 é each way: Flagsmith writes \u00e9 (6 bytes), so 1.8 MB of body, but more than D1 takes once stored.
    const description = "é".repeat(150_000);
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "", timestamp: recentTimestamp(2), new_state: flagState(description, true), previous_state: flagState(description, false) });
    expect(body.length).toBeLessThan(2_000_000);
    const stored = await postAsFlagsmith(source, body, source.secret);
    await expectError(stored, 413, "payload_too_large");
    const over = `{"event_type": "FLAG_UPDATED", "data": {"pad": "${"x".repeat(2_000_000)}"}}`;
    await expectError(await postAsFlagsmith(source, over, source.secret), 413, "payload_too_large");
    await new Promise((r) => setTimeout(r, 1000));
    expect(await countRows("relayed_events", "org_id = ?", org.orgId)).toBe(0);
    expect(await countRows("deliveries", "org_id = ?", org.orgId)).toBe(0);
    expect((await mailbox("edge-too-large")).count).toBe(0);
    expect(MAX_STORED_BYTES).toBeLessThan(2_000_000);
  });

  it("takes a secret of any length Flagsmith takes, and checks it", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/55", { url: hookUrl("edge-short-secret") });
    const source = await createSource(org, { secret: "abc" });
    expect(source).toMatchObject({ secret: "abc", signed: true });
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "", timestamp: recentTimestamp(3), new_state: flagState("d", true) });
    expect(await seedPythonSays("abc", body, await flagsmithSignature("abc", body))).toBe("valid");
    expect((await postAsFlagsmith(source, body, "abd")).status).toBe(401);
    expect((await postAsFlagsmith(source, body, "abc")).status).toBe(202);
  });

  it("takes unsigned webhooks only on a source created explicitly as unsigned, and says so wherever the source is shown", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/55", { url: hookUrl("edge-unsigned") });
    const base = `/api/v1/organisations/${org.orgId}/inbound-sources`;
    const before = await countRows("inbound_sources", "org_id = ?", org.orgId);
    await expectError(await call(base, { method: "POST", headers: org.auth, json: { secret: "" } }), 400, "validation_failed", "secret");
    await expectError(await call(base, { method: "POST", headers: org.auth, json: { unsigned: true, secret: "s3cret" } }), 400, "validation_failed", "secret");
    await expectError(await call(base, { method: "POST", headers: org.auth, json: { unsigned: "yes" } }), 400, "validation_failed", "unsigned");
    await expectError(await call(base, { method: "POST", headers: org.auth, json: { secret: "s".repeat(256) } }), 400, "validation_failed", "secret");
    expect(await countRows("inbound_sources", "org_id = ?", org.orgId)).toBe(before);

    const source = await createSource(org, { name: "No secret", unsigned: true });
    expect(source).toMatchObject({ signed: false, secret: null, name: "No secret" });
    const listed = (await (await call(base, { headers: org.auth })).json()) as { results: { id: string; signed: boolean }[] };
    expect(listed.results.find((s) => s.id === source.id)?.signed).toBe(false);
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "", timestamp: recentTimestamp(4), new_state: flagState("d", true) });
    expect((await postAsFlagsmith(source, body, null)).status).toBe(202);
    const relayed = await eventually(async () => (await mailbox("edge-unsigned")).requests[0]);
    expect(relayed.body).toBe(body);
    const audit = (await (await call("/api/v1/audit/?related_object_type=INBOUND_SOURCE", { headers: org.auth })).json()) as { results: { log: string }[] };
    expect(audit.results.map((r) => r.log)).toContain("Unsigned inbound source created (checks no signature): No secret");

    // A signed source still refuses what comes without a signature.
    const signed = await createSource(org);
    expect((await postAsFlagsmith(signed, body, null)).status).toBe(401);
  });

  it("refuses an inbound URL whose query is not ?environment=<id>, storing nothing", async () => {
    const org = await createOrganisation();
    const source = await createSource(org);
    const body = await flagsmithBody("FLAG_UPDATED", { changed_by: "", timestamp: "2024-06-01T10:00:00.000005Z", new_state: flagState("d", true) });
    await expectError(await postAsFlagsmith(source, body, source.secret, "?environment=prod"), 400, "validation_failed", "environment");
    await expectError(await postAsFlagsmith(source, body, source.secret, "?environment="), 400, "validation_failed", "environment");
    await expectError(await postAsFlagsmith(source, body, source.secret, "?env=55"), 400, "validation_failed");
    expect(await countRows("relayed_events", "org_id = ?", org.orgId)).toBe(0);
  });
});
