// Flag history of an environment: its state at a moment, the net changes between two moments, and
// one flag's timeline. Mounted under /api/v1/environments/{env}, where {env} is the id or api_key.
import { createRoute, z } from "@hono/zod-openapi";
import { timestamp } from "../domain/event";
import { database } from "../db/client";
import { changesAnswer, stateJson, timelineAnswer } from "../history/answers";
import type { TimelineCursor } from "../history/query";
import { requireOrganisation } from "./auth";
import { resource } from "./context";
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
    const { env } = c.req.valid("param");
    const body = await stateJson(database(c.env.DB), c.get("orgId"), env, c.req.valid("query").at);
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
    const { from, to } = c.req.valid("query");
    return c.json(await changesAnswer(database(c.env.DB), c.get("orgId"), c.req.valid("param").env, from, to), 200);
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
    const { env, feature_id } = c.req.valid("param");
    const { page_size, cursor } = c.req.valid("query");
    const after = cursor ? decodeCursor<TimelineCursor>(cursor, ["string", "number"]) : undefined;
    const { results, next } = await timelineAnswer(database(c.env.DB), c.get("orgId"), env, feature_id, page_size, after);
    return c.json({ results, next: next ? encodeCursor(next) : null }, 200);
  },
);
