// Flag history, the reading part: from stored changes to "what was each flag at T", "what changed
// between two moments" and one flag's timeline. Pure; src/history/query.ts finds the changes.
import { EVERY, type Change, type Scope } from "./history";

/** A stored change (a row of flag_changes) as the answers read it. */
export interface StoredChange {
  id: number;
  featureId: number;
  scope: Scope;
  subject: string;
  changedAt: string;
  change: Change;
  enabled: boolean | null;
  value: string | null;
  multivariate: string | null;
  priority: number | null;
  featureName: string;
  subjectId: number | null;
  subjectName: string | null;
  auditEntryId: number | null;
  eventId: string;
  author: string | null;
  /** The previous state as the source reported it (JSON); read for a timeline only. */
  reportedBefore?: string | null;
}

/** A flag state of an environment (a row of flag_subjects) and the change in force for it at some moment. */
export interface SubjectInForce {
  featureId: number;
  scope: Scope;
  subject: string;
  /** The feature's name as of the state's latest change. */
  featureName: string;
  firstChangedAt: string;
  firstChange: Change;
  /** null: no change of it had taken effect yet. */
  change: StoredChange | null;
}

/** A flag state in an answer. `known: false` when flaghook cannot tell it (every value null then). */
export interface StateOut {
  /** Segment overrides only: the override's priority (0 first). */
  priority?: number | null;
  enabled: boolean | null;
  feature_state_value: unknown;
  multivariate_feature_state_values: unknown;
  changed_at: string | null;
  audit_entry_id: number | null;
  event_id: string | null;
  known: boolean;
}

export const UNKNOWN: StateOut = {
  enabled: null,
  feature_state_value: null,
  multivariate_feature_state_values: null,
  changed_at: null,
  audit_entry_id: null,
  event_id: null,
  known: false,
};

const parse = (json: string | null | undefined): unknown => (json == null ? null : JSON.parse(json));

/**
 * Whether `a` took effect after `b`: by time, then by recording order. The change in force for a
 * state is its own latest, unless a change to every override of its scope is later (the rule
 * src/history/query.ts applies in SQL).
 */
export const later = (a: Pick<StoredChange, "changedAt" | "id">, b: Pick<StoredChange, "changedAt" | "id">) =>
  a.changedAt > b.changedAt || (a.changedAt === b.changedAt && a.id > b.id);

/**
 * The state a change leaves: null when the state does not exist (deleted), UNKNOWN when flaghook
 * cannot tell, else its values. `none` is what no change at all means.
 */
export function stateAfter(change: StoredChange | null, none: StateOut | null): StateOut | null {
  if (!change) return none;
  if (change.change === "deleted") return null;
  if (change.change === "unknown") return UNKNOWN;
  return {
    ...(change.scope === "segment" ? { priority: change.priority } : {}),
    enabled: change.enabled,
    feature_state_value: parse(change.value),
    multivariate_feature_state_values: parse(change.multivariate),
    changed_at: change.changedAt,
    audit_entry_id: change.auditEntryId,
    event_id: change.eventId,
    known: true,
  };
}

/**
 * Before its first recorded change a state did not exist if that change created it; otherwise
 * flaghook never saw it, and it is unknown.
 */
export const beforeFirst = (s: Pick<SubjectInForce, "firstChange">): StateOut | null => (s.firstChange === "created" ? null : UNKNOWN);

export const stateOf = (s: SubjectInForce): StateOut | null => stateAfter(s.change, beforeFirst(s));

/** Whether an observer of the flag could tell the two states apart. */
export function sameState(a: StateOut | null, b: StateOut | null): boolean {
  if (a === null || b === null) return a === b;
  if (!a.known || !b.known) return a.known === b.known;
  return (
    a.enabled === b.enabled &&
    (a.priority ?? null) === (b.priority ?? null) &&
    JSON.stringify(a.feature_state_value) === JSON.stringify(b.feature_state_value) &&
    JSON.stringify(a.multivariate_feature_state_values) === JSON.stringify(b.multivariate_feature_state_values)
  );
}

// --- what an override is, in answers

export type SegmentRef = { id: number; name: string | null };
export type IdentityRef = { id: number | null; identifier: string };

/** The segment or identity a state belongs to; null for a change to every override of the scope. */
function subjectRef(scope: Scope, subject: string, change: StoredChange | null): SegmentRef | IdentityRef | null {
  if (subject === EVERY) return null;
  if (scope === "segment") return { id: Number(subject), name: change?.subjectName ?? null };
  return { id: change?.subjectId ?? null, identifier: subject };
}


// --- GET /environments/{env}/state

/**
 * How the state answer lists the state a change leaves: an override with its segment or identity,
 * or the default's values; null when the change leaves no state it can list (deleted, unknown).
 * Stored with each change (flag_changes.state_json), so an environment's state is assembled from
 * these without rendering each of its thousands of overrides again.
 */
export function listedState(change: StoredChange): object | null {
  const state = change.change === "set" || change.change === "created" ? stateAfter(change, null) : null;
  if (!state) return null;
  return listedAs(change.scope, change.subject, change, state);
}

/** An override of the state answer whose state flaghook cannot tell (null segment/identity: any others). */
export const unknownOverride = (scope: "segment" | "identity", subject: string, subjectId: number | null, subjectName: string | null) =>
  listedAs(scope, subject, { subjectId, subjectName }, { ...UNKNOWN, ...(scope === "segment" ? { priority: null } : {}) });

function listedAs(scope: Scope, subject: string, names: Pick<StoredChange, "subjectId" | "subjectName">, state: StateOut): object {
  if (scope === "environment") return state;
  const ref = subject === EVERY ? null : scope === "segment" ? { id: Number(subject), name: names.subjectName } : { id: names.subjectId, identifier: subject };
  return scope === "segment" ? { segment: ref, ...state } : { identity: ref, ...state };
}

/** One feature of an environment at a moment, as the parts src/history/query.ts assembles it. */
export interface FeatureAt {
  featureId: number;
  name: string;
  knownSince: string;
  /** The default's listed values (JSON), or how it stands: no state yet, deleted, unknown. */
  defaults: string | "absent" | "unknown";
  /** Listed segment overrides (JSON objects joined by commas), by priority. */
  segments: string;
  /** Listed identity overrides (JSON objects joined by commas), by identifier. */
  identities: string;
  /** Overrides whose state flaghook cannot tell: each one's own, and `*` for all of a scope. */
  unknown: { scope: "segment" | "identity"; subject: string; subjectId: number | null; subjectName: string | null }[];
}

/**
 * A feature entry of the state answer as JSON text, or null when the feature did not exist then.
 * Text, not objects: an environment may have 50,000 overrides, already stored as listed JSON.
 */
export function featureJson(f: FeatureAt): string | null {
  if (f.defaults === "absent") return null;
  const defaults = f.defaults === "unknown" ? JSON.stringify(UNKNOWN) : f.defaults;
  const more = (listed: string, scope: "segment" | "identity") => {
    const extra = f.unknown.filter((u) => u.scope === scope).map((u) => JSON.stringify(unknownOverride(u.scope, u.subject, u.subjectId, u.subjectName)));
    return [listed, ...extra].filter(Boolean).join(",");
  };
  return (
    `{"feature":${JSON.stringify({ id: f.featureId, name: f.name })},${defaults.slice(1, -1)},"known_since":${JSON.stringify(f.knownSince)},` +
    `"segment_overrides":[${more(f.segments, "segment")}],"identity_overrides":[${more(f.identities, "identity")}]}`
  );
}

// --- GET /environments/{env}/changes

export interface NetChange {
  feature: { id: number; name: string };
  scope: Scope;
  segment?: SegmentRef | null;
  identity?: IdentityRef | null;
  before: StateOut | null;
  after: StateOut | null;
  changes_between: number;
  authors: string[];
  audit_entry_ids: number[];
  event_ids: string[];
}

const key = (s: Pick<StoredChange, "featureId" | "scope" | "subject">) => `${s.featureId}|${s.scope}|${s.subject}`;

/**
 * The net change of every flag state between two moments: its state at `from` and at `to` (from
 * `before` and `after`, the subjects in force then), and the changes in between that applied to it
 * (`window`, oldest first): its own, and those to every override of its scope while it existed. A
 * state changed and changed back is listed with equal before and after.
 */
export function netChanges(
  to: string,
  before: readonly SubjectInForce[],
  after: readonly SubjectInForce[],
  window: readonly StoredChange[],
): NetChange[] {
  const at = new Map<string, { before?: SubjectInForce; after?: SubjectInForce }>();
  for (const s of before) at.set(key(s), { before: s });
  for (const s of after) at.set(key(s), { ...at.get(key(s)), after: s });
  const own = new Map<string, StoredChange[]>();
  for (const c of window) {
    const list = own.get(key(c));
    if (list) list.push(c);
    else own.set(key(c), [c]);
  }
  const out: NetChange[] = [];
  for (const [k, { before: b, after: a }] of at) {
    const s = (a ?? b)!;
    // A change to every override of a scope is shown through the states it reached; a state first
    // recorded after `to` was not known in the window at all.
    if (s.subject === EVERY || s.firstChangedAt > to) continue;
    const first = { firstChange: s.firstChange };
    const was = b ? stateOf(b) : beforeFirst(first);
    const is = a ? stateOf(a) : beforeFirst(first);
    // Replay the window to see which changes applied: a change to every override skips a state that did not exist.
    const every = s.scope === "environment" ? [] : (own.get(key({ ...s, subject: EVERY })) ?? []);
    const mine = [...(own.get(k) ?? []), ...every].sort((x, y) => (later(x, y) ? 1 : -1));
    let current = was;
    const applied: StoredChange[] = [];
    for (const c of mine) {
      if (c.subject === EVERY && current === null) continue;
      applied.push(c);
      current = stateAfter(c, null);
    }
    if (!applied.length && sameState(was, is)) continue;
    const change = (a ?? b)!.change ?? applied.at(-1) ?? null;
    const entry: NetChange = {
      feature: { id: s.featureId, name: change?.featureName ?? s.featureName },
      scope: s.scope,
      before: was,
      after: is,
      changes_between: applied.length,
      authors: [...new Set(applied.map((c) => c.author).filter((x): x is string => !!x))],
      audit_entry_ids: [...new Set(applied.map((c) => c.auditEntryId).filter((x): x is number => x !== null))],
      event_ids: [...new Set(applied.map((c) => c.eventId))],
    };
    // Named as of its latest own change (a change to every override names none).
    const named = [...[...applied].reverse(), a?.change, b?.change].find((c) => c && c.subject !== EVERY) ?? null;
    if (s.scope === "segment") entry.segment = subjectRef("segment", s.subject, named) as SegmentRef;
    if (s.scope === "identity") entry.identity = subjectRef("identity", s.subject, named) as IdentityRef;
    out.push(entry);
  }
  const order = { environment: 0, segment: 1, identity: 2 };
  return out.sort(
    (x, y) =>
      x.feature.name.localeCompare(y.feature.name) ||
      x.feature.id - y.feature.id ||
      order[x.scope] - order[y.scope] ||
      (x.segment?.id ?? 0) - (y.segment?.id ?? 0) ||
      (x.identity?.identifier ?? "").localeCompare(y.identity?.identifier ?? ""),
  );
}

// --- GET /environments/{env}/features/{id}/timeline

export interface TimelineEntry {
  changed_at: string;
  change: Change;
  scope: Scope;
  segment?: SegmentRef | null;
  identity?: IdentityRef | null;
  before: StateOut | null;
  after: StateOut | null;
  author: string | null;
  audit_entry_id: number | null;
  event_id: string;
}

/**
 * One change of a flag with the state it replaced: the one in force just before it, else (its
 * state's first change) what the source reported, else nothing (created) or unknown.
 */
export function timelineEntry(change: StoredChange, previous: StoredChange | null): TimelineEntry {
  let before: StateOut | null;
  if (change.subject === EVERY) before = null;
  else if (previous) before = stateAfter(previous, null);
  else if (change.change === "created") before = null;
  else if (change.reportedBefore) before = { ...UNKNOWN, ...reported(change) };
  else before = UNKNOWN;
  const entry: TimelineEntry = {
    changed_at: change.changedAt,
    change: change.change,
    scope: change.scope,
    before,
    after: stateAfter(change, null),
    author: change.author,
    audit_entry_id: change.auditEntryId,
    event_id: change.eventId,
  };
  if (change.scope === "segment") entry.segment = subjectRef("segment", change.subject, change) as SegmentRef | null;
  if (change.scope === "identity") entry.identity = subjectRef("identity", change.subject, change) as IdentityRef | null;
  return entry;
}

/** A state the source reported as the previous one: known, but not when it was set or by which entry. */
function reported(change: StoredChange): Partial<StateOut> {
  const r = parse(change.reportedBefore) as { enabled: boolean; feature_state_value?: unknown; multivariate_feature_state_values?: unknown };
  const out: Partial<StateOut> = {
    known: true,
    enabled: r.enabled,
    feature_state_value: r.feature_state_value ?? null,
    multivariate_feature_state_values: r.multivariate_feature_state_values ?? null,
  };
  if (change.scope === "segment") out.priority = null;
  return out;
}
