// The change event flaghook ingests (SPEC 3): one zod schema validates requests and documents them.
import { z } from "@hono/zod-openapi";
import { normaliseTimestamp } from "./clock";
import type { RelayedWebhook } from "./flagsmith";
import { isReservedType, RESERVED_RELATED_TYPES } from "./provenance";

export const EVENT_TYPES = [
  "FEATURE_CREATED",
  "FEATURE_UPDATED",
  "FEATURE_DELETED",
  "FLAG_STATE_UPDATED",
  "REMOTE_CONFIG_UPDATED",
  "IDENTITY_OVERRIDE_UPDATED",
  "IDENTITY_OVERRIDE_DELETED",
  "SEGMENT_OVERRIDE_UPDATED",
  "SEGMENT_OVERRIDE_DELETED",
  "SEGMENT_CREATED",
  "SEGMENT_UPDATED",
  "SEGMENT_DELETED",
  "ENVIRONMENT_CREATED",
  "ENVIRONMENT_UPDATED",
  "CUSTOM",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const id = z.number().int().nonnegative();
const name = z.string().max(2000);
const shortText = z.string().max(512);

export const timestamp = z.string().max(64).transform((value, ctx) => {
  const normalised = normaliseTimestamp(value);
  if (!normalised) {
    ctx.addIssue({ code: "custom", message: "must be an ISO-8601 date-time, e.g. 2021-06-18T07:50:26.595298Z" });
    return z.NEVER;
  }
  return normalised;
});

// author, project, environment and feature are loose: fields Flagsmith sends that flaghook does not
// read (uuid, last_login, tags, ...) are kept and passed on in the payloads (domain/audit.ts, payload.ts).
export const author = z.looseObject({
  id: id.nullable().optional(),
  email: z.string().max(320).nullable().optional(),
  first_name: shortText.nullable().optional(),
  last_name: shortText.nullable().optional(),
});

const stateValue = z.union([z.string().max(100_000), z.number(), z.boolean()]).nullable();

/** Flagsmith's shape (api/features/versioning/schemas.py, api/features/tasks.py); extra fields are kept. */
export const multivariateValue = z.looseObject({
  id: id.nullable().optional(),
  multivariate_feature_option: z.looseObject({ id: id.nullable().optional(), value: stateValue.optional() }),
  percentage_allocation: z.number().min(0).max(100),
});

export const flagState = z.object({
  enabled: z.boolean(),
  feature_state_value: stateValue.optional(),
  multivariate_feature_state_values: z.array(multivariateValue).max(1000).optional(),
});

const reservedMessage = `${RESERVED_RELATED_TYPES.join(", ")} are reserved for flaghook's own system events`;

export const changeEvent = z
  .strictObject({
    id: z.string().min(1).max(128).optional(),
    type: z.enum(EVENT_TYPES),
    occurred_at: timestamp.optional(),
    author: author.nullable().optional(),
    api_key_name: shortText.nullable().optional(),
    project: z.looseObject({ id, name: name.nullable().optional() }).nullable().optional(),
    environment: z
      .looseObject({ id, name: name.nullable().optional(), api_key: shortText.nullable().optional() })
      .nullable()
      .optional(),
    feature: z
      .looseObject({
        id,
        name,
        type: shortText.nullable().optional(),
        description: z.string().max(20_000).nullable().optional(),
        default_enabled: z.boolean().optional(),
        initial_value: stateValue.optional(),
        created_date: timestamp.nullable().optional(),
      })
      .nullable()
      .optional(),
    identity: z.object({ id: id.nullable().optional(), identifier: z.string().min(1).max(2000) }).nullable().optional(),
    segment: z
      .object({ id, name, description: z.string().max(20_000).nullable().optional() })
      .nullable()
      .optional(),
    segment_priority: z.number().int().nullable().optional(),
    previous_state: flagState.nullable().optional(),
    new_state: flagState.nullable().optional(),
    log: z.string().min(1).max(20_000).optional(),
    related_object: z
      .object({ type: z.string().min(1).max(64), id: id.nullable().optional(), uuid: shortText.nullable().optional() })
      .nullable()
      .optional(),
  })
  .superRefine((event, ctx) => {
    for (const field of requiredFields(event.type)) {
      if (event[field] == null) {
        ctx.addIssue({ code: "custom", path: [field], message: `${field} is required for ${event.type} events` });
      }
    }
    // Only flaghook writes entries about its own objects (src/ingest/system-events.ts).
    if (isReservedType(event.related_object?.type)) {
      ctx.addIssue({ code: "custom", path: ["related_object", "type"], message: reservedMessage });
    }
  })
  .openapi("ChangeEvent");

/** `relayed` is never accepted from clients: only a Flagsmith inbound source sets it (domain/flagsmith.ts). */
export type ChangeEvent = z.output<typeof changeEvent> & { relayed?: RelayedWebhook };

type RequiredField = "project" | "environment" | "feature" | "identity" | "segment" | "new_state" | "log" | "related_object";

/** What each event type needs to produce its audit message and its webhook payloads. */
export function requiredFields(type: EventType): RequiredField[] {
  switch (type) {
    case "FEATURE_CREATED":
    case "FEATURE_UPDATED":
    case "FEATURE_DELETED":
      return ["project", "feature"];
    case "FLAG_STATE_UPDATED":
    case "REMOTE_CONFIG_UPDATED":
      return ["project", "environment", "feature", "new_state"];
    case "IDENTITY_OVERRIDE_UPDATED":
      return ["project", "environment", "feature", "identity", "new_state"];
    case "IDENTITY_OVERRIDE_DELETED":
      return ["project", "environment", "feature", "identity"];
    case "SEGMENT_OVERRIDE_UPDATED":
      return ["project", "environment", "feature", "segment", "new_state"];
    case "SEGMENT_OVERRIDE_DELETED":
      return ["project", "environment", "feature", "segment"];
    case "SEGMENT_CREATED":
    case "SEGMENT_UPDATED":
    case "SEGMENT_DELETED":
      return ["project", "segment"];
    case "ENVIRONMENT_CREATED":
    case "ENVIRONMENT_UPDATED":
      return ["project", "environment"];
    case "CUSTOM":
      return ["log", "related_object"];
  }
}

export const eventBatch = z.strictObject({ events: z.array(changeEvent).min(1).max(100) }).openapi("ChangeEventBatch");
