// SPEC 4: the bodies flaghook sends are Flagsmith's, byte for byte.
import { describe, expect, it } from "vitest";
import { auditData, auditFields } from "../src/domain/audit";
import { changeEvent, type ChangeEvent } from "../src/domain/event";
import { planDeliveries, type Subscriber } from "../src/domain/fanout";
import { changedBy, flagPayload, sortedJson } from "../src/domain/payload";
import seedAuditLog from "./fixtures/seed-audit-log.json";
import seedFlagUpdated from "./fixtures/seed-flag-updated.json";
import { pythonDumps } from "./helpers";

const parse = (input: unknown): ChangeEvent => changeEvent.parse(input);

const butterBar = {
  id: 7168,
  name: "butter_bar",
  type: "CONFIG",
  description: "Show markdown in a butter bar for certain users",
  default_enabled: false,
  initial_value: null,
  created_date: "2021-02-10T20:03:43.348556Z",
};
const value = "<strong>\nYou are using the develop environment.\n</strong>";
const base = {
  author: { id: 1, email: "ben@example.com", first_name: "Ben", last_name: "Rometsch" },
  project: { id: 12, name: "Flagsmith Website" },
  environment: { id: 23, name: "Development" },
  feature: butterBar,
};
const development = { id: 23, name: "Development" };

const state = (enabled: boolean, featureStateValue: unknown, extra: Record<string, unknown> = {}) => ({
  enabled,
  environment: development,
  feature: { ...butterBar, project: { id: 12, name: "Flagsmith Website" } },
  feature_segment: null,
  feature_state_value: featureStateValue,
  identity: null,
  identity_identifier: null,
  ...extra,
});

describe("environment webhook payloads", () => {
  it("reproduces the seed's FLAG_UPDATED sample exactly", () => {
    const event = parse({
      ...base,
      type: "FLAG_STATE_UPDATED",
      occurred_at: "2021-06-18T07:50:26.595298Z",
      previous_state: { enabled: false, feature_state_value: value },
      new_state: { enabled: true, feature_state_value: value },
    });
    const body = flagPayload(event, development, event.occurred_at!);
    expect(JSON.parse(body)).toEqual(seedFlagUpdated);
  });

  it("is the bytes Python's json.dumps(sort_keys=True) makes, non-ASCII escaped", async () => {
    const event = parse({
      ...base,
      type: "REMOTE_CONFIG_UPDATED",
      author: { id: 2, email: "zoë@example.com", first_name: "Zoë", last_name: "Ünal" },
      new_state: { enabled: true, feature_state_value: 'emoji 🚀 "quoted" \\ back\tslash\u0001' },
    });
    const body = flagPayload(event, development, "2021-06-18T07:50:26.595298Z");
    expect(body).toBe(await pythonDumps(body));
    expect(body).toContain('"changed_by": "Zo\\u00eb \\u00dcnal"');
    expect(body).toContain("\\ud83d\\ude80");
  });

  const cases: [string, Record<string, unknown>, unknown][] = [
    [
      "FEATURE_CREATED describes the feature's default state, with no previous_state",
      { type: "FEATURE_CREATED", feature: { ...butterBar, default_enabled: true, initial_value: "v1" } },
      {
        data: {
          changed_by: "Ben Rometsch",
          new_state: state(true, "v1", { feature: { ...butterBar, default_enabled: true, initial_value: "v1", project: { id: 12, name: "Flagsmith Website" } } }),
          timestamp: "2021-06-18T07:50:26.595298Z",
        },
        event_type: "FLAG_UPDATED",
      },
    ],
    [
      "FEATURE_DELETED sends FLAG_DELETED with a null new_state",
      { type: "FEATURE_DELETED", previous_state: { enabled: true, feature_state_value: "x" } },
      {
        data: { changed_by: "Ben Rometsch", new_state: null, previous_state: state(true, "x"), timestamp: "2021-06-18T07:50:26.595298Z" },
        event_type: "FLAG_DELETED",
      },
    ],
    [
      "IDENTITY_OVERRIDE_UPDATED sets identity and identity_identifier",
      { type: "IDENTITY_OVERRIDE_UPDATED", identity: { id: 42, identifier: "user-42" }, new_state: { enabled: true, feature_state_value: 3 } },
      {
        data: {
          changed_by: "Ben Rometsch",
          new_state: state(true, 3, { identity: 42, identity_identifier: "user-42" }),
          timestamp: "2021-06-18T07:50:26.595298Z",
        },
        event_type: "FLAG_UPDATED",
      },
    ],
    [
      "IDENTITY_OVERRIDE_DELETED sends FLAG_DELETED with the previous override",
      {
        type: "IDENTITY_OVERRIDE_DELETED",
        identity: { id: 42, identifier: "user-42" },
        previous_state: { enabled: false, feature_state_value: null },
      },
      {
        data: {
          changed_by: "Ben Rometsch",
          new_state: null,
          previous_state: state(false, null, { identity: 42, identity_identifier: "user-42" }),
          timestamp: "2021-06-18T07:50:26.595298Z",
        },
        event_type: "FLAG_DELETED",
      },
    ],
    [
      "SEGMENT_OVERRIDE_UPDATED sets feature_segment with the segment and its priority",
      {
        type: "SEGMENT_OVERRIDE_UPDATED",
        segment: { id: 9, name: "beta", description: "beta users" },
        segment_priority: 1,
        previous_state: { enabled: false, feature_state_value: "a" },
        new_state: { enabled: true, feature_state_value: "b" },
      },
      {
        data: {
          changed_by: "Ben Rometsch",
          new_state: state(true, "b", { feature_segment: { priority: 1, segment: { description: "beta users", id: 9, name: "beta" } } }),
          previous_state: state(false, "a", { feature_segment: { priority: 1, segment: { description: "beta users", id: 9, name: "beta" } } }),
          timestamp: "2021-06-18T07:50:26.595298Z",
        },
        event_type: "FLAG_UPDATED",
      },
    ],
    [
      "SEGMENT_OVERRIDE_DELETED sends FLAG_DELETED",
      { type: "SEGMENT_OVERRIDE_DELETED", segment: { id: 9, name: "beta" } },
      {
        data: { changed_by: "Ben Rometsch", new_state: null, timestamp: "2021-06-18T07:50:26.595298Z" },
        event_type: "FLAG_DELETED",
      },
    ],
  ];
  it.each(cases)("%s", async (_name, fields, expected) => {
    const event = parse({ ...base, ...fields });
    const body = flagPayload(event, development, "2021-06-18T07:50:26.595298Z");
    expect(JSON.parse(body)).toEqual(expected);
    expect(body).toBe(sortedJson(expected));
    expect(body).toBe(await pythonDumps(body));
  });

  it("changed_by falls back from the name to the email to the API key's name to empty", () => {
    expect(changedBy(parse({ ...base, type: "FEATURE_UPDATED" }))).toBe("Ben Rometsch");
    expect(changedBy(parse({ ...base, type: "FEATURE_UPDATED", author: { id: 1, email: "a@b.c" } }))).toBe("a@b.c");
    expect(changedBy(parse({ ...base, type: "FEATURE_UPDATED", author: null, api_key_name: "terraform" }))).toBe("terraform");
    expect(changedBy(parse({ ...base, type: "FEATURE_UPDATED", author: null }))).toBe("");
  });
});

describe("audit log webhook payload", () => {
  it("has the seed's fields plus Flagsmith's data/event_type envelope", async () => {
    const event = parse({
      type: "FEATURE_CREATED",
      occurred_at: "2020-02-23T17:30:57.006318Z",
      author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson" },
      project: { id: 6, name: "Project name" },
      feature: { id: 6, name: "my_feature" },
    });
    const fields = auditFields(1, event, event.occurred_at!, false);
    const data = auditData({ ...fields, seq: 101 });
    const [delivery] = planDeliveries({
      event,
      auditData: data,
      timestamp: event.occurred_at!,
      webhooks: [{ id: "whk_1", scope: "organisation", environmentId: null, eventTypes: ["AUDIT_LOG_CREATED"] }],
      projectEnvironments: [],
      projectName: null,
    });
    const body = JSON.parse(delivery.payload);
    expect(body).toEqual({
      data: { ...seedAuditLog, id: 101, is_system_event: false, related_object_uuid: null },
      event_type: "AUDIT_LOG_CREATED",
    });
    expect(delivery.payload).toBe(await pythonDumps(delivery.payload));
  });
});

describe("fan-out", () => {
  const hooks: Subscriber[] = [
    { id: "org", scope: "organisation", environmentId: null, eventTypes: ["AUDIT_LOG_CREATED"] },
    { id: "org-flags", scope: "organisation", environmentId: null, eventTypes: ["FLAG_UPDATED", "FLAG_DELETED"] },
    { id: "dev", scope: "environment", environmentId: 23, eventTypes: null },
    { id: "prod", scope: "environment", environmentId: 24, eventTypes: null },
    { id: "prod-deletes", scope: "environment", environmentId: 24, eventTypes: ["FLAG_DELETED"] },
  ];
  const plan = (fields: Record<string, unknown>) =>
    planDeliveries({
      event: parse({ ...base, ...fields }),
      auditData: {},
      timestamp: "2021-06-18T07:50:26.595298Z",
      webhooks: hooks,
      projectEnvironments: [development, { id: 24, name: "Production" }],
      projectName: null,
    }).map((d) => `${d.webhookId}:${d.eventType}:${d.environmentId ?? "-"}`);

  it("sends a state change to the audit webhook, the flag-subscribed org webhook and that environment's webhooks", () => {
    expect(plan({ type: "FLAG_STATE_UPDATED", new_state: { enabled: true } })).toEqual([
      "org:AUDIT_LOG_CREATED:-",
      "org-flags:FLAG_UPDATED:23",
      "dev:FLAG_UPDATED:23",
    ]);
  });

  it("sends FEATURE_CREATED without an environment to every known environment of the project", () => {
    expect(plan({ type: "FEATURE_CREATED", environment: null })).toEqual([
      "org:AUDIT_LOG_CREATED:-",
      "org-flags:FLAG_UPDATED:23",
      "dev:FLAG_UPDATED:23",
      "org-flags:FLAG_UPDATED:24",
      "prod:FLAG_UPDATED:24",
    ]);
  });

  it("honours event_types filters: a FLAG_DELETED-only webhook gets deletions only", () => {
    expect(plan({ type: "FEATURE_DELETED", environment: null })).toContain("prod-deletes:FLAG_DELETED:24");
    expect(plan({ type: "FEATURE_CREATED", environment: null })).not.toContain("prod-deletes:FLAG_UPDATED:24");
  });

  it("sends only the audit entry for events with no environment webhook event", () => {
    expect(plan({ type: "SEGMENT_CREATED", segment: { id: 1, name: "s" } })).toEqual(["org:AUDIT_LOG_CREATED:-"]);
    expect(plan({ type: "FEATURE_UPDATED" })).toEqual(["org:AUDIT_LOG_CREATED:-"]);
  });
});

// Issue 10, point 6: what real Flagsmith receivers read. Shapes from Flagsmith 2.265:
// api/environments/models.py (Webhook.generate_webhook_feature_state_data) and api/features/tasks.py
// for flag states (multivariate_feature_state_values since PR 6666: {id, multivariate_feature_option
// {id, value}, percentage_allocation}); api/audit/serializers.py AuditLogListSerializer for the audit
// log (author: users/serializers.py UserListSerializer; environment: EnvironmentSerializerLight, whose
// project is an id; project: ProjectListSerializer), dates written by Django REST framework (isoformat()).
describe("flaghook's own payloads, as Flagsmith's receivers read them", () => {
  const variant = { id: 91, multivariate_feature_option: { id: 12, value: "green" }, percentage_allocation: 50 };

  it("sends multivariate_feature_state_values on every state once the event gives them, [] where a state has none", async () => {
    const event = parse({
      ...base,
      type: "FLAG_STATE_UPDATED",
      previous_state: { enabled: false, feature_state_value: "blue" },
      new_state: { enabled: true, feature_state_value: "blue", multivariate_feature_state_values: [variant] },
    });
    const body = flagPayload(event, development, "2021-06-18T07:50:26.595298Z");
    expect(JSON.parse(body).data).toEqual({
      changed_by: "Ben Rometsch",
      new_state: state(true, "blue", { multivariate_feature_state_values: [variant] }),
      previous_state: state(false, "blue", { multivariate_feature_state_values: [] }),
      timestamp: "2021-06-18T07:50:26.595298Z",
    });
    expect(body).toBe(await pythonDumps(body));
    // The seed's fields only: the seed's shape, without the key (the first test of this file).
    expect(flagPayload(parse({ ...base, type: "FLAG_STATE_UPDATED", new_state: { enabled: true } }), development, "2021-06-18T07:50:26.595298Z")).not.toContain("multivariate");
  });

  it("never sends a null feature.created_date: the first time flaghook saw the feature, else the change's own time", () => {
    const { created_date: _dropped, ...feature } = butterBar;
    const event = parse({ ...base, feature, type: "FLAG_STATE_UPDATED", new_state: { enabled: true } });
    const seen = JSON.parse(flagPayload(event, development, "2024-01-02T03:04:05.000006Z", null, { featureCreatedDate: "2023-12-01T00:00:00.000000Z" }));
    expect(seen.data.new_state.feature.created_date).toBe("2023-12-01T00:00:00.000000Z");
    const unseen = JSON.parse(flagPayload(event, development, "2024-01-02T03:04:05.000006Z"));
    expect(unseen.data.new_state.feature.created_date).toBe("2024-01-02T03:04:05.000006Z");
    // A date the event gives wins.
    expect(JSON.parse(flagPayload(parse({ ...base, type: "FLAG_STATE_UPDATED", new_state: { enabled: true } }), development, "2024-01-02T03:04:05.000006Z", null, { featureCreatedDate: "2023-12-01T00:00:00.000000Z" })).data.new_state.feature.created_date).toBe(butterBar.created_date);
  });

  it("passes fields the event adds to the feature on untouched, flaghook's own winning where both exist", () => {
    const event = parse({ ...base, feature: { ...butterBar, tags: [3], uuid: "f-uuid", id: 7168 }, type: "FLAG_STATE_UPDATED", new_state: { enabled: true } });
    const feature = JSON.parse(flagPayload(event, development, "2021-06-18T07:50:26.595298Z")).data.new_state.feature;
    expect(feature).toEqual({ ...butterBar, tags: [3], uuid: "f-uuid", project: { id: 12, name: "Flagsmith Website" } });
  });

  it("writes changed_by as the author's email for a webhook that asks for Flagsmith's form, and as the seed's name by default", () => {
    const event = parse({ ...base, type: "FLAG_STATE_UPDATED", new_state: { enabled: true } });
    expect(changedBy(event)).toBe("Ben Rometsch");
    expect(changedBy(event, "email")).toBe("ben@example.com");
    expect(changedBy(parse({ ...base, type: "FEATURE_UPDATED", author: null, api_key_name: "terraform" }), "email")).toBe("terraform");
    const planned = planDeliveries({
      event,
      auditData: {},
      timestamp: "2021-06-18T07:50:26.595298Z",
      webhooks: [
        { id: "by-name", scope: "environment", environmentId: 23, eventTypes: null },
        { id: "by-email", scope: "environment", environmentId: 23, eventTypes: null, changedBy: "email" },
      ],
      projectEnvironments: [],
      projectName: null,
    });
    expect(planned.map((p) => [p.webhookId, JSON.parse(p.payload).data.changed_by])).toEqual([
      ["by-name", "Ben Rometsch"],
      ["by-email", "ben@example.com"],
    ]);
  });

  it("sends AUDIT_LOG_CREATED with every AuditLogListSerializer field flaghook knows, the event's extra Flagsmith fields untouched, and a zero fraction left out", async () => {
    const event = parse({
      type: "FLAG_STATE_UPDATED",
      occurred_at: "2024-05-01T10:11:02Z",
      author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson", last_login: "2024-04-30T08:00:00.123456Z", uuid: "a-uuid" },
      project: { id: 6, name: "Project name", uuid: "p-uuid", organisation: 999 },
      environment: { id: 23, name: "Development", api_key: "ser.key", uuid: "e-uuid", use_v2_feature_versioning: true },
      feature: { id: 7168, name: "butter_bar" },
      new_state: { enabled: true },
    });
    const fields = auditFields(1, event, event.occurred_at!, false);
    const data = auditData({ ...fields, seq: 101 });
    const expected = {
      id: 101,
      created_date: "2024-05-01T10:11:02Z",
      log: "Flag state updated for feature: butter_bar",
      author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson", last_login: "2024-04-30T08:00:00.123456Z", uuid: "a-uuid" },
      environment: { id: 23, name: "Development", api_key: "ser.key", project: 6, uuid: "e-uuid", use_v2_feature_versioning: true },
      // The organisation is flaghook's tenant, whatever the event said.
      project: { id: 6, name: "Project name", organisation: 1, uuid: "p-uuid" },
      related_object_id: 7168,
      related_object_type: "FEATURE_STATE",
      related_object_uuid: null,
      is_system_event: false,
    };
    expect(data).toEqual(expected);
    const [delivery] = planDeliveries({
      event,
      auditData: data,
      timestamp: event.occurred_at!,
      webhooks: [{ id: "org", scope: "organisation", environmentId: null, eventTypes: ["AUDIT_LOG_CREATED"] }],
      projectEnvironments: [],
      projectName: null,
    });
    expect(delivery.payload).toBe(sortedJson({ data: expected, event_type: "AUDIT_LOG_CREATED" }));
    expect(delivery.payload).toBe(await pythonDumps(delivery.payload));
    expect(delivery.payload).toContain('"created_date": "2024-05-01T10:11:02Z"');
  });
});
