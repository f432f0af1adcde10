// Flag history of an environment: its state at a moment, the net changes between two moments, and
// one flag's timeline. Mounted under /api/v1/environments/{env}, where {env} is the id or api_key.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { isoMicro, now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { timestamp } from "../domain/event";
import { featureJson, netChanges, timelineEntry } from "../domain/flag-state";
import { EVERY } from "../domain/history";
import { database } from "../db/client";
import { changesWithin, featuresAt, findEnvironment, subjectsAt, subjectsOfScopes, timelineOf, type TimelineCursor } from "../history/query";
import { requireOrganisation } from "./auth";
import { resource, type AppEnv } from "./context";
import { decodeCursor, encodeCursor, errorResponses, json, numericId, page, pageSize } from "./schemas";

const description = (d: string) => ({ description: d });

const Values = {
  enabled: z.boolean().nullable(),
  feature_state_value: z.unknown().openapi(description("string, number, boolean or null, as the change set it")),
  multivariate_feature_state_values: z.unknown().openapi(description("Flagsmith's multivariate allocations when the change carried them, else null")),
  changed_at: z.string().nullable().openapi(description("When the change that set this state took effect (its occurred_at)")),
  audit_entry_id: z.number().int().nullable().openapi(description("null for Flagsmith's relayed flag events, which have no audit entry: see event_id")),
  event_id: z.string().nullable(),
  known: z.boolean().openapi(description("false: flaghook did not see this state; every value is null then")),
};

export const FlagState = z.object(Values).extend({ priority: z.number().int().nullable().optional() }).openapi("FlagState");
const Segment = z.object({ id: z.number().int(), name: z.string().nullable() });
const Identity = z.object({ id: z.number().int().nullable(), identifier: z.string() });
const Feature = z.object({ id: z.number().int(), name: z.string() });
const Environment = z.object({ id: z.number().int(), name: z.string().nullable() });
const every = (what: string) => `null: every ${what} override of the flag (those flaghook cannot tell apart, or all of them ended)`;

const FeatureState = z
  .object({
    feature: Feature,
    ...Values,
    known_since: z.string().openapi(description("The first recorded change of this flag in the environment; before it flaghook knows nothing")),
    segment_overrides: z.array(z.object({ segment: Segment.nullable().openapi(description(every("segment"))), priority: z.number().int().nullable(), ...Values })),
    identity_overrides: z.array(z.object({ identity: Identity.nullable().openapi(description(every("identity"))), ...Values })),
  })
  .openapi("FeatureState");

const EnvironmentState = z.object({ at: z.string(), environment: Environment, features: z.array(FeatureState) }).openapi("EnvironmentState");

const Scope = z.enum(["environment", "segment", "identity"]);
const NetChange = z
  .object({
    feature: Feature,
    scope: Scope,
    segment: Segment.nullable().optional(),
    identity: Identity.nullable().optional(),
    before: FlagState.nullable().openapi(description("null: the state did not exist")),
    after: FlagState.nullable(),
    changes_between: z.number().int(),
    authors: z.array(z.string()),
    audit_entry_ids: z.array(z.number().int()),
    event_ids: z.array(z.string()),
  })
  .openapi("FlagNetChange");

const Changes = z.object({ from: z.string(), to: z.string(), environment: Environment, changes: z.array(NetChange) }).openapi("EnvironmentChanges");

const TimelineEntry = z
  .object({
    changed_at: z.string(),
    change: z.enum(["set", "created", "deleted", "unknown"]),
    scope: Scope,
    segment: Segment.nullable().optional().openapi(description(every("segment"))),
    identity: Identity.nullable().optional().openapi(description(every("identity"))),
    before: FlagState.nullable(),
    after: FlagState.nullable(),
    author: z.string().nullable(),
    audit_entry_id: z.number().int().nullable(),
    event_id: z.string(),
  })
  .openapi("FlagTimelineEntry");

const envParam = z.object({
  env: z.string().min(1).max(512).openapi({ param: { name: "env", in: "path" }, description: "The environment's id or api_key" }),
});
const at = timestamp.openapi({ description: "ISO-8601 date-time; without a zone it is read as UTC", example: "2024-03-05T14:02:00Z" });
const security = [{ apiKey: [] }];
const tags = ["Flag history"];

async function environmentOf(c: Context<AppEnv>) {
  return findEnvironment(database(c.env.DB), c.get("orgId"), c.req.param("env") ?? "");
}

const nowMicro = () => isoMicro(now());

export const historyRoutes = resource();
for (const path of ["/state", "/changes", "/features/*"]) historyRoutes.use(path, requireOrganisation);

historyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/state",
    tags,
    security,
    summary: "Every flag of the environment as it was at a moment",
    request: { params: envParam, query: z.strictObject({ at: at.optional() }) },
    responses: { 200: json(EnvironmentState, "The state at `at` (default: now), features by name"), ...errorResponses },
  }),
  async (c) => {
    const environment = await environmentOf(c);
    const moment = c.req.valid("query").at ?? nowMicro();
    const features = await featuresAt(database(c.env.DB), c.get("orgId"), environment.id, moment);
    // Written as text: the features arrive as stored JSON (an environment may hold 50,000 overrides).
    const body = `{"at":${JSON.stringify(moment)},"environment":${JSON.stringify(environment)},"features":[${features
      .map(featureJson)
      .filter((f) => f !== null)
      .join(",")}]}`;
    // `never`: the route's typed response is for c.json; this text is that same EnvironmentState.
    return c.body(body, 200, { "Content-Type": "application/json" }) as never;
  },
);

historyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/changes",
    tags,
    security,
    summary: "The net change of each flag state between two moments",
    request: { params: envParam, query: z.strictObject({ from: at, to: at.optional() }) },
    responses: { 200: json(Changes, "Every flag state that changed in (from, to]"), ...errorResponses },
  }),
  async (c) => {
    const environment = await environmentOf(c);
    const { from, to = nowMicro() } = c.req.valid("query");
    if (from > to) throw new ApiError(400, "invalid_request", "from must not be after to", [{ field: "from", message: `after to (${to})` }]);
    const db = database(c.env.DB);
    const orgId = c.get("orgId");
    const window = await changesWithin(db, orgId, environment.id, from, to);
    // The states those changes touched: their own, and every state of a scope a change to all of them reached.
    const own = window.filter((w) => w.subject !== EVERY);
    const scopes = window.filter((w) => w.subject === EVERY).map((w) => [w.featureId, w.scope] as [number, string]);
    const touched = [...own, ...(await subjectsOfScopes(db, orgId, environment.id, scopes))];
    const [before, after] = await Promise.all([subjectsAt(db, orgId, environment.id, from, touched), subjectsAt(db, orgId, environment.id, to, touched)]);
    return c.json({ from, to, environment, changes: netChanges(to, before, after, window) }, 200);
  },
);

historyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/features/{feature_id}/timeline",
    tags,
    security,
    summary: "Every change of one flag in the environment, oldest first",
    request: {
      params: envParam.extend({ feature_id: numericId("feature_id") }),
      query: z.strictObject({ page_size: pageSize, cursor: z.string().max(512).optional() }),
    },
    responses: { 200: json(page(TimelineEntry), "A page of changes"), ...errorResponses },
  }),
  async (c) => {
    const environment = await environmentOf(c);
    const { feature_id } = c.req.valid("param");
    const { page_size, cursor } = c.req.valid("query");
    const after = cursor ? decodeCursor<TimelineCursor>(cursor, ["string", "number"]) : undefined;
    const { changes, next } = await timelineOf(database(c.env.DB), c.get("orgId"), environment.id, feature_id, page_size, after);
    if (!changes.length && !after) throw notFound("flag history of this feature in this environment");
    return c.json({ results: changes.map((x) => timelineEntry(x.change, x.previous)), next: next ? encodeCursor(next) : null }, 200);
  },
);
