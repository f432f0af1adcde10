// Flag history, the projection's input: what each recorded change says about flag states
// (flaghook's own events, Flagsmith's relayed FLAG_UPDATED / FLAG_DELETED, a v2
// NEW_VERSION_PUBLISHED). domain/flag-state.ts answers from the stored changes; src/history/
// stores and reads them.
import { changedBy } from "./payload";
import { publishedVersion, type PublishedVersion } from "./versioning";
import type { ChangeEvent } from "./event";

export type Scope = "environment" | "segment" | "identity";
/**
 * What a change did to one flag state. `created`: it began to exist (a feature created with its
 * defaults; Flagsmith's FLAG_UPDATED without a previous state); `unknown`: from then on flaghook
 * cannot tell the state (a published version whose states it cannot attribute).
 */
export type Change = "set" | "created" | "deleted" | "unknown";

/** The subject of a change to every override of its scope at once. */
export const EVERY = "*";

/** A flag state's value as a source reports it. */
export interface FlagValue {
  enabled: boolean;
  feature_state_value: unknown;
  /** Flagsmith's multivariate allocations; absent when the source did not say. */
  multivariate_feature_state_values?: unknown;
}

/**
 * One flag state as a change reports it: the shape every source maps to, so a new source (a
 * published version) is one more function returning these.
 */
export interface ReportedState {
  /** null: every environment flaghook knows of the project (a feature created or deleted project-wide). */
  environmentId: number | null;
  projectId: number | null;
  feature: { id: number; name: string };
  scope: Scope;
  /** For scope segment; omitted with `every`. */
  segment?: { id: number; name: string | null; priority: number | null };
  /** For scope identity; omitted with `every`. */
  identity?: { id: number | null; identifier: string };
  /** The change applies to every override of the scope (only with `deleted` or `unknown`). */
  every?: true;
  change: Change;
  /** The state after the change: set for `set` and `created`, else null. */
  state: FlagValue | null;
  /** The state before, as the source reported it (shown for a flag's first known change). */
  before?: FlagValue | null;
}

const value = (s: { enabled: boolean; feature_state_value?: unknown; multivariate_feature_state_values?: unknown }): FlagValue => {
  const out: FlagValue = { enabled: s.enabled, feature_state_value: s.feature_state_value ?? null };
  if (s.multivariate_feature_state_values !== undefined) out.multivariate_feature_state_values = s.multivariate_feature_state_values;
  return out;
};

/** A feature's end in an environment: its default, and every override with it. */
function featureDeleted(base: Omit<ReportedState, "scope" | "change" | "state">, before: FlagValue | null): ReportedState[] {
  return [
    { ...base, scope: "environment", change: "deleted", state: null, before },
    { ...base, scope: "segment", every: true, change: "deleted", state: null },
    { ...base, scope: "identity", every: true, change: "deleted", state: null },
  ];
}

/** The flag states flaghook's own change event reports (SPEC 3), or [] when it changes none. */
export function reportedStatesOfEvent(event: ChangeEvent): ReportedState[] {
  if (event.relayed) return reportedStatesOfRelayed(event);
  const f = event.feature;
  if (!f) return [];
  const base = {
    environmentId: event.environment?.id ?? null,
    projectId: event.project?.id ?? null,
    feature: { id: f.id, name: f.name },
  };
  const before = event.previous_state ? value(event.previous_state) : null;
  const after = event.new_state ? value(event.new_state) : null;
  switch (event.type) {
    case "FEATURE_CREATED":
      return [
        {
          ...base,
          scope: "environment",
          change: "created",
          state: { enabled: f.default_enabled ?? false, feature_state_value: f.initial_value ?? null },
        },
      ];
    case "FEATURE_DELETED":
      return featureDeleted(base, before);
    case "FLAG_STATE_UPDATED":
    case "REMOTE_CONFIG_UPDATED":
      return [{ ...base, scope: "environment", change: "set", state: after, before }];
    case "SEGMENT_OVERRIDE_UPDATED":
    case "SEGMENT_OVERRIDE_DELETED": {
      const s = event.segment!;
      const deleted = event.type === "SEGMENT_OVERRIDE_DELETED";
      return [
        {
          ...base,
          scope: "segment",
          segment: { id: s.id, name: s.name, priority: event.segment_priority ?? null },
          change: deleted ? "deleted" : "set",
          state: deleted ? null : after,
          before,
        },
      ];
    }
    case "IDENTITY_OVERRIDE_UPDATED":
    case "IDENTITY_OVERRIDE_DELETED": {
      const i = event.identity!;
      const deleted = event.type === "IDENTITY_OVERRIDE_DELETED";
      return [
        {
          ...base,
          scope: "identity",
          identity: { id: i.id ?? null, identifier: i.identifier },
          change: deleted ? "deleted" : "set",
          state: deleted ? null : after,
          before,
        },
      ];
    }
    default:
      return [];
  }
}

/** The author a change is shown with: SPEC 4's changed_by, or null when it names nobody. */
export const authorOf = (event: ChangeEvent): string | null => {
  if (event.relayed) return relayedAuthor(event);
  return changedBy(event) || null;
};

// Flagsmith's bodies, as environments/models.py `Webhook.generate_webhook_feature_state_data` and
// features/versioning/schemas.py write them. Read loosely: flaghook relays them, it does not judge.
interface FlagsmithFeatureState {
  enabled: boolean;
  environment: { id: number; name?: string | null };
  feature: { id: number; name: string; project?: { id: number } | null };
  feature_state_value?: unknown;
  feature_segment?: { segment: { id: number; name?: string | null }; priority?: number | null } | null;
  identity?: number | string | null;
  identity_identifier?: string | null;
  multivariate_feature_state_values?: unknown;
}

interface FlagsmithFlagData {
  changed_by?: string | null;
  new_state?: FlagsmithFeatureState | null;
  previous_state?: FlagsmithFeatureState | null;
}

const dataOf = (event: ChangeEvent): unknown => (JSON.parse(event.relayed!.payload) as { data: unknown }).data;

function relayedAuthor(event: ChangeEvent): string | null {
  const data = dataOf(event);
  if (event.relayed!.event_type === "AUDIT_LOG_CREATED") return null;
  if (event.relayed!.event_type === "NEW_VERSION_PUBLISHED") return publishedVersion(data)?.publishedBy?.email || null;
  return (data as FlagsmithFlagData).changed_by || null;
}

function reportedStatesOfRelayed(event: ChangeEvent): ReportedState[] {
  const type = event.relayed!.event_type;
  if (type === "FLAG_UPDATED" || type === "FLAG_DELETED") return flagsmithFlagStates(type, dataOf(event) as FlagsmithFlagData);
  const version = type === "NEW_VERSION_PUBLISHED" ? publishedVersion(dataOf(event)) : null;
  if (version && event.environment) {
    return publishedVersionStates(version, { environmentId: event.environment.id, projectId: event.project?.id ?? null });
  }
  return [];
}

/**
 * Flagsmith's FLAG_UPDATED / FLAG_DELETED (features/tasks.py `trigger_feature_state_change_webhooks`).
 * The state is an identity override when it names an identity, a segment override when it has a
 * feature_segment, else the environment default. A FLAG_UPDATED without previous_state is a new
 * state (Flagsmith sends it when the feature state is created); deleting the environment default
 * means the feature was deleted.
 */
export function flagsmithFlagStates(eventType: "FLAG_UPDATED" | "FLAG_DELETED", data: FlagsmithFlagData): ReportedState[] {
  const deleted = eventType === "FLAG_DELETED";
  const fs = (deleted ? data.previous_state : data.new_state)!;
  const before = data.previous_state ? value(data.previous_state) : null;
  const base = {
    environmentId: fs.environment.id,
    projectId: fs.feature.project?.id ?? null,
    feature: { id: fs.feature.id, name: fs.feature.name },
  };
  const change: Change = deleted ? "deleted" : data.previous_state ? "set" : "created";
  const state = deleted ? null : value(fs);
  if (fs.identity != null || fs.identity_identifier != null) {
    const id = typeof fs.identity === "number" ? fs.identity : null;
    const identifier = fs.identity_identifier ?? `#${fs.identity}`;
    return [{ ...base, scope: "identity", identity: { id, identifier }, change, state, before }];
  }
  if (fs.feature_segment) {
    const s = fs.feature_segment;
    const segment = { id: s.segment.id, name: s.segment.name ?? null, priority: s.priority ?? null };
    return [{ ...base, scope: "segment", segment, change, state, before }];
  }
  if (deleted) return featureDeleted(base, before);
  return [{ ...base, scope: "environment", change, state, before }];
}

/**
 * A published v2 version replaces the environment default and every segment override of the
 * feature (features/versioning: a version holds them all; identity overrides are not versioned).
 * Its states do not say which is the default and which a segment's, so: one state is the default
 * and no segment override remains; several states leave the default and the segment overrides
 * unknown from then on (never guessed from their order).
 */
export function publishedVersionStates(
  version: PublishedVersion,
  where: { environmentId: number; projectId: number | null },
): ReportedState[] {
  const base = { ...where, feature: version.feature };
  const states = version.featureStates;
  if (states.length === 1) {
    const s = states[0];
    return [
      { ...base, scope: "environment", change: "set", state: value({ ...s, feature_state_value: s.value }) },
      { ...base, scope: "segment", every: true, change: "deleted", state: null },
    ];
  }
  return [
    { ...base, scope: "environment", change: "unknown", state: null },
    { ...base, scope: "segment", every: true, change: "unknown", state: null },
  ];
}

/** The subject of a reported state within its scope (flag_changes.subject). */
export function subjectOf(r: Pick<ReportedState, "scope" | "segment" | "identity" | "every">): string {
  if (r.every) return EVERY;
  if (r.scope === "segment") return String(r.segment!.id);
  if (r.scope === "identity") return r.identity!.identifier;
  return "";
}
