// One delivery with its attempts, and redelivering it.
import { createRoute, z } from "@hono/zod-openapi";
import { WEBHOOK_EVENT_TYPES } from "../domain/fanout";
import { database } from "../db/client";
import { deliveryWithAttempts, redeliver, retryNow } from "../manage/deliveries";
import { requireOrganisation } from "./auth";
import { jsonBodyOnly } from "./json-body";
import { resource } from "./context";
import { conflictResponse, errorResponses, json } from "./schemas";

export const Delivery = z
  .object({
    id: z.string().openapi({ description: "Also the webhook-id header, stable across retries and redeliveries" }),
    webhook_id: z.string(),
    event_id: z.string().nullable(),
    audit_entry_id: z.number().int().nullable(),
    event_type: z.enum(WEBHOOK_EVENT_TYPES),
    test: z.boolean().openapi({ description: "A test sent by hand: never retried or recovered, not counted in the webhook's health" }),
    status: z.enum(["pending", "delivered", "failed"]),
    attempt_count: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Delivery");

const Attempt = z
  .object({
    number: z.number().int(),
    attempted_at: z.string(),
    status_code: z.number().int().nullable(),
    duration_ms: z.number().int(),
    error: z.string().nullable(),
    response_body: z.string().nullable().openapi({ description: "First 2 KiB of the response" }),
  })
  .openapi("Attempt");

const DeliveryDetail = Delivery.extend({ payload: z.string(), attempts: z.array(Attempt) }).openapi("DeliveryDetail");

const idParam = z.object({ id: z.string().max(64) });
const security = [{ apiKey: [] }];
const tags = ["Deliveries"];

export const deliveryRoutes = resource();
deliveryRoutes.use("*", requireOrganisation, jsonBodyOnly);

deliveryRoutes.openapi(
  createRoute({ method: "get", path: "/{id}", tags, security, request: { params: idParam }, responses: { 200: json(DeliveryDetail, "The delivery and every attempt"), ...errorResponses } }),
  async (c) => c.json(await deliveryWithAttempts(c.env, c.get("orgId"), c.req.valid("param").id), 200),
);

deliveryRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/redeliver",
    tags,
    security,
    summary: "Send again: same bytes, same webhook-id, a fresh retry cycle",
    request: { params: idParam },
    responses: { 202: json(Delivery, "Queued"), ...errorResponses, ...conflictResponse },
  }),
  async (c) => c.json(await redeliver(c.env, c.get("orgId"), c.req.valid("param").id, c.get("submitter")), 202),
);

deliveryRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/retry",
    tags,
    security,
    summary: "Retry now: make a pending delivery's next attempt at once, keeping its earlier attempts",
    description:
      "The attempt counts as the next one of its schedule, which goes on after it. 409 when the delivery is not pending (delivery_not_pending: redeliver it), an attempt is in flight (attempt_in_flight), or the webhook is disabled (webhook_disabled).",
    request: { params: idParam },
    responses: { 202: json(Delivery, "Queued for an attempt now"), ...errorResponses, ...conflictResponse },
  }),
  async (c) => c.json(await retryNow(c.env, c.get("orgId"), c.req.valid("param").id, c.get("submitter")), 202),
);
