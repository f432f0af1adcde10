// Issue 10, points 3 and 6, end to end: what flaghook's webhooks receive by default (Flagsmith sends
// organisation webhooks FLAG_UPDATED / FLAG_DELETED too: api/features/tasks.py calls
// call_organisation_webhooks; api/audit/signals.py sends them AUDIT_LOG_CREATED), what webhooks created
// before issue 10 keep receiving, and the fields flaghook's own payloads now carry.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sortedJson } from "../src/domain/payload";
import { webhook, hookUrl, type Org } from "./flagsmith";
import { call, createOrganisation, eventually, mailbox, pythonDumps, recorded } from "./helpers";

const flagChange = (over: Record<string, unknown> = {}) => ({
  type: "FLAG_STATE_UPDATED",
  occurred_at: "2024-03-05T10:00:00.000001Z",
  author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Website" },
  environment: { id: 23, name: "Development" },
  feature: { id: 7168, name: "butter_bar", type: "CONFIG" },
  previous_state: { enabled: false, feature_state_value: "old" },
  new_state: { enabled: true, feature_state_value: "new" },
  ...over,
});

async function ingest(org: Org, event: Record<string, unknown>) {
  const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
  expect(res.status).toBe(202);
  return recorded(org.auth, ((await res.json()) as { event_id: string }).event_id);
}

const eventTypesIn = async (box: string, text: string) =>
  (await mailbox(box)).requests.filter((r) => r.body.includes(text)).map((r) => JSON.parse(r.body).event_type as string).sort();

describe("what a webhook receives by default", () => {
  it("a new organisation webhook receives what Flagsmith sends one: AUDIT_LOG_CREATED, FLAG_UPDATED and FLAG_DELETED", async () => {
    const org = await createOrganisation();
    const hook = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("defaults-org") });
    expect(hook.event_types).toEqual(["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"]);
    await ingest(org, flagChange({ feature: { id: 1, name: "default_org_flag" } }));
    await ingest(org, { ...flagChange({ feature: { id: 1, name: "default_org_flag" } }), type: "FEATURE_DELETED", occurred_at: "2024-03-05T11:00:00.000001Z" });
    await eventually(async () => (await eventTypesIn("defaults-org", "default_org_flag")).length === 4);
    expect(await eventTypesIn("defaults-org", "default_org_flag")).toEqual(["AUDIT_LOG_CREATED", "AUDIT_LOG_CREATED", "FLAG_DELETED", "FLAG_UPDATED"]);
  });

  it("webhooks created before keep exactly what they received: the migration writes their old default out", async () => {
    const org = await createOrganisation();
    const orgHook = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("pinned-org") });
    const envHook = await webhook(org, "/api/v1/environments/23", { url: hookUrl("pinned-env") });
    const chosen = await webhook(org, "/api/v1/environments/23", { url: hookUrl("pinned-chosen"), event_types: ["FLAG_DELETED"] });
    // As such rows were before issue 10: no filter, meaning "the scope's default" of that time.
    await env.DB.prepare("update webhooks set event_types = null where id in (?, ?)").bind(orgHook.id, envHook.id).run();
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.includes("issue10_pin_event_types"))!;
    for (const query of migration.queries) await env.DB.prepare(query).run();
    const rows = (await env.DB.prepare("select id, event_types from webhooks where org_id = ? order by id").bind(org.orgId).all()).results;
    expect(Object.fromEntries(rows.map((r) => [r.id, r.event_types]))).toEqual({
      [orgHook.id]: '["AUDIT_LOG_CREATED"]',
      [envHook.id]: '["FLAG_UPDATED","FLAG_DELETED"]',
      [chosen.id]: '["FLAG_DELETED"]',
    });
    await ingest(org, flagChange({ feature: { id: 2, name: "pinned_flag" } }));
    await eventually(async () => (await eventTypesIn("pinned-env", "pinned_flag")).length === 1 && (await eventTypesIn("pinned-org", "pinned_flag")).length === 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await eventTypesIn("pinned-org", "pinned_flag")).toEqual(["AUDIT_LOG_CREATED"]);
    expect(await eventTypesIn("pinned-env", "pinned_flag")).toEqual(["FLAG_UPDATED"]);
  });

  it("PATCH with event_types null goes back to the same as Flagsmith", async () => {
    const org = await createOrganisation();
    const hook = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("defaults-patch"), event_types: ["AUDIT_LOG_CREATED"] });
    const res = await call(`/api/v1/organisations/${org.orgId}/webhooks/${hook.id}`, { method: "PATCH", headers: org.auth, json: { event_types: null } });
    expect(await res.json()).toMatchObject({ event_types: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"] });
  });
});

describe("flaghook's own payloads", () => {
  it("dates a feature whose events never give created_date by the first change flaghook saw of it, an earlier change that arrives late included", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/23", { url: hookUrl("created-date") });
    const feature = { id: 31, name: "dated_feature" };
    const createdDates = async (count: number) => {
      const requests = await eventually(async () => {
        const r = (await mailbox("created-date")).requests.filter((q) => q.body.includes("dated_feature"));
        return r.length === count ? r : undefined;
      });
      return requests.map((r) => JSON.parse(r.body).data.new_state.feature.created_date as string);
    };
    await ingest(org, flagChange({ feature, occurred_at: "2024-03-05T10:00:00.000001Z" }));
    await ingest(org, flagChange({ feature, occurred_at: "2024-03-06T10:00:00.000002Z" }));
    expect(await createdDates(2)).toEqual(["2024-03-05T10:00:00.000001Z", "2024-03-05T10:00:00.000001Z"]);
    await ingest(org, flagChange({ feature, occurred_at: "2024-03-01T09:00:00.000003Z" }));
    await ingest(org, flagChange({ feature, occurred_at: "2024-03-07T10:00:00.000004Z" }));
    expect((await createdDates(4)).slice(2)).toEqual(["2024-03-01T09:00:00.000003Z", "2024-03-01T09:00:00.000003Z"]);
    // Once an event gives it, that is the date, for later events without it too.
    await ingest(org, flagChange({ feature: { ...feature, created_date: "2023-01-01T00:00:00.123456Z" }, occurred_at: "2024-03-08T10:00:00.000005Z" }));
    await ingest(org, flagChange({ feature, occurred_at: "2024-03-09T10:00:00.000006Z" }));
    expect((await createdDates(6)).slice(4)).toEqual(["2023-01-01T00:00:00.123456Z", "2023-01-01T00:00:00.123456Z"]);
    expect(await env.DB.prepare("select created_date, created_date_given from features where org_id = ? and id = 31").bind(org.orgId).first()).toEqual({
      created_date: "2023-01-01T00:00:00.123456Z",
      created_date_given: 1,
    });
  });

  it("sends AUDIT_LOG_CREATED with the environment's api_key and project, and the Flagsmith fields the event added, byte for byte", async () => {
    const org = await createOrganisation();
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("audit-fuller"), event_types: ["AUDIT_LOG_CREATED"] });
    const event = flagChange({
      occurred_at: "2024-05-01T10:11:02Z",
      author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson", uuid: "5f0e3f4e-2d2c-4c1a-9c55-0f6e9ad1a111" },
      project: { id: 12, name: "Website", uuid: "0b8b5f0e-0000-4000-8000-00000000000c" },
      environment: { id: 23, name: "Development", api_key: "ser.Dev23" },
      feature: { id: 7168, name: "fuller_audit" },
    });
    const { audit_entry_id } = await ingest(org, event);
    const received = await eventually(async () => (await mailbox("audit-fuller")).requests.find((r) => r.body.includes("fuller_audit")));
    const expected = {
      data: {
        author: { email: "kyle@example.com", first_name: "Kyle", id: 3, last_name: "Johnson", uuid: "5f0e3f4e-2d2c-4c1a-9c55-0f6e9ad1a111" },
        created_date: "2024-05-01T10:11:02Z",
        environment: { api_key: "ser.Dev23", id: 23, name: "Development", project: 12 },
        id: audit_entry_id,
        is_system_event: false,
        log: "Flag state updated for feature: fuller_audit",
        project: { id: 12, name: "Website", organisation: org.orgId, uuid: "0b8b5f0e-0000-4000-8000-00000000000c" },
        related_object_id: 7168,
        related_object_type: "FEATURE_STATE",
        related_object_uuid: null,
      },
      event_type: "AUDIT_LOG_CREATED",
    };
    expect(received.body).toBe(sortedJson(expected));
    expect(received.body).toBe(await pythonDumps(received.body));
  });

  it("writes changed_by per webhook: the seed's name, or the email Flagsmith has sent since 2022", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/23", { url: hookUrl("changed-by-name") });
    const byEmail = await webhook(org, "/api/v1/environments/23", { url: hookUrl("changed-by-email"), changed_by: "email" });
    expect(byEmail).toMatchObject({ changed_by: "email" });
    await ingest(org, flagChange({ feature: { id: 40, name: "changed_by_flag" } }));
    const of = (box: string) => eventually(async () => (await mailbox(box)).requests.find((r) => r.body.includes("changed_by_flag")));
    expect(JSON.parse((await of("changed-by-name")).body).data.changed_by).toBe("Kyle Johnson");
    expect(JSON.parse((await of("changed-by-email")).body).data.changed_by).toBe("kyle@example.com");
  });
});
