// Ingesting change events (SPEC 2, 3): audit messages, idempotency, batches, event status,
// projects/environments, timestamps, and who may call what.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../src/domain/event";
import { ADMIN, call, countRows, createOrganisation, eventually, recorded } from "./helpers";

const seedEvent = {
  type: "FLAG_STATE_UPDATED",
  occurred_at: "2021-06-18T07:50:26.595298Z",
  author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Flagsmith Website" },
  environment: { id: 23, name: "Development" },
  feature: { id: 7168, name: "butter_bar", type: "CONFIG", default_enabled: false, initial_value: null },
  previous_state: { enabled: false, feature_state_value: "a" },
  new_state: { enabled: true, feature_state_value: "b" },
};

type Auth = Record<string, string>;

async function ingest(auth: Auth, event: unknown, headers: Record<string, string> = {}) {
  const res = await call("/api/v1/events", { method: "POST", headers: { ...auth, ...headers }, json: event });
  expect(res.status).toBe(202);
  return ((await res.json()) as { event_id: string }).event_id;
}

async function ingestBatch(auth: Auth, events: unknown[], headers: Record<string, string> = {}) {
  const res = await call("/api/v1/events/batch", { method: "POST", headers: { ...auth, ...headers }, json: { events } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { results: { event_id: string; status: string }[] }).results.map((r) => r.event_id);
}

/** The audit entry (detail form) an event became, once the ingest queue has recorded it. */
async function entryOf(auth: Auth, eventId: string) {
  const { audit_entry_id } = await recorded(auth, eventId);
  const res = await call(`/api/v1/audit/${audit_entry_id}/`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown> & { id: number; log: string; created_date: string };
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(await res.json()).toEqual({ error: { code, message: expect.any(String), details: expect.any(Array) } });
}

describe("POST /api/v1/events", () => {
  it("accepts an event with 202 and records one audit entry with Flagsmith's log", async () => {
    const { auth } = await createOrganisation();
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: seedEvent });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { event_id: string; status: string };
    expect(body).toEqual({ event_id: expect.stringMatching(/^evt_[0-9a-z]{26}$/), status: "accepted" });
    const status = await recorded(auth, body.event_id);
    const entry = await (await call(`/api/v1/audit/${status.audit_entry_id}/`, { headers: auth })).json();
    expect(entry).toMatchObject({
      log: "Flag state updated for feature: butter_bar",
      related_object_type: "FEATURE_STATE",
      created_date: "2021-06-18T07:50:26.595298Z",
      change_type: "UPDATE",
      change_details: [
        { field: "enabled", old: false, new: true },
        { field: "feature_state_value", old: "a", new: "b" },
      ],
    });
    expect(await countRows("audit_entries", "event_id = ?", body.event_id)).toBe(1);
  });

  it("records the author, project and environment in the audit-log-webhook data shape", async () => {
    const { auth, orgId, keyId } = await createOrganisation();
    const eventId = await ingest(auth, seedEvent);
    const entry = await entryOf(auth, eventId);
    expect(entry).toEqual({
      // The organisation's second entry: the first is its API key's creation.
      id: 2,
      seq: 2,
      legacy_id: null,
      event_id: eventId,
      created_date: "2021-06-18T07:50:26.595298Z",
      received_at: expect.stringMatching(/Z$/),
      time_warning: "behind_receipt",
      submitter: { type: "api_key", id: keyId, name: "ci" },
      log: "Flag state updated for feature: butter_bar",
      author: { id: 3, email: "user@domain.com", first_name: "Kyle", last_name: "Johnson" },
      // Flagsmith's EnvironmentSerializerLight names the environment's project by id.
      environment: { id: 23, name: "Development", project: 12 },
      project: { id: 12, name: "Flagsmith Website", organisation: orgId },
      related_object_id: 7168,
      related_object_type: "FEATURE_STATE",
      related_object_uuid: null,
      is_system_event: false,
      api_key_name: null,
      change_type: "UPDATE",
      change_details: [
        { field: "enabled", old: false, new: true },
        { field: "feature_state_value", old: "a", new: "b" },
      ],
    });
  });
});

describe("each event type's audit entry (SPEC 3 table)", () => {
  const project = { id: 12, name: "Flagsmith Website" };
  const environment = { id: 23, name: "Development" };
  const feature = { id: 7168, name: "butter_bar" };
  const identity = { id: 42, identifier: "user-42" };
  const segment = { id: 9, name: "beta", description: null };
  const new_state = { enabled: true, feature_state_value: null };

  const table = [
    { type: "FEATURE_CREATED", event: { project, feature }, log: "New Flag / Remote Config created: butter_bar", related: "FEATURE" },
    { type: "FEATURE_UPDATED", event: { project, feature }, log: "Flag / Remote Config updated: butter_bar", related: "FEATURE" },
    { type: "FEATURE_DELETED", event: { project, feature }, log: "Flag / Remote Config Deleted: butter_bar", related: "FEATURE" },
    {
      type: "FLAG_STATE_UPDATED",
      event: { project, environment, feature, new_state },
      log: "Flag state updated for feature: butter_bar",
      related: "FEATURE_STATE",
    },
    {
      type: "REMOTE_CONFIG_UPDATED",
      event: { project, environment, feature, new_state },
      log: "Remote config value updated for feature: butter_bar",
      related: "FEATURE_STATE",
    },
    {
      type: "IDENTITY_OVERRIDE_UPDATED",
      event: { project, environment, feature, identity, new_state },
      log: "Flag state / Remote config value updated for feature 'butter_bar' and identity 'user-42'",
      related: "FEATURE_STATE",
    },
    {
      type: "IDENTITY_OVERRIDE_DELETED",
      event: { project, environment, feature, identity },
      log: "Flag state / Remote config value deleted for feature 'butter_bar' and identity 'user-42'",
      related: "FEATURE_STATE",
    },
    {
      type: "SEGMENT_OVERRIDE_UPDATED",
      event: { project, environment, feature, segment, segment_priority: 0, new_state },
      log: "Flag state / Remote config value updated for feature 'butter_bar' and segment 'beta'",
      related: "FEATURE_STATE",
    },
    {
      type: "SEGMENT_OVERRIDE_DELETED",
      event: { project, environment, feature, segment },
      log: "Flag state / Remote config value deleted for feature 'butter_bar' and segment 'beta'",
      related: "FEATURE_STATE",
    },
    { type: "SEGMENT_CREATED", event: { project, segment }, log: "New Segment created: beta", related: "SEGMENT" },
    { type: "SEGMENT_UPDATED", event: { project, segment }, log: "Segment updated: beta", related: "SEGMENT" },
    { type: "SEGMENT_DELETED", event: { project, segment }, log: "Segment deleted: beta", related: "SEGMENT" },
    { type: "ENVIRONMENT_CREATED", event: { project, environment }, log: "New Environment created: Development", related: "ENVIRONMENT" },
    { type: "ENVIRONMENT_UPDATED", event: { project, environment }, log: "Environment updated: Development", related: "ENVIRONMENT" },
    {
      type: "CUSTOM",
      event: { project, log: "Change request #5 approved", related_object: { type: "CHANGE_REQUEST", id: 5, uuid: "cr-5" } },
      log: "Change request #5 approved",
      related: "CHANGE_REQUEST",
    },
  ];

  it("covers every type the schema accepts", () => {
    expect(table.map((row) => row.type).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it.concurrent.for(table)("$type is logged as \"$log\" about a $related", async ({ type, event, log, related }, { expect }) => {
    const { auth } = await createOrganisation(type);
    const eventId = await ingest(auth, { type, ...event });
    const entry = await entryOf(auth, eventId);
    expect(entry.log).toBe(log);
    expect(entry.related_object_type).toBe(related);
    expect(await countRows("audit_entries", "event_id = ?", eventId)).toBe(1);
  });

  it("CUSTOM keeps the related object's id and uuid", async () => {
    const { auth } = await createOrganisation();
    const entry = await entryOf(auth, await ingest(auth, { type: "CUSTOM", ...table.at(-1)!.event }));
    expect(entry).toMatchObject({ related_object_type: "CHANGE_REQUEST", related_object_id: 5, related_object_uuid: "cr-5" });
  });
});

describe("idempotent replays", () => {
  it("a repeated body id answers the same event_id and leaves exactly one audit entry", async () => {
    const { auth } = await createOrganisation();
    const event = { ...seedEvent, id: "change-1" };
    const first = await ingest(auth, event);
    await recorded(auth, first);
    const second = await ingest(auth, event);
    const third = await ingest(auth, { ...event, feature: { ...event.feature, name: "renamed" } });
    expect(second).toBe(first);
    expect(third).toBe(first);

    // A later event's recording gives the replays' queue messages time to be consumed too.
    await recorded(auth, await ingest(auth, { ...event, id: "change-2" }));
    expect(await countRows("audit_entries", "event_id = ?", first)).toBe(1);
    expect((await entryOf(auth, first)).log).toBe("Flag state updated for feature: butter_bar");
  });

  it("a replay that renames the project or environment changes nothing", async () => {
    const { auth, orgId } = await createOrganisation();
    const event = { ...seedEvent, id: "rename-1" };
    await recorded(auth, await ingest(auth, event));
    await ingest(auth, { ...event, project: { id: 12, name: "Renamed by a replay" }, environment: { id: 23, name: "Renamed too" } });
    await recorded(auth, await ingest(auth, { ...seedEvent, id: "rename-2", project: { id: 12 }, environment: { id: 23 } }));
    const project = await env.DB.prepare("select name from projects where org_id = ? and id = 12").bind(orgId).first("name");
    const environment = await env.DB.prepare("select name from environments where org_id = ? and id = 23").bind(orgId).first("name");
    expect([project, environment]).toEqual([seedEvent.project.name, seedEvent.environment.name]);
  });

  it("a repeated Idempotency-Key header answers the same event_id and leaves exactly one audit entry", async () => {
    const { auth } = await createOrganisation();
    const first = await ingest(auth, seedEvent, { "Idempotency-Key": "req-1" });
    const second = await ingest(auth, seedEvent, { "Idempotency-Key": "req-1" });
    const other = await ingest(auth, seedEvent, { "Idempotency-Key": "req-2" });
    expect(second).toBe(first);
    expect(other).not.toBe(first);

    await recorded(auth, first);
    await recorded(auth, other);
    expect(await countRows("audit_entries", "event_id = ?", first)).toBe(1);
    expect(await countRows("audit_entries", "event_id = ?", other)).toBe(1);
  });

  it("the same client id in two organisations is two events", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    const inA = await ingest(a.auth, { ...seedEvent, id: "shared" });
    const inB = await ingest(b.auth, { ...seedEvent, id: "shared" });
    expect(inB).not.toBe(inA);
    await recorded(a.auth, inA);
    await recorded(b.auth, inB);
  });

  it("a replayed batch with the same Idempotency-Key answers the same event ids in order", async () => {
    const { auth, orgId } = await createOrganisation();
    const events = [seedEvent, { ...seedEvent, type: "REMOTE_CONFIG_UPDATED" }];
    const first = await ingestBatch(auth, events, { "Idempotency-Key": "batch-1" });
    const again = await ingestBatch(auth, events, { "Idempotency-Key": "batch-1" });
    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(2);
    for (const id of first) await recorded(auth, id);
    await recorded(auth, await ingest(auth, { ...seedEvent, id: "after-the-replay" }));
    expect(await countRows("audit_entries", "org_id = ? and is_system_event = 0", orgId)).toBe(3);
  });
});

describe("POST /api/v1/events/batch", () => {
  it("accepts events in request order, one audit entry each", async () => {
    const { auth } = await createOrganisation();
    const res = await call("/api/v1/events/batch", {
      method: "POST",
      headers: auth,
      json: {
        events: [
          { ...seedEvent, type: "FEATURE_CREATED" },
          seedEvent,
          { ...seedEvent, type: "FEATURE_DELETED" },
        ],
      },
    });
    expect(res.status).toBe(202);
    const { results } = (await res.json()) as { results: { event_id: string; status: string }[] };
    expect(results).toEqual([
      { event_id: expect.stringMatching(/^evt_/), status: "accepted" },
      { event_id: expect.stringMatching(/^evt_/), status: "accepted" },
      { event_id: expect.stringMatching(/^evt_/), status: "accepted" },
    ]);
    const logs = [];
    for (const { event_id } of results) logs.push((await entryOf(auth, event_id)).log);
    expect(logs).toEqual([
      "New Flag / Remote Config created: butter_bar",
      "Flag state updated for feature: butter_bar",
      "Flag / Remote Config Deleted: butter_bar",
    ]);
  });

  it("accepts 100 events", async () => {
    const { auth, orgId } = await createOrganisation();
    const events = Array.from({ length: 100 }, (_, i) => ({ ...seedEvent, id: `e${i}` }));
    const ids = await ingestBatch(auth, events);
    expect(new Set(ids).size).toBe(100);
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and is_system_event = 0", orgId)) === 100);
  });

  it("rejects 101 events, and a batch with one invalid event, storing none of them", async () => {
    const { auth, orgId } = await createOrganisation();
    const tooMany = await call("/api/v1/events/batch", {
      method: "POST",
      headers: auth,
      json: { events: Array.from({ length: 101 }, (_, i) => ({ ...seedEvent, id: `too-many-${i}` })) },
    });
    await expectError(tooMany, 400, "validation_failed");

    const oneBad = await call("/api/v1/events/batch", {
      method: "POST",
      headers: auth,
      json: { events: [seedEvent, { ...seedEvent, new_state: undefined }, seedEvent] },
    });
    expect(oneBad.status).toBe(400);
    expect(await oneBad.json()).toEqual({
      error: {
        code: "validation_failed",
        message: "events.1.new_state: new_state is required for FLAG_STATE_UPDATED events",
        details: [{ field: "events.1.new_state", message: "new_state is required for FLAG_STATE_UPDATED events" }],
      },
    });

    const sentinel = await ingest(auth, { ...seedEvent, type: "FEATURE_UPDATED" });
    await recorded(auth, sentinel);
    expect(await countRows("audit_entries", "org_id = ? and is_system_event = 0", orgId)).toBe(1);
    expect(await countRows("audit_entries", "org_id = ? and event_id = ?", orgId, sentinel)).toBe(1);
  });
});

describe("GET /api/v1/events/{event_id}", () => {
  it("answers accepted while the event waits in the ingest queue, then recorded with its audit entry", async () => {
    const { auth, orgId } = await createOrganisation();
    const eventId = await ingest(auth, seedEvent);
    const waiting = await call(`/api/v1/events/${eventId}`, { headers: auth });
    expect(waiting.status).toBe(200);
    expect(await waiting.json()).toEqual({ event_id: eventId, status: "accepted", audit_entry_id: null, deliveries: [] });

    await recorded(auth, eventId);
    const res = await call(`/api/v1/events/${eventId}/`, { headers: auth });
    expect(res.status).toBe(200);
    const [row] = (await env.DB.prepare("select seq from audit_entries where org_id = ? and event_id = ?").bind(orgId, eventId).all<{ seq: number }>())
      .results;
    expect(await res.json()).toEqual({ event_id: eventId, status: "recorded", audit_entry_id: row.seq, deliveries: [] });
  });

  it("answers 404 for another organisation's event and for made-up ids", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    const eventId = await ingest(a.auth, seedEvent);
    await expectError(await call(`/api/v1/events/${eventId}`, { headers: b.auth }), 404, "not_found");
    await recorded(a.auth, eventId);
    await expectError(await call(`/api/v1/events/${eventId}`, { headers: b.auth }), 404, "not_found");
    await expectError(await call(`/api/v1/events/evt_${"a".repeat(26)}`, { headers: a.auth }), 404, "not_found");
    await expectError(await call("/api/v1/events/not-an-event", { headers: a.auth }), 404, "not_found");
  });
});

describe("projects and environments", () => {
  const scopes = (orgId: number) =>
    Promise.all([
      env.DB.prepare("select id, name from projects where org_id = ? order by id").bind(orgId).all().then((r) => r.results),
      env.DB.prepare("select id, project_id, name, api_key from environments where org_id = ? order by id")
        .bind(orgId)
        .all()
        .then((r) => r.results),
    ]);

  it("are upserted from events, names refreshed by later events and kept when an event leaves them out", async () => {
    const { auth, orgId } = await createOrganisation();
    await recorded(
      auth,
      await ingest(auth, { ...seedEvent, project: { id: 12, name: "Website" }, environment: { id: 23, name: "Development", api_key: "env-key" } }),
    );
    expect(await scopes(orgId)).toEqual([
      [{ id: 12, name: "Website" }],
      [{ id: 23, project_id: 12, name: "Development", api_key: "env-key" }],
    ]);

    await recorded(auth, await ingest(auth, { ...seedEvent, project: { id: 12, name: "Website v2" }, environment: { id: 23, name: "Dev" } }));
    expect(await scopes(orgId)).toEqual([
      [{ id: 12, name: "Website v2" }],
      [{ id: 23, project_id: 12, name: "Dev", api_key: "env-key" }],
    ]);

    const unnamed = await entryOf(auth, await ingest(auth, { ...seedEvent, project: { id: 12 }, environment: { id: 23 } }));
    expect(await scopes(orgId)).toEqual([
      [{ id: 12, name: "Website v2" }],
      [{ id: 23, project_id: 12, name: "Dev", api_key: "env-key" }],
    ]);
    expect(unnamed).toMatchObject({ project: { id: 12, name: "Website v2", organisation: orgId }, environment: { id: 23, name: "Dev" } });
  });

  it("keep a name given earlier in the same batch when a later event of the batch leaves it out", async () => {
    const { auth, orgId } = await createOrganisation();
    const ids = await ingestBatch(auth, [
      { ...seedEvent, project: { id: 12, name: "Website" }, environment: { id: 23, name: "Development", api_key: "env-key" } },
      { ...seedEvent, project: { id: 12 }, environment: { id: 23 } },
    ]);
    for (const id of ids) await recorded(auth, id);
    expect(await scopes(orgId)).toEqual([
      [{ id: 12, name: "Website" }],
      [{ id: 23, project_id: 12, name: "Development", api_key: "env-key" }],
    ]);
    expect((await entryOf(auth, ids[1])).environment).toEqual({ id: 23, name: "Development", api_key: "env-key", project: 12 });
  });

  it("an event that repeats them writes no project row, marks the environment seen, and moves it when it changes", async () => {
    const { auth, orgId } = await createOrganisation();
    const event = { ...seedEvent, project: { id: 12, name: "Website" }, environment: { id: 23, name: "Development", api_key: "env-key" } };
    const times = () =>
      Promise.all([
        env.DB.prepare("select updated_at from projects where org_id = ? and id = 12").bind(orgId).first<number>("updated_at"),
        env.DB.prepare("select updated_at from environments where org_id = ? and id = 23").bind(orgId).first<number>("updated_at"),
      ]);
    await recorded(auth, await ingest(auth, event));
    const [project, environment] = await times();
    await new Promise((r) => setTimeout(r, 5));
    await recorded(auth, await ingest(auth, event));
    const [projectAfter, environmentAfter] = await times();
    expect(projectAfter).toBe(project);
    expect(environmentAfter).toBeGreaterThan(environment!);

    await recorded(auth, await ingest(auth, { ...seedEvent, project: { id: 14, name: "Shop" }, environment: { id: 23, api_key: "env-key-2" } }));
    expect((await scopes(orgId))[1]).toEqual([{ id: 23, project_id: 14, name: "Development", api_key: "env-key-2" }]);
  });

  it("belong to their organisation: the same ids in two organisations are two rows", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    await recorded(a.auth, await ingest(a.auth, { ...seedEvent, project: { id: 12, name: "A's" } }));
    await recorded(b.auth, await ingest(b.auth, { ...seedEvent, project: { id: 12, name: "B's" } }));
    expect((await scopes(a.orgId))[0]).toEqual([{ id: 12, name: "A's" }]);
    expect((await scopes(b.orgId))[0]).toEqual([{ id: 12, name: "B's" }]);
  });
});

describe("occurred_at", () => {
  const cases = [
    ["2021-06-18T07:50:26.595298Z", "2021-06-18T07:50:26.595298Z"],
    ["2021-06-18T07:50:26Z", "2021-06-18T07:50:26.000000Z"],
    ["2021-06-18T07:50:26.5Z", "2021-06-18T07:50:26.500000Z"],
    ["2021-06-18T07:50:26.123456789Z", "2021-06-18T07:50:26.123456Z"],
    ["2021-06-18T09:50:26.595298+02:00", "2021-06-18T07:50:26.595298Z"],
    ["2021-06-17T23:50:26-08:00", "2021-06-18T07:50:26.000000Z"],
    ["2021-06-18 07:50:26.595298", "2021-06-18T07:50:26.595298Z"],
    ["2021-06-18t07:50z", "2021-06-18T07:50:00.000000Z"],
  ];

  it("is normalised to ISO-8601 UTC with microseconds and Z, and answered as Flagsmith's serialiser writes it", async () => {
    const { auth } = await createOrganisation();
    const ids = await ingestBatch(auth, cases.map(([given]) => ({ ...seedEvent, occurred_at: given })));
    const stored = [];
    const answered = [];
    for (const id of ids) {
      await entryOf(auth, id);
      const row = await env.DB.prepare("select created_date from audit_entries where event_id = ?").bind(id).first<{ created_date: string }>();
      stored.push([cases[stored.length][0], row!.created_date]);
      answered.push((await entryOf(auth, id)).created_date);
    }
    expect(stored).toEqual(cases);
    // Django REST framework (isoformat()) leaves out a zero fraction: ...:26Z, as Flagsmith's audit log does.
    expect(answered).toEqual(cases.map(([, normalised]) => normalised.replace(".000000Z", "Z")));
  });

  it("defaults to the time of receipt, in the same form", async () => {
    const { auth } = await createOrganisation();
    const before = new Date().toISOString().replace("Z", "000Z");
    const { occurred_at: _, ...undated } = seedEvent;
    const entry = await entryOf(auth, await ingest(auth, undated));
    const after = new Date().toISOString().replace("Z", "000Z");
    expect(entry.created_date).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(entry.created_date >= before && entry.created_date <= after).toBe(true);
  });
});

describe("authentication (SPEC 2)", () => {
  it("a revoked API key answers 401 and its revocation is audited as a system event", async () => {
    const { auth, orgId, keyId } = await createOrganisation();
    await recorded(auth, await ingest(auth, seedEvent));

    const revoke = await call(`/api/v1/organisations/${orgId}/api-keys/${keyId}`, { method: "DELETE", headers: ADMIN });
    expect(revoke.status).toBe(200);
    expect(await revoke.json()).toMatchObject({ id: keyId, revoked_at: expect.any(String) });

    await expectError(await call("/api/v1/events", { method: "POST", headers: auth, json: seedEvent }), 401, "unauthorized");
    await expectError(await call("/api/v1/audit/", { headers: auth }), 401, "unauthorized");

    const other = (await (
      await call(`/api/v1/organisations/${orgId}/api-keys`, { method: "POST", headers: ADMIN, json: { name: "second" } })
    ).json()) as { key: string };
    const otherAuth = { Authorization: `Api-Key ${other.key}` };
    const systemLogs = await eventually(async () => {
      const res = await call("/api/v1/audit/?is_system_event=true", { headers: otherAuth });
      const logs = ((await res.json()) as { results: { log: string }[] }).results.map((r) => r.log);
      return logs.length === 3 ? logs.sort() : undefined;
    });
    expect(systemLogs).toEqual(["API key created: ci", "API key created: second", "API key revoked: ci"]);
  });

  it("revoking another organisation's key answers 404 and leaves the key working", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    await expectError(await call(`/api/v1/organisations/${b.orgId}/api-keys/${a.keyId}`, { method: "DELETE", headers: ADMIN }), 404, "not_found");
    expect((await call("/api/v1/audit/", { headers: a.auth })).status).toBe(200);
  });

  it("audit entries of another organisation answer 404 and never appear in its lists or exports", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    const entry = await entryOf(a.auth, await ingest(a.auth, seedEvent));

    await expectError(await call(`/api/v1/audit/${entry.id}/`, { headers: b.auth }), 404, "not_found");
    const list = (await (await call("/api/v1/audit/?is_system_event=false", { headers: b.auth })).json()) as { results: unknown[] };
    expect(list.results).toEqual([]);
    const exported = await (await call("/api/v1/audit/export?format=ndjson&is_system_event=false", { headers: b.auth })).text();
    expect(exported).toBe("");
  });

  it("operator endpoints refuse organisation API keys", async () => {
    const { auth, key, orgId } = await createOrganisation();
    for (const headers of [auth, { Authorization: `Bearer ${key}` }]) {
      await expectError(await call("/api/v1/organisations", { headers }), 401, "unauthorized");
      await expectError(await call("/api/v1/organisations", { method: "POST", headers, json: { name: "Mine" } }), 401, "unauthorized");
      await expectError(
        await call(`/api/v1/organisations/${orgId}/api-keys`, { method: "POST", headers, json: { name: "extra" } }),
        401,
        "unauthorized",
      );
      await expectError(await call(`/api/v1/organisations/${orgId}/api-keys`, { headers }), 401, "unauthorized");
    }
    expect(await countRows("api_keys", "org_id = ?", orgId)).toBe(1);
  });

  it("organisation endpoints refuse the operator token", async () => {
    const { auth } = await createOrganisation();
    const eventId = await ingest(auth, seedEvent);
    await expectError(await call("/api/v1/events", { method: "POST", headers: ADMIN, json: seedEvent }), 401, "unauthorized");
    await expectError(await call("/api/v1/events/batch", { method: "POST", headers: ADMIN, json: { events: [seedEvent] } }), 401, "unauthorized");
    await expectError(await call(`/api/v1/events/${eventId}`, { headers: ADMIN }), 401, "unauthorized");
    await expectError(await call("/api/v1/audit/", { headers: ADMIN }), 401, "unauthorized");
    await expectError(await call("/api/v1/audit/export", { headers: ADMIN }), 401, "unauthorized");
  });
});
