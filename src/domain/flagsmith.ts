// Flagsmith's own webhooks, relayed from an inbound source: their shapes (the seed's samples and
// Flagsmith's richer real serialiser output), the change event each becomes, and the body passed on.
import { z } from "@hono/zod-openapi";
import { normaliseTimestamp } from "./clock";
import { hex, hmac, hmacKey, sha256Hex, timingSafeEqual, utf8 } from "./crypto";
import type { ChangeEvent, EventType } from "./event";
import type { WebhookEventType } from "./fanout";
import { sortedJson } from "./payload";
import { isReservedType, RESERVED_RELATED_TYPES } from "./provenance";
import { flagsmithVersionData, publishedVersion, versionPublishedLog } from "./versioning";

const id = z.number().int().nonnegative();
const text = z.string();
const date = z.string().refine((v) => normaliseTimestamp(v) !== null, "must be an ISO-8601 date-time");

// Loose objects everywhere: fields flaghook does not read (uuid, api_key, last_login,
// multivariate_feature_state_values, ...) are accepted and relayed as received.
const project = z.looseObject({ id, name: text.nullable().optional() });
const environment = z.looseObject({ id, name: text.nullable().optional(), api_key: text.nullable().optional() });

export const flagsmithAuditData = z
  .looseObject({
    id: id.optional(),
    created_date: date,
    log: text,
    author: z
      .looseObject({
        id: id.nullable().optional(),
        email: text.nullable().optional(),
        first_name: text.nullable().optional(),
        last_name: text.nullable().optional(),
      })
      .nullable()
      .optional(),
    environment: environment.nullable().optional(),
    project: project.nullable().optional(),
    related_object_id: id.nullable().optional(),
    related_object_type: text
      .nullable()
      .optional()
      .refine((t) => !isReservedType(t), `${RESERVED_RELATED_TYPES.join(", ")} are reserved for flaghook's own system events`),
    related_object_uuid: text.nullable().optional(),
    is_system_event: z.boolean().optional(),
  })
  .openapi("FlagsmithAuditLogData");

const flagState = z.looseObject({
  enabled: z.boolean(),
  environment,
  feature: z.looseObject({ id, name: text, project: project.optional() }),
  feature_state_value: z.unknown().optional(),
  feature_segment: z.unknown().optional(),
  identity: z.unknown().optional(),
  identity_identifier: text.nullable().optional(),
});

export const flagsmithFlagData = z
  .looseObject({
    changed_by: text.nullable().optional(),
    // "" when the feature state has no history record (api/features/tasks.py).
    timestamp: z.union([z.literal(""), date]),
    new_state: flagState.nullable().optional(),
    previous_state: flagState.nullable().optional(),
  })
  .openapi("FlagsmithFlagData");

type AuditData = z.output<typeof flagsmithAuditData>;
type FlagData = z.output<typeof flagsmithFlagData>;
type FlagState = z.output<typeof flagState>;

const needs = (field: "new_state" | "previous_state", type: string) =>
  flagsmithFlagData.refine((d) => d[field] != null, { path: [field], message: `${type} needs ${field}` });

export const flagsmithWebhook = z
  .discriminatedUnion("event_type", [
    z.looseObject({ event_type: z.literal("AUDIT_LOG_CREATED"), data: flagsmithAuditData }),
    z.looseObject({ event_type: z.literal("FLAG_UPDATED"), data: needs("new_state", "FLAG_UPDATED") }),
    z.looseObject({ event_type: z.literal("FLAG_DELETED"), data: needs("previous_state", "FLAG_DELETED") }),
    z.looseObject({ event_type: z.literal("NEW_VERSION_PUBLISHED"), data: flagsmithVersionData }),
  ])
  .openapi("FlagsmithWebhook");

/**
 * What a change event relayed from Flagsmith carries: the inbound source it came from, and the
 * body every subscriber gets, `{"data", "event_type"}` as received, keys sorted like Flagsmith's
 * json.dumps(sort_keys=True) and numbers as Flagsmith wrote them. Those bytes are the only copy.
 */
export interface RelayedWebhook {
  source: string;
  event_type: WebhookEventType;
  payload: string;
}

export type FlagsmithWebhook = Omit<RelayedWebhook, "source"> & { data: Record<string, unknown> };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses JSON keeping a number's own digits where JS would print others (Python's 50.0, 1e+16, ints past 2^53). */
function parseKeepingDigits(text: string): unknown {
  const json = JSON as unknown as { rawJSON?(source: string): unknown };
  if (!json.rawJSON) return JSON.parse(text);
  return (JSON.parse as (t: string, reviver: (k: string, v: unknown, context?: { source?: string }) => unknown) => unknown)(
    text,
    (_key, value, context) => (typeof value === "number" && context?.source && String(value) !== context.source ? json.rawJSON!(context.source) : value),
  );
}

/** Flagsmith sends `{"data", "event_type"}`; its docs show the audit log bare: an object with neither key is that. */
const wrapped = (body: unknown): unknown =>
  isObject(body) && !("event_type" in body) && !("data" in body) ? { event_type: "AUDIT_LOG_CREATED", data: body } : body;

/** Whether a parsed body is one of Flagsmith's own webhooks (sent to the wrong place, for instance). */
export const isFlagsmithWebhookBody = (body: unknown): boolean =>
  isObject(body) && !("type" in body) && flagsmithWebhook.safeParse(wrapped(body)).success;

/** Flagsmith's bodies nest a few levels (data.new_state.feature.project); deeper is not one of them. */
export const MAX_NESTING = 64;

/** How deep arrays and objects nest in JSON text, counted without parsing it (strings skipped). */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++; // backslash: skip the escaped character
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) deepest = Math.max(deepest, ++depth);
    else if (ch === 125 || ch === 93) depth--;
  }
  return deepest;
}

/** Parses and validates a body; a SyntaxError means it is not JSON at all. */
export function parseFlagsmithWebhook(
  text: string,
): { success: true; webhook: FlagsmithWebhook } | { success: false; error: z.ZodError | SyntaxError } {
  let input: unknown;
  try {
    input = wrapped(JSON.parse(text));
  } catch (err) {
    return { success: false, error: err as SyntaxError };
  }
  const result = flagsmithWebhook.safeParse(input);
  if (!result.success) return { success: false, error: result.error };
  const { event_type, data } = input as { event_type: WebhookEventType; data: Record<string, unknown> };
  const exact = wrapped(parseKeepingDigits(text)) as { data: unknown };
  return { success: true, webhook: { event_type, data, payload: sortedJson({ data: exact.data, event_type }) } };
}

/** X-Flagsmith-Signature: hex HMAC-SHA256 of the raw body keyed by the secret's UTF-8 bytes (the seed's check). */
export async function flagsmithSignatureValid(secret: string, body: Uint8Array, signature: string): Promise<boolean> {
  const expected = hex(await hmac(await hmacKey(utf8(secret)), body));
  return timingSafeEqual(expected, signature.trim().toLowerCase());
}

/**
 * The idempotency key of a Flagsmith webhook within an organisation. Flagsmith serialises a
 * delivery once and resends the same bytes; the sorted form also ignores whitespace.
 */
export async function relayKey(w: Pick<RelayedWebhook, "payload">): Promise<string> {
  return `flagsmith:${await sha256Hex(w.payload)}`;
}

const dataOf = (w: Pick<RelayedWebhook, "payload">) => (JSON.parse(w.payload) as { data: Record<string, unknown> }).data;

const stateOf = (data: Record<string, unknown>): FlagState => {
  const d = data as FlagData;
  return (d.new_state ?? d.previous_state)!;
};

/**
 * The change event a Flagsmith webhook becomes; it carries the webhook's bytes as `relayed`.
 * `environmentId` is the environment the inbound URL names (?environment=): NEW_VERSION_PUBLISHED
 * does not say which environment it is for, the other bodies do.
 */
export function relayedChangeEvent(source: string, webhook: FlagsmithWebhook, environmentId: number | null = null): ChangeEvent {
  const relayed: RelayedWebhook = { source, event_type: webhook.event_type, payload: webhook.payload };
  const envRef = (e: z.output<typeof environment>) => ({ id: e.id, name: e.name ?? null, api_key: e.api_key ?? null });
  const projectRef = (p: z.output<typeof project>) => ({ id: p.id, name: p.name ?? null });
  if (webhook.event_type === "NEW_VERSION_PUBLISHED") {
    const version = publishedVersion(webhook.data)!;
    const by = version.publishedBy;
    return {
      type: "CUSTOM",
      log: versionPublishedLog(version.feature.name),
      author: by ? { id: by.id, email: by.email, first_name: "", last_name: "" } : null,
      environment: environmentId === null ? null : { id: environmentId },
      feature: { id: version.feature.id, name: version.feature.name },
      // Flagsmith's own audit entry for a version (api/features/versioning/tasks.py) is EF_VERSION, by uuid.
      related_object: { type: "EF_VERSION", id: null, uuid: version.uuid },
      relayed,
    };
  }
  if (webhook.event_type === "AUDIT_LOG_CREATED") {
    const d = webhook.data as AuditData;
    return {
      type: "CUSTOM",
      occurred_at: normaliseTimestamp(d.created_date)!,
      log: d.log,
      author: d.author
        ? { id: d.author.id ?? null, email: d.author.email ?? null, first_name: d.author.first_name ?? "", last_name: d.author.last_name ?? "" }
        : null,
      project: d.project ? projectRef(d.project) : null,
      environment: d.environment ? envRef(d.environment) : null,
      related_object: { type: d.related_object_type || "CUSTOM", id: d.related_object_id ?? null, uuid: d.related_object_uuid ?? null },
      relayed,
    };
  }
  const state = stateOf(webhook.data);
  return {
    type: flagChangeType(webhook.event_type, state),
    // No timestamp: the change is dated when flaghook received it.
    occurred_at: normaliseTimestamp((webhook.data as FlagData).timestamp) ?? undefined,
    project: state.feature.project ? projectRef(state.feature.project) : null,
    environment: envRef(state.environment),
    feature: { id: state.feature.id, name: state.feature.name, created_date: featureCreatedDate(state) },
    relayed,
  };
}

/** Flagsmith writes every feature's created_date (strftime "%Y-%m-%dT%H:%M:%S.%fZ"); flaghook learns it from relayed bodies. */
function featureCreatedDate(state: FlagState): string | undefined {
  const given = (state.feature as { created_date?: unknown }).created_date;
  return typeof given === "string" ? (normaliseTimestamp(given) ?? undefined) : undefined;
}

function flagChangeType(eventType: WebhookEventType, state: FlagState): EventType {
  const deleted = eventType === "FLAG_DELETED";
  if (state.identity != null || state.identity_identifier != null) return deleted ? "IDENTITY_OVERRIDE_DELETED" : "IDENTITY_OVERRIDE_UPDATED";
  if (state.feature_segment != null) return deleted ? "SEGMENT_OVERRIDE_DELETED" : "SEGMENT_OVERRIDE_UPDATED";
  return deleted ? "FEATURE_DELETED" : "FLAG_STATE_UPDATED";
}

/**
 * The body's own time: the audit log's `created_date`, a flag change's `timestamp`. Null when it has
 * none: a published version (NEW_VERSION_PUBLISHED carries no time) or Flagsmith's empty timestamp.
 */
export function flagsmithTimestamp(webhook: Pick<FlagsmithWebhook, "event_type" | "data">): { field: string; ms: number } | null {
  if (webhook.event_type === "NEW_VERSION_PUBLISHED") return null;
  const field = webhook.event_type === "AUDIT_LOG_CREATED" ? "created_date" : "timestamp";
  const normalised = normaliseTimestamp(String(webhook.data[field] ?? ""));
  return normalised ? { field: `data.${field}`, ms: Date.parse(normalised) } : null;
}

/** How far a body's own time may be from ours (clock skew) before it counts as out of range. */
export const CLOCK_SKEW_MS = 86_400_000;

/**
 * Why a relayed body's own time is out of range, or null. A body older than the time its idempotency
 * record is kept (less the skew) might be a replay of one whose record was pruned: it could be
 * delivered again, so it is refused. `keptMs` null: the record is kept for ever.
 */
export function outsideReplayWindow(bodyMs: number, nowMs: number, keptMs: number | null): string | null {
  if (bodyMs > nowMs + CLOCK_SKEW_MS) return "is more than a day in the future";
  if (keptMs === null) return null;
  const windowMs = keptMs - Math.min(CLOCK_SKEW_MS, keptMs / 4);
  if (bodyMs < nowMs - windowMs) {
    return `is older than ${+(windowMs / 86_400_000).toFixed(2)} days: a body that old could be a replay of one already relayed and forgotten`;
  }
  return null;
}

/** Flagsmith's own `is_system_event` when the relayed audit log gives one; false for a published version, as on Flagsmith's own entry for it. */
export function relayedSystemEvent(event: ChangeEvent): boolean | null {
  if (event.relayed?.event_type === "NEW_VERSION_PUBLISHED") return false;
  const given = event.relayed?.event_type === "AUDIT_LOG_CREATED" ? dataOf(event.relayed).is_system_event : undefined;
  return typeof given === "boolean" ? given : null;
}

/** The version a relayed NEW_VERSION_PUBLISHED publishes (for the audit entry's details). */
export function relayedVersion(event: ChangeEvent) {
  return event.relayed?.event_type === "NEW_VERSION_PUBLISHED" ? publishedVersion(dataOf(event.relayed)) : null;
}
