// Flag history from Flagsmith's own webhooks, relayed through an inbound source and mixed with
// flaghook's own events on the same flags; and a v2 NEW_VERSION_PUBLISHED body mapped into the
// same history. Bodies are written as Flagsmith's code writes them: environments/models.py
// `Webhook.generate_webhook_feature_state_data` (FLAG_UPDATED / FLAG_DELETED state objects),
// features/tasks.py `trigger_feature_state_change_webhooks` (changed_by, timestamp, previous_state),
// features/versioning/schemas.py `EnvironmentFeatureVersionWebhookDataSerializer` and
// webhooks/webhooks.py `_call_webhooks` ({"data", "event_type"}, json.dumps(sort_keys=True)).
import { describe, expect, it } from "vitest";
import { publishedVersionStates } from "../src/domain/history";
import { sortedJson } from "../src/domain/payload";
import { publishedVersion } from "../src/domain/versioning";
import { call, countRows, createOrganisation, recorded } from "./helpers";

type Org = Awaited<ReturnType<typeof createOrganisation>>;
type Json = Record<string, unknown>;

const ENV = { id: 23, name: "Development" };
const PROJECT = { id: 12, name: "Flagsmith Website" };
const FEATURE = {
  created_date: "2021-02-10T20:03:43.348556Z",
  default_enabled: false,
  description: "Show markdown in a butter bar for certain users",
  id: 7168,
  initial_value: null,
  name: "butter_bar",
  project: PROJECT,
  type: "MULTIVARIATE",
};
const MV = [
  { id: 901, multivariate_feature_option: 31, percentage_allocation: 30 },
  { id: 902, multivariate_feature_option: 32, percentage_allocation: 70 },
];

/** A feature state as Webhook.generate_webhook_feature_state_data writes it. */
const fs = (enabled: boolean, value: unknown, more: Json = {}) => ({
  enabled,
  environment: ENV,
  feature: FEATURE,
  feature_segment: null,
  feature_state_value: value,
  identity: null,
  identity_identifier: null,
  multivariate_feature_state_values: [],
  ...more,
});
const BETA = { feature_segment: { priority: 1, segment: { description: "people who asked", id: 55, name: "beta" } } };
const USER = { identity: 77, identity_identifier: "user-77" };

/** A time of yesterday: relayed bodies older than the replay window (issue 14) are refused. */
const YESTERDAY = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const t = (hhmm: string) => `${YESTERDAY}T${hhmm}:00.000000Z`;

async function signature(secret: string, body: string) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function source(org: Org) {
  const res = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/`, { method: "POST", headers: org.auth, json: { name: "Flagsmith" } });
  expect(res.status).toBe(201);
  return (await res.json()) as { url: string; secret: string };
}

/** Posts a body as Flagsmith does (json.dumps(sort_keys=True), signed) and waits until it is recorded. */
async function relay(org: Org, src: { url: string; secret: string }, eventType: string, data: Json, query = "") {
  const body = sortedJson({ data, event_type: eventType });
  const res = await call(new URL(src.url).pathname + query, {
    method: "POST",
    headers: { "content-type": "application/json", "x-flagsmith-signature": await signature(src.secret, body) },
    body,
  });
  expect(res.status).toBe(202);
  const { event_id } = (await res.json()) as { event_id: string };
  await recorded(org.auth, event_id);
  return event_id;
}

async function own(org: Org, event: Json) {
  const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
  const { event_id } = (await res.json()) as { event_id: string };
  return { eventId: event_id, entry: (await recorded(org.auth, event_id)).audit_entry_id };
}

const stateAt = async (org: Org, at: string) => {
  const res = await call(`/api/v1/environments/${ENV.id}/state?at=${at}`, { headers: org.auth });
  expect(res.status).toBe(200);
  return ((await res.json()) as { features: Json[] }).features;
};

/** A state set by a relayed Flagsmith event: no audit entry, its flaghook event id instead. */
const relayed = (eventId: string, at: string, enabled: boolean, value: unknown, mv: unknown = [], more: Json = {}) => ({
  ...more,
  enabled,
  feature_state_value: value,
  multivariate_feature_state_values: mv,
  changed_at: at,
  audit_entry_id: null,
  event_id: eventId,
  known: true,
});

describe("flag history from Flagsmith's relayed webhooks mixed with flaghook's own events", () => {
  it("records every kind of Flagsmith flag body in the same history as flaghook's events", async () => {
    const org = await createOrganisation();
    const src = await source(org);
    const on = await relay(org, src, "FLAG_UPDATED", {
      changed_by: "kyle@example.com",
      new_state: fs(true, "hello", { multivariate_feature_state_values: MV }),
      previous_state: fs(false, "hello"),
      timestamp: t("10:00"),
    });
    // flaghook's own event on the same flag, between Flagsmith's.
    const seg = await own(org, {
      type: "SEGMENT_OVERRIDE_UPDATED",
      occurred_at: t("10:05"),
      author: { email: "ana@example.com", first_name: "Ana", last_name: "Lee" },
      project: PROJECT,
      environment: ENV,
      feature: { id: FEATURE.id, name: FEATURE.name },
      segment: { id: 55, name: "beta" },
      segment_priority: 1,
      new_state: { enabled: true, feature_state_value: "beta text" },
    });
    const segRelayed = await relay(org, src, "FLAG_UPDATED", {
      changed_by: "kyle@example.com",
      new_state: fs(false, "beta text", BETA),
      previous_state: fs(true, "beta text", BETA),
      timestamp: t("10:10"),
    });
    // An identity override's first FLAG_UPDATED has no previous_state: Flagsmith just created it.
    const ident = await relay(org, src, "FLAG_UPDATED", { changed_by: "", new_state: fs(true, 42, USER), timestamp: t("10:20") });

    expect(await stateAt(org, t("10:25"))).toEqual([
      {
        feature: { id: FEATURE.id, name: FEATURE.name },
        ...relayed(on, t("10:00"), true, "hello", MV),
        known_since: t("10:00"),
        segment_overrides: [{ segment: { id: 55, name: "beta" }, ...relayed(segRelayed, t("10:10"), false, "beta text", [], { priority: 1 }) }],
        identity_overrides: [{ identity: { id: 77, identifier: "user-77" }, ...relayed(ident, t("10:20"), true, 42) }],
      },
    ]);
    const timeline = (await (await call(`/api/v1/environments/${ENV.id}/features/${FEATURE.id}/timeline`, { headers: org.auth })).json()) as { results: Json[] };
    expect(timeline.results.map((e) => [e.changed_at, e.change, e.scope, e.author, e.audit_entry_id, e.event_id])).toEqual([
      [t("10:00"), "set", "environment", "kyle@example.com", null, on],
      [t("10:05"), "set", "segment", "Ana Lee", seg.entry, seg.eventId],
      [t("10:10"), "set", "segment", "kyle@example.com", null, segRelayed],
      [t("10:20"), "created", "identity", null, null, ident],
    ]);
    // The first change's previous state is what Flagsmith reported; later ones replace the one before.
    expect(timeline.results[0].before).toEqual({ ...relayed("", "", false, "hello"), changed_at: null, event_id: null, known: true });
    expect(timeline.results[2].before).toEqual({ priority: 1, enabled: true, feature_state_value: "beta text", multivariate_feature_state_values: null, changed_at: t("10:05"), audit_entry_id: seg.entry, event_id: seg.eventId, known: true });
    expect(timeline.results[3].before).toBeNull();

    // Deleting the identity override ends it; deleting the environment default is the feature's deletion.
    await relay(org, src, "FLAG_DELETED", { changed_by: "kyle@example.com", new_state: null, previous_state: fs(true, 42, USER), timestamp: t("10:30") });
    expect(((await stateAt(org, t("10:35")))[0] as { identity_overrides: unknown[] }).identity_overrides).toEqual([]);
    const flip = await own(org, {
      type: "FLAG_STATE_UPDATED",
      occurred_at: t("10:40"),
      api_key_name: "deploy bot",
      project: PROJECT,
      environment: ENV,
      feature: { id: FEATURE.id, name: FEATURE.name },
      new_state: { enabled: false, feature_state_value: "bye" },
    });
    expect((await stateAt(org, t("10:45")))[0]).toMatchObject({ enabled: false, feature_state_value: "bye", audit_entry_id: flip.entry, multivariate_feature_state_values: null });
    const gone = await relay(org, src, "FLAG_DELETED", { changed_by: "kyle@example.com", new_state: null, previous_state: fs(false, "bye"), timestamp: t("10:50") });
    expect(await stateAt(org, t("10:55"))).toEqual([]);
    const changes = (await (await call(`/api/v1/environments/${ENV.id}/changes?from=${t("10:45")}&to=${t("10:55")}`, { headers: org.auth })).json()) as { changes: Json[] };
    expect(changes.changes.map((c) => [c.scope, (c.before as Json | null)?.feature_state_value, c.after, c.authors, c.audit_entry_ids, c.event_ids])).toEqual([
      ["environment", "bye", null, ["kyle@example.com"], [], [gone]],
      ["segment", "beta text", null, ["kyle@example.com"], [], [gone]],
    ]);

    // A resend of the same bytes (Flagsmith retries on connection errors) records nothing more.
    const rows = await countRows("flag_changes", "org_id = ?", org.orgId);
    await relay(org, src, "FLAG_DELETED", { changed_by: "kyle@example.com", new_state: null, previous_state: fs(false, "bye"), timestamp: t("10:50") });
    expect(await countRows("flag_changes", "org_id = ?", org.orgId)).toBe(rows);
    // Flagsmith's AUDIT_LOG_CREATED for the same changes adds an audit entry but no flag history.
    await relay(org, src, "AUDIT_LOG_CREATED", {
      created_date: t("10:50"),
      log: "Flag state updated for feature: butter_bar",
      author: { email: "kyle@example.com" },
      environment: ENV,
      project: PROJECT,
      related_object_id: 1,
      related_object_type: "FEATURE_STATE",
    });
    expect(await countRows("flag_changes", "org_id = ?", org.orgId)).toBe(rows);
  });
});

/** NEW_VERSION_PUBLISHED's data as EnvironmentFeatureVersionWebhookDataSerializer dumps it. */
const version = (states: { enabled: boolean; value: unknown; multivariate_feature_state_values?: unknown[] }[]) => ({
  uuid: "4c1e5a2e-9f0a-4d7e-8a8e-2f7b1f9b3c11",
  feature: { id: FEATURE.id, name: FEATURE.name },
  published_by: { id: 3, email: "kyle@example.com" },
  feature_states: states,
});
const MV_VERSION = [{ id: 911, multivariate_feature_option: { id: 31, value: "blue" }, percentage_allocation: 30 }];

describe("a v2 published version (NEW_VERSION_PUBLISHED) maps into the same history", () => {
  it("makes a version of one state the default and ends every segment override; several states leave both unknown", () => {
    const where = { environmentId: ENV.id, projectId: PROJECT.id };
    const feature = { id: FEATURE.id, name: FEATURE.name };
    const states = (data: ReturnType<typeof version>) => publishedVersionStates(publishedVersion(data)!, where);
    expect(states(version([{ enabled: true, value: "big", multivariate_feature_state_values: MV_VERSION }]))).toEqual([
      { ...where, feature, scope: "environment", change: "set", state: { enabled: true, feature_state_value: "big", multivariate_feature_state_values: MV_VERSION } },
      { ...where, feature, scope: "segment", every: true, change: "deleted", state: null },
    ]);
    expect(states(version([{ enabled: true, value: "big" }, { enabled: false, value: "small" }]))).toEqual([
      { ...where, feature, scope: "environment", change: "unknown", state: null },
      { ...where, feature, scope: "segment", every: true, change: "unknown", state: null },
    ]);
  });

  it("projects a relayed version into the history, and answers unknown where it cannot tell", async () => {
    const org = await createOrganisation();
    const seg = await own(org, {
      type: "SEGMENT_OVERRIDE_UPDATED",
      occurred_at: t("09:00"),
      author: { email: "ana@example.com" },
      project: PROJECT,
      environment: ENV,
      feature: { id: FEATURE.id, name: FEATURE.name },
      segment: { id: 55, name: "beta" },
      segment_priority: 0,
      new_state: { enabled: true, feature_state_value: "beta" },
    });
    // Flagsmith sends a version to the inbound URL of each environment's webhook, which names the
    // environment (?environment=); the body has no time of its own, so it takes effect on receipt.
    const src = await source(org);
    const publish = async (data: ReturnType<typeof version>) => {
      const eventId = await relay(org, src, "NEW_VERSION_PUBLISHED", data, `?environment=${ENV.id}`);
      const status = await recorded(org.auth, eventId);
      const [entry] = ((await (await call(`/api/v1/audit/?related_object_type=EF_VERSION`, { headers: org.auth })).json()) as { results: { id: number; created_date: string }[] }).results;
      expect(entry.id).toBe(status.audit_entry_id);
      return { eventId, entry: status.audit_entry_id, at: new Date().toISOString() };
    };
    const one = await publish(version([{ enabled: true, value: "big", multivariate_feature_state_values: MV_VERSION }]));
    const beta = { segment: { id: 55, name: "beta" }, priority: 0, enabled: true, feature_state_value: "beta", multivariate_feature_state_values: null, changed_at: t("09:00"), audit_entry_id: seg.entry, event_id: seg.eventId, known: true };
    const at0930 = await stateAt(org, t("09:30"));
    expect(at0930).toEqual([
      { feature: { id: FEATURE.id, name: FEATURE.name }, ...UNKNOWN_DEFAULT, known_since: t("09:00"), segment_overrides: [beta], identity_overrides: [] },
    ]);
    expect(await stateAt(org, one.at)).toEqual([
      {
        feature: { id: FEATURE.id, name: FEATURE.name },
        enabled: true,
        feature_state_value: "big",
        multivariate_feature_state_values: MV_VERSION,
        changed_at: expect.stringMatching(new RegExp(`^${new Date().toISOString().slice(0, 10)}T`)),
        // A published version is audited (issue 10), so its state names the entry.
        audit_entry_id: one.entry,
        event_id: one.eventId,
        known: true,
        known_since: t("09:00"),
        segment_overrides: [],
        identity_overrides: [],
      },
    ]);
    const two = await publish(version([{ enabled: true, value: "big" }, { enabled: false, value: "small" }]));
    expect(await stateAt(org, two.at)).toEqual([
      {
        feature: { id: FEATURE.id, name: FEATURE.name },
        ...UNKNOWN_DEFAULT,
        known_since: t("09:00"),
        segment_overrides: [{ segment: null, priority: null, ...UNKNOWN_DEFAULT }],
        identity_overrides: [],
      },
    ]);
  });
});

const UNKNOWN_DEFAULT = {
  enabled: null,
  feature_state_value: null,
  multivariate_feature_state_values: null,
  changed_at: null,
  audit_entry_id: null,
  event_id: null,
  known: false,
};
