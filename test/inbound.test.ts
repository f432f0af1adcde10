/// <reference types="vite/client" />
// Relaying a real Flagsmith (issue 6): Flagsmith's own webhooks, posted to an inbound source's URL,
// become audit entries and deliveries with flaghook's retries, attempt log and replay.
import { Webhook as StandardWebhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import seedAuditFile from "./fixtures/seed-audit-log.json?raw";
import seedFlagUpdatedFile from "./fixtures/seed-flag-updated.json?raw";
import { parseFlagsmithWebhook, relayedChangeEvent } from "../src/domain/flagsmith";
import {
  call,
  countRows,
  createOrganisation,
  eventually,
  mailbox,
  pythonDumps,
  receiverUrl,
  recorded,
  scriptMailbox,
  seedPythonSays,
} from "./helpers";

// The seed's two samples, byte for byte (the fixture files add only a final newline).
const SEED_AUDIT = seedAuditFile.replace(/\n$/, "");
const SEED_FLAG_UPDATED = seedFlagUpdatedFile.replace(/\n$/, "");
/** Flagsmith's time in the sample (2021) is older than flaghook's replay window; sent today, it carries today's. */
const SEED_TIMESTAMP = "2021-06-18T07:50:26.595298Z";
const recentTimestamp = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString().replace(/Z$/, "123Z");
const SEED_FLAG_UPDATED_SENT = SEED_FLAG_UPDATED.replace(SEED_TIMESTAMP, recentTimestamp(5));

type Org = Awaited<ReturnType<typeof createOrganisation>>;
interface NewSource {
  id: string;
  name: string;
  url: string;
  secret: string;
  token_prefix: string;
  created_at: string;
  last_received_at: string | null;
  revoked_at: string | null;
}

/** The seed's recipe: hex HMAC-SHA256 of the raw body, the secret's UTF-8 bytes as the key. */
async function flagsmithSignature(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(body)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function createSource(org: Org, json: Record<string, unknown> = {}): Promise<NewSource> {
  const res = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/`, { method: "POST", headers: org.auth, json });
  expect(res.status).toBe(201);
  return (await res.json()) as NewSource;
}

/** Posts a body the way Flagsmith does: JSON content type, X-Flagsmith-Signature when a secret is set. */
function postAsFlagsmith(source: Pick<NewSource, "url">, body: string, signature?: string, contentType = "application/json") {
  const headers: Record<string, string> = { "content-type": contentType };
  if (signature !== undefined) headers["x-flagsmith-signature"] = signature;
  return call(new URL(source.url).pathname, { method: "POST", headers, body });
}

async function relay(source: NewSource, body: string) {
  const res = await postAsFlagsmith(source, body, await flagsmithSignature(source.secret, body));
  expect(res.status).toBe(202);
  return (await res.json()) as { event_id: string; status: string };
}

async function webhook(org: Org, owner: string, json: Record<string, unknown>) {
  const res = await call(`${owner}/webhooks/`, { method: "POST", headers: org.auth, json });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string };
}

const hookUrl = (box: string) => `${receiverUrl()}/hooks/${box}`;

/** Requests of a mailbox that mention `text`: organisation webhooks also get the system events of the setup. */
async function received(box: string, text: string) {
  return (await mailbox(box)).requests.filter((r) => r.body.includes(text));
}
const firstMention = (box: string, text: string) => eventually(async () => (await received(box, text))[0]);

async function deliveriesOf(org: Org, eventId: string, count: number) {
  return eventually(async () => {
    const body = (await (await call(`/api/v1/events/${eventId}`, { headers: org.auth })).json()) as {
      status: string;
      audit_entry_id: number | null;
      deliveries: { id: string; webhook_id: string; event_type: string; status: string }[];
    };
    return body.status === "recorded" && body.deliveries.length === count ? body : undefined;
  });
}

const auditCount = (org: Org) => countRows("audit_entries", "org_id = ?", org.orgId);

/** Waits until the system events of the setup (its API key, then webhooks and sources created) are recorded. */
async function settled(org: Org, systemEvents: number) {
  await eventually(async () => (await auditCount(org)) === 1 + systemEvents);
}

describe("inbound sources", () => {
  it("creates a source with an unguessable URL and a secret shown once, lists and revokes it, auditing both", async () => {
    const org = await createOrganisation();
    const res = await call(`/api/v1/organisations/${org.orgId}/inbound-sources`, { method: "POST", headers: org.auth, json: { name: "Flagsmith EU" } });
    expect(res.status).toBe(201);
    const source = (await res.json()) as NewSource;
    expect(source).toEqual({
      id: expect.stringMatching(/^src_[0-9a-z]{26}$/),
      name: "Flagsmith EU",
      url: expect.stringMatching(/^http:\/\/flaghook\.test\/api\/v1\/inbound\/flagsmith\/fhi_[0-9a-z]{52}$/),
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
      token_prefix: expect.any(String),
      signed: true,
      created_at: expect.any(String),
      last_received_at: null,
      last_test_received_at: null,
      revoked_at: null,
    });
    expect(source.url).toContain(`/${source.token_prefix}`);

    const listed = (await (await call(`/api/v1/organisations/${org.orgId}/inbound-sources/`, { headers: org.auth })).json()) as {
      results: Record<string, unknown>[];
    };
    const { url: _url, secret: _secret, ...shown } = source;
    expect(listed).toEqual({ results: [shown], next: null });
    const one = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/${source.id}/`, { headers: org.auth });
    expect(await one.json()).toEqual(listed.results[0]);

    const revoked = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/${source.id}/`, { method: "DELETE", headers: org.auth });
    expect(revoked.status).toBe(200);
    const revokedBody = (await revoked.json()) as NewSource;
    expect(revokedBody.revoked_at).toEqual(expect.any(String));
    const again = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/${source.id}`, { method: "DELETE", headers: org.auth });
    expect(await again.json()).toEqual(revokedBody);

    const logs = await eventually(async () => {
      const page = (await (await call(`/api/v1/audit/?related_object_type=INBOUND_SOURCE`, { headers: org.auth })).json()) as {
        results: { log: string; is_system_event: boolean; related_object_uuid: string }[];
      };
      return page.results.length === 2 ? page.results : undefined;
    });
    expect(logs.map((l) => [l.log, l.is_system_event, l.related_object_uuid]).sort()).toEqual([
      ["Inbound source created: Flagsmith EU", true, source.id],
      ["Inbound source revoked: Flagsmith EU", true, source.id],
    ]);
  });

  it("takes a secret that is already set in Flagsmith, and names a source Flagsmith by default", async () => {
    const org = await createOrganisation();
    const source = await createSource(org, { secret: "my shared secret" });
    expect(source).toMatchObject({ name: "Flagsmith", secret: "my shared secret" });
  });

  it("is managed with the organisation's own API key only", async () => {
    const org = await createOrganisation();
    const other = await createOrganisation("Other");
    const source = await createSource(org);
    const base = `/api/v1/organisations/${org.orgId}/inbound-sources`;
    expect((await call(base)).status).toBe(401);
    expect((await call(base, { headers: { Authorization: "Bearer test-admin-token" } })).status).toBe(401);
    expect((await call(base, { headers: other.auth })).status).toBe(404);
    expect((await call(`${base}/${source.id}`, { headers: other.auth })).status).toBe(404);
    expect((await call(`/api/v1/organisations/${other.orgId}/inbound-sources/${source.id}`, { headers: other.auth })).status).toBe(404);
    expect((await call(`/api/v1/organisations/${other.orgId}/inbound-sources/${source.id}`, { method: "DELETE", headers: other.auth })).status).toBe(404);
    expect((await call(`${base}/${source.id}`, { headers: org.auth })).status).toBe(200);
    const bad = await call(base, { method: "POST", headers: org.auth, json: { secret: "" } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "validation_failed", details: [{ field: "secret" }] } });
  });

  it("documents both the management API and the receiving URL in /openapi.json", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    expect(Object.keys(doc.paths["/api/v1/organisations/{org}/inbound-sources"] ?? doc.paths["/api/v1/organisations/{org}/inbound-sources/"]).sort()).toEqual(["get", "post"]);
    expect(doc.paths["/api/v1/inbound/flagsmith/{token}"].post.requestBody).toMatchObject({
      content: { "application/json": { schema: { $ref: "#/components/schemas/FlagsmithWebhook" } } },
    });
  });
});

describe("Flagsmith's audit log webhook, relayed", () => {
  it("records the seed's audit sample (bare, as the docs show it) keeping Flagsmith's fields, and relays its data re-signed to each organisation webhook", async () => {
    const org = await createOrganisation();
    const hookA = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-audit-a"), secret: "secret of receiver A" });
    const hookB = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-audit-b") });
    await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-audit-env") });
    const source = await createSource(org);
    await settled(org, 4);

    const signature = await flagsmithSignature(source.secret, SEED_AUDIT);
    expect(await seedPythonSays(source.secret, SEED_AUDIT, signature)).toBe("valid");
    const res = await postAsFlagsmith(source, SEED_AUDIT, signature);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { event_id: string; status: string };
    expect(accepted).toEqual({ event_id: expect.stringMatching(/^evt_/), status: "accepted" });

    const status = await deliveriesOf(org, accepted.event_id, 2);
    expect(status.deliveries.map((d) => [d.webhook_id, d.event_type]).sort()).toEqual(
      [[hookA.id, "AUDIT_LOG_CREATED"], [hookB.id, "AUDIT_LOG_CREATED"]].sort(),
    );
    const entry = await (await call(`/api/v1/audit/${status.audit_entry_id}/`, { headers: org.auth })).json();
    expect(entry).toEqual({
      id: status.audit_entry_id,
      seq: status.audit_entry_id,
      legacy_id: null,
      event_id: accepted.event_id,
      created_date: "2020-02-23T17:30:57.006318Z",
      received_at: expect.stringMatching(/Z$/),
      time_warning: "behind_receipt",
      // Who sent it: the inbound source whose URL and secret it came with.
      submitter: { type: "inbound_source", id: source.id, name: "Flagsmith" },
      log: "New Flag / Remote Config created: my_feature",
      author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson" },
      environment: null,
      project: { id: 6, name: "Project name", organisation: org.orgId },
      related_object_id: 6,
      related_object_type: "FEATURE",
      related_object_uuid: null,
      is_system_event: false,
      change_type: "UPDATE",
      change_details: [],
      api_key_name: null,
    });
    expect(await auditCount(org)).toBe(1 + 4 + 1);
    expect(await countRows("projects", "org_id = ? and id = 6 and name = 'Project name'", org.orgId)).toBe(1);

    // Flagsmith sends the audit log wrapped; the relayed body is that, keys sorted like Flagsmith's json.dumps.
    const expected = await pythonDumps(`{"data": ${SEED_AUDIT}, "event_type": "AUDIT_LOG_CREATED"}`);
    const a = await firstMention("inbound-audit-a", "my_feature");
    const b = await firstMention("inbound-audit-b", "my_feature");
    for (const received of [a, b]) {
      expect(received.body).toBe(expected);
      expect(JSON.parse(received.body)).toEqual({ data: JSON.parse(SEED_AUDIT), event_type: "AUDIT_LOG_CREATED" });
    }
    expect(await seedPythonSays("secret of receiver A", a.body, a.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays(hookB.secret, b.body, b.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays(source.secret, a.body, a.headers["x-flagsmith-signature"])).toBe("invalid");
    expect(new StandardWebhook(hookB.secret.slice("whsec_".length)).verify(b.body, b.headers)).toMatchObject({ event_type: "AUDIT_LOG_CREATED" });
    expect((await mailbox("inbound-audit-env")).count).toBe(0);
  });

  it("keeps Flagsmith's richer real serialiser output as received: ids, uuids, api keys, system events", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-audit-rich") });
    const source = await createSource(org);
    const data = {
      id: 9912,
      uuid: "0f9a3b0e-62c4-4c1f-8a53-9f0c1d1e2f3a",
      created_date: "2024-05-01T10:11:12.131415Z",
      log: "Flag state updated for feature: dark_mode",
      author: null,
      environment: { id: 77, uuid: "6c1d...", name: "Production", api_key: "ser.AbCdEf123", project: 40, minimum_change_request_approvals: null },
      project: { id: 40, uuid: "9a0b...", name: "Shop", organisation: 2, hide_disabled_flags: false, enable_dynamo_db: true },
      related_object_id: 5521,
      related_object_uuid: "77aa88bb-0000-4000-8000-000000000001",
      related_object_type: "FEATURE_STATE",
      is_system_event: true,
      master_api_key: { id: "abc", name: "CI key" },
    };
    const body = JSON.stringify({ event_type: "AUDIT_LOG_CREATED", data });
    const { event_id } = await relay(source, body);
    const status = await deliveriesOf(org, event_id, 1);
    const entry = await (await call(`/api/v1/audit/${status.audit_entry_id}`, { headers: org.auth })).json();
    expect(entry).toMatchObject({
      created_date: "2024-05-01T10:11:12.131415Z",
      log: "Flag state updated for feature: dark_mode",
      author: null,
      environment: { id: 77, name: "Production" },
      project: { id: 40, name: "Shop", organisation: org.orgId },
      related_object_id: 5521,
      related_object_type: "FEATURE_STATE",
      related_object_uuid: "77aa88bb-0000-4000-8000-000000000001",
      is_system_event: true,
    });
    expect(await countRows("environments", "org_id = ? and id = 77 and project_id = 40 and api_key = 'ser.AbCdEf123'", org.orgId)).toBe(1);
    const relayed = await firstMention("inbound-audit-rich", "dark_mode");
    expect(relayed.body).toBe(await pythonDumps(body));
    expect(JSON.parse(relayed.body).data).toEqual(data);
  });

  it("keeps a person's change a person's, even when Flagsmith names no author", async () => {
    const org = await createOrganisation();
    const source = await createSource(org);
    const body = JSON.stringify({
      data: { created_date: "2024-05-01T10:11:12Z", log: "Segment updated: beta", author: null, project: { id: 1, name: "P" }, environment: null, related_object_id: 3, related_object_type: "SEGMENT", is_system_event: false },
      event_type: "AUDIT_LOG_CREATED",
    });
    const { event_id } = await relay(source, body);
    const { audit_entry_id } = await recorded(org.auth, event_id);
    const entry = await (await call(`/api/v1/audit/${audit_entry_id}`, { headers: org.auth })).json();
    // Zero microseconds as Flagsmith's serialiser writes them (Django REST framework, isoformat()).
    expect(entry).toMatchObject({ created_date: "2024-05-01T10:11:12Z", is_system_event: false, author: null, related_object_type: "SEGMENT" });
  });
});

describe("Flagsmith's environment web hooks, relayed", () => {
  it("relays the seed's FLAG_UPDATED sample to the environment's webhooks, data re-serialised with sorted keys and re-signed per subscriber, with no audit entry", async () => {
    const org = await createOrganisation();
    const envA = await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-flag-a"), secret: "my shared secret" });
    const envB = await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-flag-b") });
    const orgFlags = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-flag-org"), event_types: ["FLAG_UPDATED"] });
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-flag-org-audit"), event_types: ["AUDIT_LOG_CREATED"] });
    await webhook(org, `/api/v1/environments/24`, { url: hookUrl("inbound-flag-other-env") });
    const source = await createSource(org);
    await settled(org, 6);

    const signature = await flagsmithSignature(source.secret, SEED_FLAG_UPDATED_SENT);
    expect(await seedPythonSays(source.secret, SEED_FLAG_UPDATED_SENT, signature)).toBe("valid");
    const res = await postAsFlagsmith(source, SEED_FLAG_UPDATED_SENT, signature);
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };

    const status = await deliveriesOf(org, event_id, 3);
    expect(status.audit_entry_id).toBeNull();
    expect(status.deliveries.map((d) => [d.webhook_id, d.event_type]).sort()).toEqual(
      [[envA.id, "FLAG_UPDATED"], [envB.id, "FLAG_UPDATED"], [orgFlags.id, "FLAG_UPDATED"]].sort(),
    );
    expect(await countRows("relayed_events", "org_id = ? and event_id = ? and event_type = 'FLAG_UPDATED' and environment_id = 23", org.orgId, event_id)).toBe(1);
    expect(await countRows("audit_entries", "org_id = ? and event_id = ?", org.orgId, event_id)).toBe(0);
    expect(await auditCount(org)).toBe(1 + 6);
    expect(await countRows("projects", "org_id = ? and id = 12 and name = 'Flagsmith Website'", org.orgId)).toBe(1);
    expect(await countRows("environments", "org_id = ? and id = 23 and name = 'Development' and project_id = 12", org.orgId)).toBe(1);

    const expected = await pythonDumps(SEED_FLAG_UPDATED_SENT);
    const relayed = await Promise.all(["inbound-flag-a", "inbound-flag-b", "inbound-flag-org"].map((box) => firstMention(box, "butter_bar")));
    for (const r of relayed) {
      expect(r.body).toBe(expected);
      expect(JSON.parse(r.body)).toEqual(JSON.parse(SEED_FLAG_UPDATED_SENT));
    }
    const [a, b, o] = relayed;
    expect(await seedPythonSays("my shared secret", a.body, a.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays(envB.secret, b.body, b.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays(orgFlags.secret, o.body, o.headers["x-flagsmith-signature"])).toBe("valid");
    expect(new Set(relayed.map((r) => r.headers["x-flagsmith-signature"])).size).toBe(3);
    expect(new StandardWebhook(btoa("my shared secret")).verify(a.body, a.headers)).toMatchObject({ event_type: "FLAG_UPDATED" });
    expect(await received("inbound-flag-org-audit", "butter_bar")).toEqual([]);
    expect((await mailbox("inbound-flag-other-env")).count).toBe(0);
  });

  it("relays FLAG_DELETED with Flagsmith's extra fields (multivariate values, identity overrides, api_key) kept", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/environments/31`, { url: hookUrl("inbound-flag-deleted") });
    const source = await createSource(org);
    const state = {
      enabled: true,
      environment: { id: 31, name: "Staging", api_key: "ser.Staging31" },
      feature: {
        created_date: "2023-01-02T03:04:05.060708Z",
        default_enabled: false,
        description: null,
        id: 501,
        initial_value: "blue",
        name: "colour",
        project: { id: 9, name: "Café ☕" },
        type: "MULTIVARIATE",
        tags: [],
      },
      feature_segment: null,
      feature_state_value: "green\u007f",
      identity: 8812,
      identity_identifier: "user-42",
      multivariate_feature_state_values: [{ id: 1, multivariate_feature_option: 3, percentage_allocation: 50 }],
    };
    // Flagsmith is Python: its floats keep their ".0", its ints may pass 2^53; both are relayed as written.
    const body = JSON.stringify({ event_type: "FLAG_DELETED", data: { changed_by: "Kyle Johnson", new_state: null, previous_state: state, timestamp: recentTimestamp(4), big: 1 } })
      .replace('"percentage_allocation":50', '"percentage_allocation":50.0')
      .replace('"big":1', '"big":12345678901234567890');
    const { event_id } = await relay(source, body);
    await deliveriesOf(org, event_id, 1);
    const relayed = await eventually(async () => (await mailbox("inbound-flag-deleted")).requests[0]);
    expect(relayed.body).toBe(await pythonDumps(body));
    expect(relayed.body).toContain('"name": "Caf\\u00e9 \\u2615"');
    expect(relayed.body).toContain('"percentage_allocation": 50.0');
    expect(relayed.body).toContain('"big": 12345678901234567890');
    expect(relayed.body).toContain('"feature_state_value": "green\\u007f"');
    expect(JSON.parse(relayed.body)).toEqual(JSON.parse(body));
    expect(await countRows("environments", "org_id = ? and id = 31 and api_key = 'ser.Staging31' and project_id = 9", org.orgId)).toBe(1);
    // Environment webhooks can now be managed by the api_key Flagsmith sent.
    const byKey = await call(`/api/v1/environments/ser.Staging31/webhooks/`, { headers: org.auth });
    expect(((await byKey.json()) as { results: unknown[] }).results).toHaveLength(1);
  });

  it("records a body too large for a queue message before answering, like any other event", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-flag-large") });
    const source = await createSource(org);
    const seed = JSON.parse(SEED_FLAG_UPDATED_SENT);
    seed.data.new_state.feature_state_value = "x".repeat(150_000);
    const body = JSON.stringify(seed);
    const { event_id } = await relay(source, body);
    const status = (await (await call(`/api/v1/events/${event_id}`, { headers: org.auth })).json()) as { status: string; deliveries: unknown[] };
    expect(status).toMatchObject({ status: "recorded", deliveries: [expect.anything()] });
    const relayed = await eventually(async () => (await mailbox("inbound-flag-large")).requests[0]);
    expect(relayed.body).toBe(await pythonDumps(body));
  });

  it("retries a relayed change, logs every attempt, and replays it with the same bytes and webhook-id", async () => {
    const org = await createOrganisation();
    const hook = await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-flag-retry") });
    await scriptMailbox("inbound-flag-retry", { responses: [{ status: 503, body: "busy" }], default: { status: 200 } });
    const source = await createSource(org);
    const { event_id } = await relay(source, SEED_FLAG_UPDATED_SENT);
    const [delivery] = (await deliveriesOf(org, event_id, 1)).deliveries;
    expect(delivery.webhook_id).toBe(hook.id);
    const detail = await eventually(async () => {
      const d = (await (await call(`/api/v1/deliveries/${delivery.id}`, { headers: org.auth })).json()) as {
        status: string;
        payload: string;
        attempts: { number: number; status_code: number; response_body: string | null }[];
      };
      return d.status === "delivered" ? d : undefined;
    });
    expect(detail.attempts.map((a) => [a.number, a.status_code])).toEqual([[1, 503], [2, 200]]);
    expect(detail.payload).toBe(await pythonDumps(SEED_FLAG_UPDATED_SENT));

    expect((await call(`/api/v1/deliveries/${delivery.id}/redeliver`, { method: "POST", headers: org.auth })).status).toBe(202);
    const requests = await eventually(async () => {
      const box = await mailbox("inbound-flag-retry");
      return box.requests.length === 3 ? box.requests : undefined;
    });
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(requests.map((r) => r.headers["webhook-id"])).toEqual([delivery.id, delivery.id, delivery.id]);
  });
});

describe("the inbound URL refuses what is not Flagsmith's, storing nothing", () => {
  it("answers 401, 404, 410, 400, 413 and 415 with the error shape, and records none of them", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-refused"), event_types: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"] });
    await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-refused-env") });
    const source = await createSource(org);
    const revokedSource = await createSource(org, { name: "old" });
    await call(`/api/v1/organisations/${org.orgId}/inbound-sources/${revokedSource.id}`, { method: "DELETE", headers: org.auth });
    await settled(org, 5);
    const sign = (body: string, secret = source.secret) => flagsmithSignature(secret, body);
    const unknownToken = { url: source.url.replace(/fhi_[0-9a-z]{52}$/, `fhi_${"0".repeat(52)}`) };
    const notFlagsmith = JSON.stringify({ type: "FLAG_STATE_UPDATED", project: { id: 12 }, environment: { id: 23 }, feature: { id: 1, name: "x" }, new_state: { enabled: true } });
    const unknownType = JSON.stringify({ event_type: "FLAG_CREATED", data: JSON.parse(SEED_FLAG_UPDATED).data });
    const noNewState = JSON.stringify({ event_type: "FLAG_UPDATED", data: { ...JSON.parse(SEED_FLAG_UPDATED).data, new_state: null } });
    const badDate = JSON.stringify({ event_type: "AUDIT_LOG_CREATED", data: { ...JSON.parse(SEED_AUDIT), created_date: "yesterday" } });
    const huge = JSON.stringify({ event_type: "AUDIT_LOG_CREATED", data: { ...JSON.parse(SEED_AUDIT), log: "x".repeat(2_000_001) } });

    const cases: [string, () => Promise<Response>, number, string, string?][] = [
      ["a wrong signature", async () => postAsFlagsmith(source, SEED_FLAG_UPDATED, await sign(SEED_FLAG_UPDATED, "not the secret")), 401, "invalid_signature"],
      ["a signature of another body", async () => postAsFlagsmith(source, SEED_FLAG_UPDATED, await sign(SEED_AUDIT)), 401, "invalid_signature"],
      ["a signature that is not hex", async () => postAsFlagsmith(source, SEED_FLAG_UPDATED, "sha256=abc"), 401, "invalid_signature"],
      ["no signature", async () => postAsFlagsmith(source, SEED_FLAG_UPDATED), 401, "missing_signature"],
      ["an empty signature", async () => postAsFlagsmith(source, SEED_FLAG_UPDATED, ""), 401, "missing_signature"],
      ["an unknown token", async () => postAsFlagsmith(unknownToken, SEED_FLAG_UPDATED, await sign(SEED_FLAG_UPDATED)), 404, "not_found"],
      ["a malformed token", async () => postAsFlagsmith({ url: `${source.url}x` }, SEED_FLAG_UPDATED, await sign(SEED_FLAG_UPDATED)), 404, "not_found"],
      ["a revoked source", async () => postAsFlagsmith(revokedSource, SEED_FLAG_UPDATED, await sign(SEED_FLAG_UPDATED, revokedSource.secret)), 410, "source_revoked"],
      ["a flaghook change event", async () => postAsFlagsmith(source, notFlagsmith, await sign(notFlagsmith)), 400, "validation_failed", "data.created_date"],
      ["an unknown event_type", async () => postAsFlagsmith(source, unknownType, await sign(unknownType)), 400, "validation_failed", "event_type"],
      ["FLAG_UPDATED without new_state", async () => postAsFlagsmith(source, noNewState, await sign(noNewState)), 400, "validation_failed", "data.new_state"],
      ["a created_date that is no date", async () => postAsFlagsmith(source, badDate, await sign(badDate)), 400, "validation_failed", "data.created_date"],
      ["a JSON array", async () => postAsFlagsmith(source, "[]", await sign("[]")), 400, "validation_failed"],
      ["a body that is not JSON", async () => postAsFlagsmith(source, "event_type=FLAG_UPDATED", await sign("event_type=FLAG_UPDATED")), 400, "malformed_json"],
      ["a body over 2,000,000 bytes", async () => postAsFlagsmith(source, huge, await sign(huge)), 413, "payload_too_large"],
      ["a body that is not JSON by type", async () => postAsFlagsmith(source, SEED_AUDIT, await sign(SEED_AUDIT), "text/plain"), 415, "unsupported_media_type"],
    ];
    for (const [what, send, status, code, field] of cases) {
      const res = await send();
      expect(res.status, what).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string; details: { field?: string }[] } };
      expect(body.error.code, what).toBe(code);
      expect(body.error.message, what).toEqual(expect.any(String));
      if (field) expect(body.error.details.map((d) => d.field), what).toContain(field);
    }

    // A valid body sent last is recorded; nothing before it was.
    const { event_id } = await relay(source, SEED_AUDIT);
    await deliveriesOf(org, event_id, 1);
    expect(await auditCount(org)).toBe(1 + 5 + 1);
    expect(await countRows("relayed_events", "org_id = ?", org.orgId)).toBe(0);
    expect(await countRows("deliveries", "org_id = ? and (payload like '%butter_bar%' or payload like '%my_feature%')", org.orgId)).toBe(1);
    await eventually(async () => (await received("inbound-refused", "my_feature")).length === 1);
    expect(await received("inbound-refused", "butter_bar")).toEqual([]);
    expect((await mailbox("inbound-refused-env")).count).toBe(0);
    const sources = (await (await call(`/api/v1/organisations/${org.orgId}/inbound-sources`, { headers: org.auth })).json()) as {
      results: NewSource[];
    };
    expect(sources.results.find((s) => s.id === revokedSource.id)?.last_received_at).toBeNull();
    expect(sources.results.find((s) => s.id === source.id)?.last_received_at).toEqual(expect.any(String));
  });
});

describe("Flagsmith's resends", () => {
  it("records an audit log webhook sent twice (and re-serialised, and bare vs wrapped) once, answering the same event id", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("inbound-replay-audit") });
    const source = await createSource(org);
    await settled(org, 2);
    const first = await relay(source, SEED_AUDIT);
    const second = await relay(source, SEED_AUDIT);
    const wrapped = await relay(source, `{"data": ${SEED_AUDIT}, "event_type": "AUDIT_LOG_CREATED"}`);
    const compact = await relay(source, await pythonDumps(`{"data": ${SEED_AUDIT}, "event_type": "AUDIT_LOG_CREATED"}`));
    expect([second, wrapped, compact]).toEqual([first, first, first]);
    await deliveriesOf(org, first.event_id, 1);
    await firstMention("inbound-replay-audit", "my_feature");
    await new Promise((r) => setTimeout(r, 1500));
    expect(await auditCount(org)).toBe(1 + 2 + 1);
    expect(await countRows("deliveries", "org_id = ? and event_id = ?", org.orgId, first.event_id)).toBe(1);
    expect(await received("inbound-replay-audit", "my_feature")).toHaveLength(1);
  });

  it("relays a flag webhook sent twice once, even to a webhook added in between", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-replay-flag") });
    const source = await createSource(org);
    const first = await relay(source, SEED_FLAG_UPDATED_SENT);
    await deliveriesOf(org, first.event_id, 1);
    await webhook(org, `/api/v1/environments/23`, { url: hookUrl("inbound-replay-flag-late") });
    const second = await relay(source, SEED_FLAG_UPDATED_SENT);
    expect(second).toEqual(first);
    await eventually(async () => (await mailbox("inbound-replay-flag")).count === 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await countRows("relayed_events", "org_id = ?", org.orgId)).toBe(1);
    expect(await countRows("deliveries", "org_id = ?", org.orgId)).toBe(1);
    expect((await mailbox("inbound-replay-flag")).count).toBe(1);
    expect((await mailbox("inbound-replay-flag-late")).count).toBe(0);

    // A later change to the same flag (a new timestamp) is a new event.
    const later = SEED_FLAG_UPDATED.replace(SEED_TIMESTAMP, recentTimestamp(3));
    const third = await relay(source, later);
    expect(third.event_id).not.toBe(first.event_id);
    await deliveriesOf(org, third.event_id, 2);
  });
});

describe("Flagsmith's bodies, read (pure)", () => {
  it("reads the bare audit object of the docs as the AUDIT_LOG_CREATED Flagsmith sends, with the same bytes onward", () => {
    const bare = parseFlagsmithWebhook(SEED_AUDIT);
    const wrapped = parseFlagsmithWebhook(`{"event_type": "AUDIT_LOG_CREATED", "data": ${SEED_AUDIT}}`);
    expect(bare).toEqual(wrapped);
    expect(bare).toMatchObject({ success: true, webhook: { event_type: "AUDIT_LOG_CREATED", data: JSON.parse(SEED_AUDIT) } });
  });

  it("tells a body that is not JSON from one that is not Flagsmith's", () => {
    const notJson = parseFlagsmithWebhook("{");
    expect(notJson.success === false && notJson.error instanceof SyntaxError).toBe(true);
    const notFlagsmith = parseFlagsmithWebhook(`{"event_type": "FLAG_UPDATED", "data": {"timestamp": "2021-06-18T07:50:26.595298Z"}}`);
    expect(notFlagsmith.success === false && !(notFlagsmith.error instanceof SyntaxError) && notFlagsmith.error.issues[0].path).toEqual(["data", "new_state"]);
  });

  it("maps flag webhooks to the change they describe, for the environment and project upserts", () => {
    const seed = JSON.parse(SEED_FLAG_UPDATED);
    const as = (data: unknown, event_type = "FLAG_UPDATED") => {
      const parsed = parseFlagsmithWebhook(JSON.stringify({ event_type, data }));
      if (!parsed.success) throw parsed.error;
      return relayedChangeEvent("src_test", parsed.webhook);
    };
    const segment = { segment: { id: 9, name: "beta", description: null }, priority: 0 };
    expect(as(seed.data)).toMatchObject({
      type: "FLAG_STATE_UPDATED",
      occurred_at: "2021-06-18T07:50:26.595298Z",
      project: { id: 12, name: "Flagsmith Website" },
      environment: { id: 23, name: "Development", api_key: null },
      feature: { id: 7168, name: "butter_bar" },
      relayed: { source: "src_test", event_type: "FLAG_UPDATED" },
    });
    expect(as({ ...seed.data, new_state: { ...seed.data.new_state, identity: 5, identity_identifier: "u" } }).type).toBe("IDENTITY_OVERRIDE_UPDATED");
    expect(as({ ...seed.data, new_state: null }, "FLAG_DELETED").type).toBe("FEATURE_DELETED");
    expect(as({ ...seed.data, new_state: null, previous_state: { ...seed.data.previous_state, feature_segment: segment } }, "FLAG_DELETED").type).toBe(
      "SEGMENT_OVERRIDE_DELETED",
    );
  });
});
