// Flag history (issue 12): the state of every flag at any moment, the net changes between two
// moments and a flag's timeline, from every recorded change, in the order the changes took effect.
// Exact expected answers throughout; events go through the real ingest queue and recorder.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { call, countRows, createOrganisation, recorded } from "./helpers";

type Org = Awaited<ReturnType<typeof createOrganisation>>;
type Json = Record<string, unknown>;

const PROJECT = { id: 1, name: "Shop" };
const PROD = { id: 10, name: "Production", api_key: "prod_key_history" };
const BANNER = { id: 5, name: "banner" };
const KYLE = { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" };
const ANA = { id: 4, email: "ana@example.com", first_name: "Ana", last_name: "Lee" };

/** 2024-03-05 at hh:mm[:ss] UTC, as flaghook writes times. */
const t = (hhmm: string) => `2024-03-05T${hhmm.length === 5 ? `${hhmm}:00` : hhmm}.000000Z`;

interface Sent {
  eventId: string;
  entry: number;
}

/** Ingests events one request each, in this order, and waits until each is recorded. */
async function send(org: Org, ...events: Json[]): Promise<Sent[]> {
  const out: Sent[] = [];
  for (const event of events) {
    const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    out.push({ eventId: event_id, entry: (await recorded(org.auth, event_id)).audit_entry_id });
  }
  return out;
}

const flag = (at: string, enabled: boolean, value: unknown, more: Json = {}): Json => ({
  type: "FLAG_STATE_UPDATED",
  occurred_at: at,
  author: KYLE,
  project: PROJECT,
  environment: PROD,
  feature: BANNER,
  new_state: { enabled, feature_state_value: value },
  ...more,
});

const created = (at: string, defaults: { default_enabled: boolean; initial_value: unknown }, more: Json = {}): Json => ({
  type: "FEATURE_CREATED",
  occurred_at: at,
  author: KYLE,
  project: PROJECT,
  environment: PROD,
  feature: { ...BANNER, ...defaults },
  ...more,
});

async function get(org: Org, path: string, status = 200): Promise<Json> {
  const res = await call(path, { headers: org.auth });
  const body = (await res.json()) as Json;
  expect(res.status, JSON.stringify(body)).toBe(status);
  return body;
}

const stateAt = async (org: Org, at?: string, env: string | number = PROD.id) =>
  (await get(org, `/api/v1/environments/${env}/state${at ? `?at=${encodeURIComponent(at)}` : ""}`)).features as Json[];

/** A known state as answers show it. */
const known = (sent: Sent, at: string, enabled: boolean, value: unknown, more: Json = {}) => ({
  ...more,
  enabled,
  feature_state_value: value,
  multivariate_feature_state_values: null,
  changed_at: at,
  audit_entry_id: sent.entry,
  event_id: sent.eventId,
  known: true,
});

const UNKNOWN = {
  enabled: null,
  feature_state_value: null,
  multivariate_feature_state_values: null,
  changed_at: null,
  audit_entry_id: null,
  event_id: null,
  known: false,
};

const feature = (state: Json, knownSince: string, overrides: { segment?: Json[]; identity?: Json[] } = {}, f = BANNER) => ({
  feature: f,
  ...state,
  known_since: knownSince,
  segment_overrides: overrides.segment ?? [],
  identity_overrides: overrides.identity ?? [],
});

describe("the state of an environment at a moment", () => {
  it("answers every moment between a sequence of changes exactly, and now by default", async () => {
    const org = await createOrganisation();
    const [c, on, hi, off] = await send(
      org,
      created(t("10:00"), { default_enabled: false, initial_value: "hello" }),
      flag(t("11:00"), true, "hello"),
      { ...flag(t("12:00"), true, "hi"), type: "REMOTE_CONFIG_UPDATED", author: ANA },
      flag(t("13:00"), false, "hi"),
    );
    const since = t("10:00");
    const expected: [string, Json[]][] = [
      ["2024-03-05T09:59:59.999999Z", []],
      [t("10:00"), [feature(known(c, t("10:00"), false, "hello"), since)]],
      [t("10:30"), [feature(known(c, t("10:00"), false, "hello"), since)]],
      ["2024-03-05T10:59:59.999999Z", [feature(known(c, t("10:00"), false, "hello"), since)]],
      [t("11:00"), [feature(known(on, t("11:00"), true, "hello"), since)]],
      [t("11:59"), [feature(known(on, t("11:00"), true, "hello"), since)]],
      [t("12:00"), [feature(known(hi, t("12:00"), true, "hi"), since)]],
      [t("12:59:59"), [feature(known(hi, t("12:00"), true, "hi"), since)]],
      [t("13:00"), [feature(known(off, t("13:00"), false, "hi"), since)]],
      ["2030-01-01T00:00:00Z", [feature(known(off, t("13:00"), false, "hi"), since)]],
    ];
    for (const [at, features] of expected) expect({ at, features: await stateAt(org, at) }).toEqual({ at, features });
    expect(await stateAt(org)).toEqual(expected.at(-1)![1]);
    // Every answer names its moment and its environment; the environment by api_key answers the same.
    const whole = await get(org, `/api/v1/environments/${PROD.api_key}/state?at=2024-03-05T10:30:00%2B01:00`);
    expect(whole).toEqual({ at: "2024-03-05T09:30:00.000000Z", environment: { id: PROD.id, name: PROD.name }, features: [] });
  });

  it("lets a late arrival correct every answer after it, and says from when each flag is known", async () => {
    const org = await createOrganisation();
    const [hi] = await send(org, flag(t("12:00"), true, "hi"));
    // Only 12:00 seen: before it flaghook knows nothing of the flag, and says so.
    expect(await stateAt(org, t("10:30"))).toEqual([feature(UNKNOWN, t("12:00"))]);
    expect(await stateAt(org, t("12:30"))).toEqual([feature(known(hi, t("12:00"), true, "hi"), t("12:00"))]);

    // The creation at 10:00 arrives late: the past is now known from 10:00.
    const [c] = await send(org, created(t("10:00"), { default_enabled: false, initial_value: "hello" }));
    expect(await stateAt(org, t("09:00"))).toEqual([]);
    expect(await stateAt(org, t("10:30"))).toEqual([feature(known(c, t("10:00"), false, "hello"), t("10:00"))]);

    // A change at 11:00 arrives after both: it corrects 11:00-12:00 and nothing after 12:00.
    const [on] = await send(org, flag(t("11:00"), true, "hello", { author: ANA }));
    expect(await stateAt(org, t("10:30"))).toEqual([feature(known(c, t("10:00"), false, "hello"), t("10:00"))]);
    expect(await stateAt(org, t("11:30"))).toEqual([feature(known(on, t("11:00"), true, "hello"), t("10:00"))]);
    expect(await stateAt(org, t("12:30"))).toEqual([feature(known(hi, t("12:00"), true, "hi"), t("10:00"))]);

    // A replay (same event id) changes nothing.
    await send(org, { ...flag(t("11:30"), false, "nope"), id: "once" });
    await send(org, { ...flag(t("11:45"), false, "twice"), id: "once" });
    const timeline = (await get(org, `/api/v1/environments/${PROD.id}/features/${BANNER.id}/timeline`)).results as Json[];
    expect(timeline.map((e) => [e.changed_at, (e.after as Json).feature_state_value])).toEqual([
      [t("10:00"), "hello"],
      [t("11:00"), "hello"],
      [t("11:30"), "nope"],
      [t("12:00"), "hi"],
    ]);
  });

  it("ends a deleted feature with every override, and starts a re-created one afresh", async () => {
    const org = await createOrganisation();
    const segment = { id: 9, name: "beta" };
    const identity = { id: 42, identifier: "user-42" };
    const [c, seg, ident, del, again, ident2] = await send(
      org,
      created(t("10:00"), { default_enabled: true, initial_value: 1 }),
      { ...flag(t("10:10"), true, 2), type: "SEGMENT_OVERRIDE_UPDATED", segment, segment_priority: 0 },
      { ...flag(t("10:20"), false, 3), type: "IDENTITY_OVERRIDE_UPDATED", identity },
      { type: "FEATURE_DELETED", occurred_at: t("11:00"), author: ANA, project: PROJECT, environment: PROD, feature: BANNER },
      created(t("12:00"), { default_enabled: false, initial_value: null }),
      { ...flag(t("12:10"), true, "new"), type: "IDENTITY_OVERRIDE_UPDATED", identity: { identifier: "user-7" } },
    );
    // An override change from before the deletion, recorded after it: it ended with the feature too.
    const [late] = await send(org, { ...flag(t("10:50"), true, "late"), type: "IDENTITY_OVERRIDE_UPDATED", identity: { id: 43, identifier: "user-43" } });

    expect(await stateAt(org, t("10:55"))).toEqual([
      feature(known(c, t("10:00"), true, 1), t("10:00"), {
        segment: [{ segment, ...known(seg, t("10:10"), true, 2, { priority: 0 }) }],
        identity: [
          { identity, ...known(ident, t("10:20"), false, 3) },
          { identity: { id: 43, identifier: "user-43" }, ...known(late, t("10:50"), true, "late") },
        ],
      }),
    ]);
    expect(await stateAt(org, t("11:00"))).toEqual([]);
    expect(await stateAt(org, t("11:30"))).toEqual([]);
    expect(await stateAt(org, t("12:05"))).toEqual([feature(known(again, t("12:00"), false, null), t("10:00"))]);
    expect(await stateAt(org, t("12:30"))).toEqual([
      feature(known(again, t("12:00"), false, null), t("10:00"), { identity: [{ identity: { id: null, identifier: "user-7" }, ...known(ident2, t("12:10"), true, "new") }] }),
    ]);

    // The net change over the deletion: every state ended, the default with its deleting entry.
    const changes = await get(org, `/api/v1/environments/${PROD.id}/changes?from=${t("10:55")}&to=${t("11:30")}`);
    expect(changes).toEqual({
      from: t("10:55"),
      to: t("11:30"),
      environment: { id: PROD.id, name: PROD.name },
      changes: [
        net("environment", known(c, t("10:00"), true, 1), null, [del], ["Ana Lee"]),
        { ...net("segment", known(seg, t("10:10"), true, 2, { priority: 0 }), null, [del], ["Ana Lee"]), segment },
        { ...net("identity", known(ident, t("10:20"), false, 3), null, [del], ["Ana Lee"]), identity },
        { ...net("identity", known(late, t("10:50"), true, "late"), null, [del], ["Ana Lee"]), identity: { id: 43, identifier: "user-43" } },
      ],
    });

    // The timeline shows the deletion of the default and of every override, then the re-creation.
    const timeline = (await get(org, `/api/v1/environments/${PROD.id}/features/${BANNER.id}/timeline`)).results as Json[];
    expect(timeline.map((e) => [e.changed_at, e.change, e.scope, e.segment ?? e.identity ?? null, e.before === null ? null : (e.before as Json).known, e.after === null ? null : (e.after as Json).feature_state_value])).toEqual([
      [t("10:00"), "created", "environment", null, null, 1],
      [t("10:10"), "set", "segment", segment, false, 2],
      [t("10:20"), "set", "identity", identity, false, 3],
      [t("10:50"), "set", "identity", { id: 43, identifier: "user-43" }, false, "late"],
      [t("11:00"), "deleted", "environment", null, true, null],
      [t("11:00"), "deleted", "segment", null, null, null],
      [t("11:00"), "deleted", "identity", null, null, null],
      [t("12:00"), "created", "environment", null, null, null],
      // Every identity override ended at 11:00, so user-7's began at 12:10.
      [t("12:10"), "set", "identity", { id: null, identifier: "user-7" }, null, "new"],
    ]);
    expect(timeline[4]).toEqual({
      changed_at: t("11:00"),
      change: "deleted",
      scope: "environment",
      before: known(c, t("10:00"), true, 1),
      after: null,
      author: "Ana Lee",
      audit_entry_id: del.entry,
      event_id: del.eventId,
    });
  });

  it("gives a feature created without an environment to every environment of the project then known", async () => {
    const org = await createOrganisation();
    const staging = { id: 11, name: "Staging" };
    await send(org, { type: "ENVIRONMENT_CREATED", project: PROJECT, environment: PROD }, { type: "ENVIRONMENT_CREATED", project: PROJECT, environment: staging });
    const [c] = await send(org, { ...created(t("10:00"), { default_enabled: true, initial_value: "x" }), environment: undefined });
    for (const env of [PROD.id, staging.id]) expect(await stateAt(org, t("10:00"), env)).toEqual([feature(known(c, t("10:00"), true, "x"), t("10:00"))]);
  });
});

/** A net change entry of the changes answer. */
function net(scope: string, before: Json | null, after: Json | null, by: Sent[], authors: string[], f = BANNER) {
  return {
    feature: f,
    scope,
    before,
    after,
    changes_between: by.length,
    authors,
    audit_entry_ids: by.map((s) => s.entry),
    event_ids: by.map((s) => s.eventId),
  };
}

describe("overrides", () => {
  it("lists segment overrides by priority and shows a priority change as a change", async () => {
    const org = await createOrganisation();
    const seg = (id: number, name: string, priority: number, at: string, value: string) => ({
      ...flag(at, true, value),
      type: "SEGMENT_OVERRIDE_UPDATED",
      segment: { id, name, description: null },
      segment_priority: priority,
    });
    const [d, low, top, mid] = await send(
      org,
      flag(t("09:00"), false, null),
      seg(30, "everyone else", 2, t("09:10"), "c"),
      seg(10, "staff", 0, t("09:20"), "a"),
      seg(20, "beta", 1, t("09:30"), "b"),
    );
    const [swap, gone] = await send(org, seg(30, "everyone else", 0, t("10:00"), "c"), {
      ...flag(t("10:05"), false, null),
      type: "SEGMENT_OVERRIDE_DELETED",
      segment: { id: 10, name: "staff" },
      new_state: undefined,
    });
    const entry = (s: Sent, id: number, name: string, priority: number, at: string, value: string) => ({
      segment: { id, name },
      ...known(s, at, true, value, { priority }),
    });
    expect(await stateAt(org, t("09:45"))).toEqual([
      feature(known(d, t("09:00"), false, null), t("09:00"), {
        segment: [entry(top, 10, "staff", 0, t("09:20"), "a"), entry(mid, 20, "beta", 1, t("09:30"), "b"), entry(low, 30, "everyone else", 2, t("09:10"), "c")],
      }),
    ]);
    expect(await stateAt(org, t("10:10"))).toEqual([
      feature(known(d, t("09:00"), false, null), t("09:00"), {
        segment: [entry(swap, 30, "everyone else", 0, t("10:00"), "c"), entry(mid, 20, "beta", 1, t("09:30"), "b")],
      }),
    ]);
    const changes = (await get(org, `/api/v1/environments/${PROD.id}/changes?from=${t("09:45")}&to=${t("10:10")}`)).changes;
    expect(changes).toEqual([
      { ...net("segment", known(top, t("09:20"), true, "a", { priority: 0 }), null, [gone], ["Kyle Johnson"]), segment: { id: 10, name: "staff" } },
      {
        ...net("segment", known(low, t("09:10"), true, "c", { priority: 2 }), known(swap, t("10:00"), true, "c", { priority: 0 }), [swap], ["Kyle Johnson"]),
        segment: { id: 30, name: "everyone else" },
      },
    ]);
  });

  it("keeps identity overrides per identifier, by identifier, through updates and deletes", async () => {
    const org = await createOrganisation();
    const ident = (identifier: string, at: string, enabled: boolean, value: unknown, id: number | null = null) => ({
      ...flag(at, enabled, value),
      type: "IDENTITY_OVERRIDE_UPDATED",
      identity: { id, identifier },
    });
    const [zed, amy, amy2] = await send(org, ident("zed", t("08:00"), true, "z", 2), ident("amy", t("08:10"), false, "a", 1), ident("amy", t("08:20"), true, "a2", 1));
    const [del] = await send(org, { ...ident("zed", t("08:30"), false, null, 2), type: "IDENTITY_OVERRIDE_DELETED", new_state: undefined });
    const at = (s: Sent, identifier: string, id: number, time: string, enabled: boolean, value: unknown) => ({ identity: { id, identifier }, ...known(s, time, enabled, value) });
    // The default was never seen: unknown, but the overrides are listed.
    expect(await stateAt(org, t("08:15"))).toEqual([feature(UNKNOWN, t("08:00"), { identity: [at(amy, "amy", 1, t("08:10"), false, "a"), at(zed, "zed", 2, t("08:00"), true, "z")] })]);
    expect(await stateAt(org, t("08:25"))).toEqual([feature(UNKNOWN, t("08:00"), { identity: [at(amy2, "amy", 1, t("08:20"), true, "a2"), at(zed, "zed", 2, t("08:00"), true, "z")] })]);
    expect(await stateAt(org, t("08:30"))).toEqual([feature(UNKNOWN, t("08:00"), { identity: [at(amy2, "amy", 1, t("08:20"), true, "a2")] })]);
    // Changed and changed back within the window: listed, with equal before and after and the count.
    const back = await send(org, ident("amy", t("09:00"), false, "x", 1), ident("amy", t("09:10"), true, "a2", 1));
    const changes = (await get(org, `/api/v1/environments/${PROD.id}/changes?from=${t("08:50")}&to=${t("09:20")}`)).changes as Json[];
    expect(changes).toEqual([
      { ...net("identity", known(amy2, t("08:20"), true, "a2"), known(back[1], t("09:10"), true, "a2"), back, ["Kyle Johnson"]), identity: { id: 1, identifier: "amy" } },
    ]);
    expect(del).toBeDefined();
  });
});

describe("entries recorded before the flag history existed", () => {
  it("are projected by the scheduled handler, a slice a run, into the same answers", async () => {
    const org = await createOrganisation();
    const sent = await send(
      org,
      created(t("10:00"), { default_enabled: false, initial_value: "hello" }),
      { ...flag(t("10:10"), true, "beta"), type: "SEGMENT_OVERRIDE_UPDATED", segment: { id: 9, name: "beta" }, segment_priority: 0 },
      flag(t("10:20"), true, "hello"),
    );
    const answers = async () => [await stateAt(org, t("10:15")), await stateAt(org), await get(org, `/api/v1/environments/${PROD.id}/features/${BANNER.id}/timeline`)];
    const before = await answers();
    // As if these entries had been recorded before the migration: no history, and the backfill's
    // range covering them (the migration sets it to every entry then stored). The backfill walks the
    // entries' internal row ids; the API names them by their number in the organisation.
    const rowId = async (seq: number) =>
      (await env.DB.prepare("select id from audit_entries where org_id = ? and seq = ?").bind(org.orgId, seq).first<number>("id"))!;
    const [first, last] = [await rowId(sent[0].entry), await rowId(sent[2].entry)];
    await env.DB.batch([
      env.DB.prepare("delete from flag_changes where org_id = ?").bind(org.orgId),
      env.DB.prepare("delete from flag_subjects where org_id = ?").bind(org.orgId),
      env.DB.prepare("update history_backfill set upto = ?, done_through = ? where name = 'flag_history'").bind(last, first - 1),
    ]);
    expect(await countRows("flag_changes", "org_id = ?", org.orgId)).toBe(0);
    await expect(call(`/api/v1/environments/${PROD.id}/features/${BANNER.id}/timeline`, { headers: org.auth })).resolves.toHaveProperty("status", 404);

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController(), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await answers()).toEqual(before);
    expect(await env.DB.prepare("select upto = done_through as done from history_backfill").first("done")).toBe(1);
    // Projecting the same entries again (a run cut short, two recorders racing) adds nothing.
    const rows = await countRows("flag_changes", "org_id = ?", org.orgId);
    expect(rows).toBe(3);
    await env.DB.prepare("update history_backfill set done_through = ? where name = 'flag_history'").bind(first - 1).run();
    await worker.scheduled(createScheduledController(), env, createExecutionContext());
    expect(await countRows("flag_changes", "org_id = ?", org.orgId)).toBe(rows);
    expect(await answers()).toEqual(before);
  });
});

describe("bad input and other organisations", () => {
  it("answers 404 for another organisation's environment and for one never seen, on every history path", async () => {
    const mine = await createOrganisation("Mine");
    const theirs = await createOrganisation("Theirs");
    await send(theirs, flag(t("10:00"), true, "secret"));
    for (const path of [`/api/v1/environments/${PROD.id}/state`, `/api/v1/environments/${PROD.id}/changes?from=${t("09:00")}`, `/api/v1/environments/${PROD.id}/features/5/timeline`, `/api/v1/environments/${PROD.api_key}/state`]) {
      const res = await call(path, { headers: mine.auth });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ error: { code: "not_found", message: "environment not found", details: [] } });
    }
    // Their own key sees it.
    expect((await stateAt(theirs, t("10:00"))).length).toBe(1);
  });
});

describe("the OpenAPI document", () => {
  it("documents the three history paths with their parameters and answers", async () => {
    const spec = (await (await call("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { parameters: { name: string; in: string; required?: boolean }[]; responses: Record<string, unknown> }>>;
    };
    const params = (path: string) => spec.paths[path].get.parameters.map((p) => `${p.in}:${p.name}${p.required ? "!" : ""}`).sort();
    expect(params("/api/v1/environments/{env}/state")).toEqual(["path:env!", "query:at"]);
    expect(params("/api/v1/environments/{env}/changes")).toEqual(["path:env!", "query:from!", "query:to"]);
    expect(params("/api/v1/environments/{env}/features/{feature_id}/timeline")).toEqual(["path:env!", "path:feature_id!", "query:cursor", "query:page_size"]);
    for (const path of ["/api/v1/environments/{env}/state", "/api/v1/environments/{env}/changes", "/api/v1/environments/{env}/features/{feature_id}/timeline"]) {
      expect(Object.keys(spec.paths[path].get.responses).sort()).toEqual(["200", "400", "401", "404", "500"]);
    }
  });
});
