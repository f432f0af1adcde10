// Webhooks of an organisation (Flagsmith's audit log webhooks) and of an environment (its web hooks):
// the same resource mounted twice, under /organisations/{org}/webhooks and /environments/{env}/webhooks.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { notFound } from "../domain/errors";
import { DEFAULT_EVENT_TYPES, SCOPE_EVENT_TYPES, WEBHOOK_EVENT_TYPES, type WebhookScope } from "../domain/fanout";
import { timestamp } from "../domain/event";
import { now } from "../domain/clock";
import { database } from "../db/client";
import { webhookStats } from "../health/stats";
import { deliveryOut, listDeliveries, recover, type DeliveryCursor } from "../manage/deliveries";
import {
  confirmSecret,
  createWebhook,
  deleteWebhook,
  findWebhook,
  listWebhooks,
  resolveEnvironment,
  rotateSecret,
  testWebhook,
  updateWebhook,
  webhookOut,
  type WebhookOwner,
} from "../manage/webhooks";
import { requireOrganisation } from "./auth";
import { jsonBodyOnly } from "./json-body";
import { resource, type AppEnv } from "./context";
import { Delivery } from "./deliveries";
import { conflictResponse, decodeCursor, encodeCursor, ErrorSchema, errorResponses, json, jsonBody, page, pageSize } from "./schemas";

const eventType = z.enum(WEBHOOK_EVENT_TYPES);
const flagsmithDefaults = `same as Flagsmith: ${DEFAULT_EVENT_TYPES.organisation.join(", ")} for organisation webhooks; ${DEFAULT_EVENT_TYPES.environment.join(", ")} for environment webhooks`;
const changedBy = z.enum(["name", "email"]);

const SecretRotation = z
  .object({
    staged: z.boolean(),
    x_flagsmith_signature: z.enum(["previous", "new"]).openapi({ description: "The secret X-Flagsmith-Signature is signed with now" }),
    previous_secret_expires_at: z.string().openapi({ description: "Until then the previous secret signs webhook-signature too (and, when staged and not confirmed, X-Flagsmith-Signature)" }),
  })
  .openapi("SecretRotation");

const WebhookHealthSchema = z.enum(["healthy", "failing", "disabled"]).openapi({
  description: "disabled: the webhook is; failing: its latest attempts failed (from the first failure until an attempt succeeds); healthy otherwise",
});

const Stats = z
  .object({
    window: z.enum(["24h", "7d"]),
    health: WebhookHealthSchema,
    deliveries: z.number().int().openapi({ description: "succeeded + failed in the window, + pending now" }),
    succeeded: z.number().int().openapi({ description: "Deliveries that succeeded in the window" }),
    failed: z.number().int().openapi({ description: "Deliveries that used their last attempt in the window (or met 410 Gone)" }),
    pending: z.number().int().openapi({ description: "Deliveries waiting for an attempt now (the backlog)" }),
    success_rate: z.number().nullable().openapi({ description: "succeeded / (succeeded + failed); null when none finished" }),
    attempts: z.number().int().openapi({ description: "Attempts made in the window (test sends are not counted)" }),
    attempts_failed: z.number().int().openapi({ description: "Attempts that did not succeed, those refused by the URL policy included" }),
    attempts_refused: z.number().int().openapi({ description: "Attempts refused by the URL policy: never sent, left out of the durations" }),
    p50_ms: z.number().int().nullable().openapi({ description: "Median duration of the attempts sent, read from an hourly histogram (within half a bucket; buckets about 1.5x apart)" }),
    p95_ms: z.number().int().nullable(),
    last_success_at: z.string().nullable().openapi({ description: "Within DELIVERY_RETENTION_DAYS, whatever the window" }),
    last_failure_at: z.string().nullable(),
    last_failure: z.string().nullable().openapi({ description: "The error of the last failed attempt" }),
    oldest_pending_at: z.string().nullable().openapi({ description: "created_at of the oldest pending delivery" }),
    by_hour: z.array(
      z.object({
        hour: z.string().openapi({ description: "Start of the hour (UTC)" }),
        succeeded: z.number().int(),
        failed: z.number().int(),
        attempts: z.number().int(),
        attempts_failed: z.number().int(),
      }),
    ).openapi({ description: "Every hour of the window, oldest first, the current hour last" }),
  })
  .openapi("WebhookStats");

export const Webhook = z
  .object({
    id: z.string().openapi({ example: "whk_0v3..." }),
    url: z.string(),
    name: z.string(),
    scope: z.enum(["organisation", "environment"]),
    environment: z.number().int().nullable(),
    enabled: z.boolean(),
    health: WebhookHealthSchema,
    failing_since: z.string().nullable().openapi({ description: "When the failures that make it failing began; null when its last attempt succeeded" }),
    event_types: z.array(eventType).openapi({ description: "The events this webhook receives" }),
    changed_by: changedBy.openapi({ description: "changed_by in flaghook's own FLAG_UPDATED / FLAG_DELETED: \"first last\" (name) or the author's email (email, as Flagsmith since 2022)" }),
    created_at: z.string(),
    updated_at: z.string(),
    disabled_reason: z.string().nullable(),
    has_secret: z.boolean(),
    secret_rotation: SecretRotation.nullable(),
  })
  .openapi("Webhook");

const WebhookWithSecret = Webhook.extend({
  secret: z.string().openapi({ description: "Shown only when created or rotated" }),
}).openapi("WebhookWithSecret");

// Any non-blank secret, as Flagsmith takes any: a receiver moved from Flagsmith keeps the one it checks.
const secret = z.string().min(1).max(256);
const WebhookCreate = z
  .strictObject({
    url: z.string().max(2048),
    name: z.string().trim().min(1).max(200).optional(),
    enabled: z.boolean().optional(),
    event_types: z
      .array(eventType)
      .min(1)
      .max(WEBHOOK_EVENT_TYPES.length)
      .refine((types) => new Set(types).size === types.length, "name each event type once")
      .nullable()
      .optional()
      .openapi({ description: `Left out or null: ${flagsmithDefaults}` }),
    changed_by: changedBy.optional().openapi({ description: "Default: name" }),
    secret: secret.optional().openapi({ description: "Default: whsec_ + base64 of 32 random bytes" }),
  })
  .openapi("WebhookCreate");
const WebhookUpdate = WebhookCreate.partial().openapi("WebhookUpdate");

const TestResult = z
  .object({
    delivery_id: z.string(),
    test: z.literal(true).openapi({ description: "The delivery is marked as a test: never retried or recovered, not counted in health" }),
    ok: z.boolean(),
    status_code: z.number().int().nullable(),
    duration_ms: z.number().int(),
    error: z.string().nullable(),
    response_body: z.string().nullable(),
  })
  .openapi("WebhookTestResult");

const idParam = z.object({ id: z.string().max(64) });
const security = [{ apiKey: [] }];

/** The organisation's own id in the path, or its environment (id or api_key). Others answer 404. */
async function ownerOf(c: Context<AppEnv>, scope: WebhookScope): Promise<WebhookOwner> {
  const orgId = c.get("orgId");
  if (scope === "organisation") {
    if (c.req.param("org") !== String(orgId)) throw notFound("organisation");
    return { orgId, scope, environmentId: null };
  }
  const environmentId = await resolveEnvironment(database(c.env.DB), orgId, c.req.param("env") ?? "");
  return { orgId, scope, environmentId };
}

export function webhookRoutes(scope: WebhookScope) {
  const routes = resource();
  const tags = [scope === "organisation" ? "Organisation webhooks" : "Environment webhooks"];
  routes.use("*", requireOrganisation, jsonBodyOnly);
  const hook = async (c: Context<AppEnv>, id: string) => findWebhook(database(c.env.DB), await ownerOf(c, scope), id);

  routes.openapi(
    createRoute({ method: "get", path: "/", tags, security, responses: { 200: json(page(Webhook), "Webhooks"), ...errorResponses } }),
    async (c) => c.json({ results: await listWebhooks(database(c.env.DB), await ownerOf(c, scope)), next: null }, 200),
  );

  routes.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      security,
      request: { body: jsonBody(WebhookCreate) },
      responses: {
        201: json(WebhookWithSecret, "Created; the secret is shown once"),
        ...errorResponses,
        409: json(ErrorSchema, "limit_reached: the environment or the organisation has as many webhooks as allowed"),
      },
    }),
    async (c) => c.json(await createWebhook(c.env, await ownerOf(c, scope), c.req.valid("json"), c.get("submitter")), 201),
  );

  routes.openapi(
    createRoute({ method: "get", path: "/{id}", tags, security, request: { params: idParam }, responses: { 200: json(Webhook, "The webhook"), ...errorResponses } }),
    async (c) => c.json(webhookOut(await hook(c, c.req.valid("param").id)), 200),
  );

  routes.openapi(
    createRoute({
      method: "patch",
      path: "/{id}",
      tags,
      security,
      request: { params: idParam, body: jsonBody(WebhookUpdate) },
      responses: { 200: json(Webhook, "Updated"), ...errorResponses },
    }),
    async (c) => c.json(await updateWebhook(c.env, await hook(c, c.req.valid("param").id), c.req.valid("json"), c.get("submitter")), 200),
  );

  routes.openapi(
    createRoute({ method: "delete", path: "/{id}", tags, security, request: { params: idParam }, responses: { 204: { description: "Deleted, with its deliveries" }, ...errorResponses } }),
    async (c) => {
      await deleteWebhook(c.env, await hook(c, c.req.valid("param").id), c.get("submitter"));
      return c.body(null, 204);
    },
  );

  routes.openapi(
    createRoute({
      method: "post",
      path: "/{id}/rotate-secret",
      tags,
      security,
      summary: "Issue a new secret; staged by default: X-Flagsmith-Signature keeps the previous one until confirmed",
      request: {
        params: idParam,
        body: {
          required: false,
          content: {
            "application/json": {
              schema: z.strictObject({
                secret: secret.optional(),
                staged: z.boolean().optional().openapi({
                  description:
                    "Default true: X-Flagsmith-Signature keeps the previous secret until POST .../rotate-secret/confirm or the grace period ends; false: it switches now",
                }),
              }),
            },
          },
        },
      },
      responses: { 200: json(WebhookWithSecret.extend({ previous_secret_expires_at: z.string().nullable() }), "Rotated; the old secret signs too until it expires"), ...errorResponses },
    }),
    async (c) => {
      const body = (c.req.valid("json") ?? {}) as { secret?: string; staged?: boolean };
      return c.json(await rotateSecret(c.env, await hook(c, c.req.valid("param").id), body, c.get("submitter")), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: "post",
      path: "/{id}/rotate-secret/confirm",
      tags,
      security,
      summary: "Switch to the new secret now: the receiver checks it; the previous secret stops signing",
      request: { params: idParam },
      responses: { 200: json(Webhook, "Switched"), ...errorResponses },
    }),
    async (c) => c.json(await confirmSecret(c.env, await hook(c, c.req.valid("param").id), c.get("submitter")), 200),
  );

  routes.openapi(
    createRoute({
      method: "post",
      path: "/{id}/test",
      tags,
      security,
      summary: "Send a sample payload now and answer what the receiver said",
      request: { params: idParam },
      responses: { 200: json(TestResult, "The receiver's answer"), ...errorResponses },
    }),
    async (c) => c.json(await testWebhook(c.env, await hook(c, c.req.valid("param").id)), 200),
  );

  routes.openapi(
    createRoute({
      method: "get",
      path: "/{id}/deliveries",
      tags,
      security,
      request: {
        params: idParam,
        query: z.strictObject({
          status: z.enum(["pending", "delivered", "failed"]).optional(),
          page_size: pageSize,
          cursor: z.string().max(512).optional(),
        }),
      },
      responses: { 200: json(page(Delivery), "Deliveries, newest first"), ...errorResponses },
    }),
    async (c) => {
      const webhook = await hook(c, c.req.valid("param").id);
      const { status, page_size, cursor } = c.req.valid("query");
      const after = cursor ? decodeCursor<DeliveryCursor>(cursor, ["number", "string"]) : undefined;
      const { rows, next } = await listDeliveries(c.env, webhook.id, { status, limit: page_size, after });
      return c.json({ results: rows.map(deliveryOut), next: next ? encodeCursor(next) : null }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: "get",
      path: "/{id}/stats",
      tags,
      security,
      summary: "Delivery health over the last 24 hours or 7 days, from the hourly roll-up",
      request: { params: idParam, query: z.strictObject({ window: z.enum(["24h", "7d"]).default("24h") }) },
      responses: { 200: json(Stats, "The webhook's delivery health"), ...errorResponses },
    }),
    async (c) => {
      const webhook = await hook(c, c.req.valid("param").id);
      return c.json(await webhookStats(database(c.env.DB), webhook, c.req.valid("query").window, now()), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: "post",
      path: "/{id}/recover",
      tags,
      security,
      summary: "Redeliver every failed delivery created since a time (test sends excepted)",
      request: { params: idParam, body: jsonBody(z.strictObject({ since: timestamp })) },
      responses: { 202: json(z.object({ recovered: z.number().int() }), "Queued again"), ...errorResponses, ...conflictResponse },
    }),
    async (c) => {
      const webhook = await hook(c, c.req.valid("param").id);
      return c.json(await recover(c.env, webhook.id, Date.parse(c.req.valid("json").since), c.get("submitter")), 202);
    },
  );

  return routes;
}
