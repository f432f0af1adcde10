// Flagsmith's outgoing bodies, byte for byte: keys sorted at every level like json.dumps(sort_keys=True).
import type { ChangeEvent } from "./event";

/**
 * Serialises like Python's `json.dumps(value, sort_keys=True)`, which Flagsmith signs and sends:
 * keys sorted at every level, ", " and ": " separators, non-ASCII escaped as \uXXXX.
 * These are the exact bytes every attempt of a delivery sends.
 */
export function sortedJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (isRawJson(value)) return value.rawJSON;
  if (typeof value === "string") return asciiString(value);
  if (typeof value === "number") return Number.isFinite(value) ? JSON.stringify(value) : "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(", ")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${asciiString(k)}: ${sortedJson(record[k])}`).join(", ")}}`;
}

/** A number kept as its source digits (JSON.rawJSON), e.g. a relayed Flagsmith body's 50.0. */
const isRawJson = (value: unknown): value is { rawJSON: string } =>
  (JSON as unknown as { isRawJSON?(v: unknown): boolean }).isRawJSON?.(value) === true;

/** ensure_ascii: Python escapes DEL and everything past ASCII. */
function asciiString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export type WebhookEventType = "AUDIT_LOG_CREATED" | "FLAG_UPDATED" | "FLAG_DELETED" | AuditLogEventType;

/** flaghook's own events about an organisation's signed audit log (src/audit/). */
export type AuditLogEventType = "AUDIT_CHECKPOINT" | "AUDIT_VERIFICATION_FAILED";

export const auditLogPayload = (data: unknown) => sortedJson({ data, event_type: "AUDIT_LOG_CREATED" });

/** "first_name last_name", else email, else the API key's name, else "" (SPEC 4). */
export function changedBy(event: ChangeEvent): string {
  const a = event.author;
  const full = [a?.first_name, a?.last_name].filter((s) => s).join(" ");
  return full || a?.email || event.api_key_name || "";
}

interface EnvironmentRef {
  id: number;
  name: string | null;
}

function featureData(event: ChangeEvent, projectName: string | null) {
  const f = event.feature!;
  return {
    created_date: f.created_date ?? null,
    default_enabled: f.default_enabled ?? false,
    description: f.description ?? null,
    id: f.id,
    initial_value: f.initial_value ?? null,
    name: f.name,
    project: { id: event.project!.id, name: event.project?.name ?? projectName ?? "" },
    type: f.type ?? "STANDARD",
  };
}

function stateData(
  event: ChangeEvent,
  environment: EnvironmentRef,
  state: { enabled: boolean; feature_state_value?: unknown },
  projectName: string | null,
) {
  const segment = event.segment;
  const isSegment = event.type.startsWith("SEGMENT_OVERRIDE");
  const isIdentity = event.type.startsWith("IDENTITY_OVERRIDE");
  return {
    enabled: state.enabled,
    environment: { id: environment.id, name: environment.name ?? "" },
    feature: featureData(event, projectName),
    feature_segment:
      isSegment && segment
        ? {
            segment: { id: segment.id, name: segment.name, description: segment.description ?? null },
            priority: event.segment_priority ?? null,
          }
        : null,
    feature_state_value: state.feature_state_value ?? null,
    identity: isIdentity ? (event.identity?.id ?? null) : null,
    identity_identifier: isIdentity ? (event.identity?.identifier ?? null) : null,
  };
}

export interface FlagChange {
  eventType: "FLAG_UPDATED" | "FLAG_DELETED";
  environment: EnvironmentRef;
  payload: string;
}

/** The environment webhook event a change produces, or null (SPEC 3 table, last column). */
export function flagEventType(event: ChangeEvent): "FLAG_UPDATED" | "FLAG_DELETED" | null {
  switch (event.type) {
    case "FEATURE_CREATED":
    case "FLAG_STATE_UPDATED":
    case "REMOTE_CONFIG_UPDATED":
    case "IDENTITY_OVERRIDE_UPDATED":
    case "SEGMENT_OVERRIDE_UPDATED":
      return "FLAG_UPDATED";
    case "FEATURE_DELETED":
    case "IDENTITY_OVERRIDE_DELETED":
    case "SEGMENT_OVERRIDE_DELETED":
      return "FLAG_DELETED";
    default:
      return null;
  }
}

/**
 * The FLAG_UPDATED / FLAG_DELETED body for one environment. FEATURE_CREATED and FEATURE_DELETED
 * describe the feature's default state, since the event carries no per-environment state.
 */
export function flagPayload(
  event: ChangeEvent,
  environment: EnvironmentRef,
  timestamp: string,
  projectName: string | null = null,
): string {
  const eventType = flagEventType(event)!;
  const defaults = { enabled: event.feature?.default_enabled ?? false, feature_state_value: event.feature?.initial_value ?? null };
  const isFeatureLevel = event.type === "FEATURE_CREATED" || event.type === "FEATURE_DELETED";
  const next = eventType === "FLAG_DELETED" ? null : isFeatureLevel ? defaults : event.new_state!;
  const previous = event.previous_state ?? (event.type === "FEATURE_DELETED" ? defaults : null);
  const data: Record<string, unknown> = {
    changed_by: changedBy(event),
    new_state: next ? stateData(event, environment, next, projectName) : null,
    timestamp,
  };
  if (previous) data.previous_state = stateData(event, environment, previous, projectName);
  return sortedJson({ data, event_type: eventType });
}
