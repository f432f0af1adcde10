// Audit entries: Flagsmith's log strings, related objects, and the AUDIT_LOG_CREATED `data` shape.
import { isoMicro } from "./clock";
import type { ChangeEvent } from "./event";
import { relayedSystemEvent, relayedVersion } from "./flagsmith";
import { drfDateTime } from "./payload";
import type { Submitter } from "./provenance";

/** Flagsmith's exact audit log message for each event type (SPEC 3). */
export function auditLog(event: ChangeEvent): string {
  const feature = event.feature?.name ?? "";
  const identity = event.identity?.identifier ?? "";
  const segment = event.segment?.name ?? "";
  const environment = event.environment?.name ?? String(event.environment?.id ?? "");
  switch (event.type) {
    case "FEATURE_CREATED":
      return `New Flag / Remote Config created: ${feature}`;
    case "FEATURE_UPDATED":
      return `Flag / Remote Config updated: ${feature}`;
    case "FEATURE_DELETED":
      return `Flag / Remote Config Deleted: ${feature}`;
    case "FLAG_STATE_UPDATED":
      return `Flag state updated for feature: ${feature}`;
    case "REMOTE_CONFIG_UPDATED":
      return `Remote config value updated for feature: ${feature}`;
    case "IDENTITY_OVERRIDE_UPDATED":
      return `Flag state / Remote config value updated for feature '${feature}' and identity '${identity}'`;
    case "IDENTITY_OVERRIDE_DELETED":
      return `Flag state / Remote config value deleted for feature '${feature}' and identity '${identity}'`;
    case "SEGMENT_OVERRIDE_UPDATED":
      return `Flag state / Remote config value updated for feature '${feature}' and segment '${segment}'`;
    case "SEGMENT_OVERRIDE_DELETED":
      return `Flag state / Remote config value deleted for feature '${feature}' and segment '${segment}'`;
    case "SEGMENT_CREATED":
      return `New Segment created: ${segment}`;
    case "SEGMENT_UPDATED":
      return `Segment updated: ${segment}`;
    case "SEGMENT_DELETED":
      return `Segment deleted: ${segment}`;
    case "ENVIRONMENT_CREATED":
      return `New Environment created: ${environment}`;
    case "ENVIRONMENT_UPDATED":
      return `Environment updated: ${environment}`;
    case "CUSTOM":
      return event.log ?? "";
  }
}

export interface RelatedObject {
  type: string;
  id: number | null;
  uuid: string | null;
}

export function relatedObject(event: ChangeEvent): RelatedObject {
  const given = event.related_object;
  const pick = (type: string, fallbackId: number | null | undefined): RelatedObject => ({
    type,
    id: given?.id ?? fallbackId ?? null,
    uuid: given?.uuid ?? null,
  });
  switch (event.type) {
    case "FEATURE_CREATED":
    case "FEATURE_UPDATED":
    case "FEATURE_DELETED":
      return pick("FEATURE", event.feature?.id);
    case "SEGMENT_CREATED":
    case "SEGMENT_UPDATED":
    case "SEGMENT_DELETED":
      return pick("SEGMENT", event.segment?.id);
    case "ENVIRONMENT_CREATED":
    case "ENVIRONMENT_UPDATED":
      return pick("ENVIRONMENT", event.environment?.id);
    case "CUSTOM":
      return pick(given?.type ?? "CUSTOM", null);
    default:
      // Flag states: Flagsmith points at the feature state; the event may name it, else the feature.
      return pick("FEATURE_STATE", event.feature?.id);
  }
}

/**
 * System events are flaghook's own entries (`system`, set only by src/ingest/system-events.ts); a
 * relayed Flagsmith audit log keeps Flagsmith's own flag. `system` is undefined only for messages
 * queued before flaghook recorded provenance, which followed the rule of then (no author, no key name).
 */
export const isSystemEvent = (event: ChangeEvent, system: boolean | undefined) =>
  relayedSystemEvent(event) ?? system ?? (event.author == null && !event.api_key_name);

/** The author as Flagsmith serialises it: all four keys (and any others the event gave, e.g. uuid, last_login), or null. */
export function authorData(event: ChangeEvent) {
  const a = event.author;
  if (!a) return null;
  const { id, email, first_name, last_name, ...extra } = a;
  return { ...extra, id: id ?? null, email: email ?? null, first_name: first_name ?? "", last_name: last_name ?? "" };
}

/**
 * Fields of the event's project and environment that flaghook does not know itself (Flagsmith's
 * uuid, description, ...): passed on in AUDIT_LOG_CREATED untouched. Null when there are none.
 */
export function scopeExtras(event: ChangeEvent): string | null {
  const extras: Record<string, Record<string, unknown>> = {};
  if (event.project) {
    const { id: _id, name: _name, ...rest } = event.project;
    if (Object.keys(rest).length) extras.project = rest;
  }
  if (event.environment) {
    const { id: _id, name: _name, api_key: _key, ...rest } = event.environment;
    if (Object.keys(rest).length) extras.environment = rest;
  }
  return Object.keys(extras).length ? JSON.stringify(extras) : null;
}

/** The stored columns an audit entry needs, besides its id and bookkeeping. */
export function auditFields(orgId: number, event: ChangeEvent, createdDate: string, system: boolean | undefined) {
  const related = relatedObject(event);
  const authorJson = authorData(event);
  const log = auditLog(event);
  return {
    orgId,
    type: event.type,
    createdDate,
    log,
    searchText: log.toLowerCase(),
    authorId: authorJson?.id ?? null,
    authorEmail: authorJson?.email?.toLowerCase() ?? null,
    author: authorJson ? JSON.stringify(authorJson) : null,
    apiKeyName: event.api_key_name ?? null,
    projectId: event.project?.id ?? null,
    projectName: event.project?.name ?? null,
    environmentId: event.environment?.id ?? null,
    environmentName: event.environment?.name ?? null,
    environmentApiKey: event.environment?.api_key ?? null,
    scopeExtras: scopeExtras(event),
    relatedObjectId: related.id,
    relatedObjectType: related.type,
    relatedObjectUuid: related.uuid,
    isSystemEvent: isSystemEvent(event, system),
  };
}

export interface StoredAuditEntry {
  /** The entry's number within its organisation: its id in the API and in AUDIT_LOG_CREATED. */
  seq: number;
  orgId: number;
  createdDate: string;
  log: string;
  author: string | null;
  projectId: number | null;
  projectName: string | null;
  environmentId: number | null;
  environmentName: string | null;
  environmentApiKey?: string | null;
  /** JSON of scopeExtras(), or null. */
  scopeExtras?: string | null;
  relatedObjectId: number | null;
  relatedObjectType: string;
  relatedObjectUuid: string | null;
  isSystemEvent: boolean;
}

/**
 * The `data` of an AUDIT_LOG_CREATED webhook and of every audit API result (SPEC 4): the fields of
 * Flagsmith's AuditLogListSerializer (api/audit/serializers.py) that flaghook knows. Fields the event
 * gave beyond those are passed on untouched; flaghook's own win where both exist.
 */
export function auditData(entry: StoredAuditEntry) {
  const extras = entry.scopeExtras ? (JSON.parse(entry.scopeExtras) as Record<string, Record<string, unknown>>) : {};
  const environment =
    entry.environmentId == null
      ? null
      : {
          ...extras.environment,
          id: entry.environmentId,
          name: entry.environmentName ?? "",
          // EnvironmentSerializerLight: api_key, and the environment's project as its id.
          ...(entry.environmentApiKey != null ? { api_key: entry.environmentApiKey } : {}),
          ...(entry.projectId != null ? { project: entry.projectId } : {}),
        };
  return {
    id: entry.seq,
    created_date: drfDateTime(entry.createdDate),
    log: entry.log,
    author: entry.author ? JSON.parse(entry.author) : null,
    environment,
    project:
      entry.projectId == null ? null : { ...extras.project, id: entry.projectId, name: entry.projectName ?? "", organisation: entry.orgId },
    related_object_id: entry.relatedObjectId,
    related_object_type: entry.relatedObjectType,
    related_object_uuid: entry.relatedObjectUuid,
    is_system_event: entry.isSystemEvent,
  };
}

/** Where an entry sorts newest first: the time its source claims, but never later than its receipt. */
export function sortTime(createdDate: string, receivedAt: number): string {
  const received = isoMicro(receivedAt);
  return createdDate < received ? createdDate : received;
}

export interface TimeLimits {
  /** How far ahead of receipt a claimed time may be before it is marked. */
  maxFutureMs: number;
  /** How far behind receipt a claimed time may be before it is marked. */
  maxPastMs: number;
}

export type TimeWarning = "ahead_of_receipt" | "behind_receipt";

/** A claimed time far from receipt is kept, and marked. */
export function timeWarning(createdDate: string, receivedAt: number, limits: TimeLimits): TimeWarning | null {
  const claimed = Date.parse(`${createdDate.slice(0, 23)}Z`);
  if (claimed - receivedAt > limits.maxFutureMs) return "ahead_of_receipt";
  if (receivedAt - claimed > limits.maxPastMs) return "behind_receipt";
  return null;
}

/** The submitter as the API shows it, from its stored columns. */
export function submitterOf(row: { submitterType: string | null; submitterId: string | null; submitterName: string | null }): Submitter | null {
  if (!row.submitterType) return null;
  return { type: row.submitterType as Submitter["type"], id: row.submitterId, name: row.submitterName };
}

export type ChangeType = "CREATE" | "UPDATE" | "DELETE";

export function changeType(event: ChangeEvent): ChangeType {
  if (event.type.endsWith("_CREATED")) return "CREATE";
  if (event.type.endsWith("_DELETED")) return "DELETE";
  return "UPDATE";
}

/**
 * `[{field, old, new}]` for every flag-state field that differs (SPEC 6 audit detail); for a version
 * Flagsmith published, the version's feature states.
 */
export function changeDetails(event: ChangeEvent): { field: string; old: unknown; new: unknown }[] {
  const version = relayedVersion(event);
  if (version) return [{ field: "feature_states", old: null, new: version.featureStates }];
  const before = event.previous_state ?? null;
  const after = event.new_state ?? null;
  if (!before && !after) return [];
  const fields = ["enabled", "feature_state_value", "multivariate_feature_state_values"] as const;
  return fields
    .map((field) => ({ field, old: before ? (before[field] ?? null) : null, new: after ? (after[field] ?? null) : null }))
    .filter((d) => JSON.stringify(d.old) !== JSON.stringify(d.new));
}
