// Ingest: POST /events and /events/batch accept change events; GET /events/{id} reports on one.
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { ApiError, notFound } from "../domain/errors";
import { changeEvent, eventBatch } from "../domain/event";
import { isFlagsmithWebhookBody } from "../domain/flagsmith";
import { database } from "../db/client";
import { logDatabase } from "../db/placement";
import { auditEventIds } from "../db/derived";
import { deliveries, relayedEvents } from "../db/schema";
import { config } from "../env";
import { acceptEvents } from "../ingest/accept";
import { isOwnEventId } from "../ingest/event-id";
import { requireOrganisation } from "./auth";
import { jsonBodyOnly } from "./json-body";
import { resource, validationFailed } from "./context";
import { errorResponses, json, jsonBody, unavailableResponse } from "./schemas";

const Accepted = z
  .object({ event_id: z.string().openapi({ example: "evt_01hx..." }), status: z.literal("accepted") })
  .openapi("Accepted");

const DeliverySummary = z
  .object({
    id: z.string(),
    webhook_id: z.string(),
    event_type: z.string(),
    status: z.enum(["pending", "delivered", "failed"]),
    attempt_count: z.number().int(),
  })
  .openapi("DeliverySummary");

const EventStatus = z
  .object({
    event_id: z.string(),
    status: z.enum(["accepted", "recorded"]),
    audit_entry_id: z.number().int().nullable().openapi({ description: "The audit entry's number (seq) in the organisation's log" }),
    deliveries: z.array(DeliverySummary),
  })
  .openapi("EventStatus");

const idempotencyHeader = z.object({
  "idempotency-key": z.string().min(1).max(128).optional().openapi({ description: "Used when the event has no id" }),
});
const security = [{ apiKey: [] }];

/** Flagsmith's own webhooks go to an inbound source, which checks their signature and keeps their shape. */
const flagsmithBodyHere = () =>
  new ApiError(
    400,
    "flagsmith_webhook_body",
    "this is one of Flagsmith's own webhook bodies; /api/v1/events takes flaghook change events. To receive Flagsmith's webhooks, create an inbound source (POST /api/v1/organisations/{org}/inbound-sources/) and paste its URL and secret into Flagsmith's webhook settings",
  );

export const eventRoutes = resource();
eventRoutes.use("*", requireOrganisation, jsonBodyOnly);

eventRoutes.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags: ["Events"],
    summary: "Ingest one change event",
    security,
    request: { headers: idempotencyHeader, body: jsonBody(changeEvent) },
    responses: { 202: json(Accepted, "Accepted: durable, recorded and delivered even if the worker dies now"), ...errorResponses, ...unavailableResponse },
  }),
  async (c) => {
    const event = c.req.valid("json");
    const [accepted] = await acceptEvents(
      c.env,
      c.get("orgId"),
      [{ event, clientId: event.id ?? c.req.valid("header")["idempotency-key"] }],
      c.get("submitter"),
    );
    return c.json(accepted, 202);
  },
  (result) => {
    if (result.success) return undefined;
    // The validator hands hooks the input as `data` on failure too (its types leave it out).
    if (result.target === "json" && isFlagsmithWebhookBody((result as { data?: unknown }).data)) throw flagsmithBodyHere();
    throw validationFailed(result.error.issues);
  },
);

eventRoutes.openapi(
  createRoute({
    method: "post",
    path: "/batch",
    tags: ["Events"],
    summary: "Ingest up to 100 change events; all are accepted or none",
    security,
    request: { headers: idempotencyHeader, body: jsonBody(eventBatch) },
    responses: { 202: json(z.object({ results: z.array(Accepted) }), "Accepted, in request order"), ...errorResponses, ...unavailableResponse },
  }),
  async (c) => {
    const { events } = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const results = await acceptEvents(
      c.env,
      c.get("orgId"),
      events.map((event, i) => ({ event, clientId: event.id ?? (key ? `${key}#${i}` : undefined) })),
      c.get("submitter"),
    );
    return c.json({ results }, 202);
  },
);

eventRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{event_id}",
    tags: ["Events"],
    summary: "Where an accepted event is: queued (accepted) or recorded, with its deliveries",
    security,
    request: { params: z.object({ event_id: z.string().max(64) }) },
    responses: { 200: json(EventStatus, "The event's status"), ...errorResponses },
  }),
  async (c) => {
    const { event_id } = c.req.valid("param");
    const orgId = c.get("orgId");
    const db = database(c.env.DB);
    // The event ids table outlives entries moved to the archive; it lives with the log (db/placement.ts).
    const [entry] = await (await logDatabase(c.env, orgId))
      .select({ seq: auditEventIds.seq })
      .from(auditEventIds)
      .where(and(eq(auditEventIds.orgId, orgId), eq(auditEventIds.eventId, event_id)));
    // A FLAG_UPDATED / FLAG_DELETED relayed from Flagsmith is recorded without an audit entry.
    const [relayed] = entry
      ? []
      : await db
          .select({ eventId: relayedEvents.eventId })
          .from(relayedEvents)
          .where(and(eq(relayedEvents.orgId, orgId), eq(relayedEvents.eventId, event_id)));
    if (!entry && !relayed) {
      const secretsKey = config(c.env).secretsKey;
      if (!secretsKey || !(await isOwnEventId(secretsKey, orgId, event_id))) throw notFound("event");
      return c.json({ event_id, status: "accepted" as const, audit_entry_id: null, deliveries: [] }, 200);
    }
    const rows = await db
      .select()
      .from(deliveries)
      .where(and(eq(deliveries.orgId, orgId), eq(deliveries.eventId, event_id)));
    return c.json(
      {
        event_id,
        status: "recorded" as const,
        audit_entry_id: entry?.seq ?? null,
        deliveries: rows.map((d) => ({
          id: d.id,
          webhook_id: d.webhookId,
          event_type: d.eventType,
          status: d.status,
          attempt_count: d.attemptCount,
        })),
      },
      200,
    );
  },
);
