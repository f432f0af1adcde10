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
  known: boolean;
  enabled: boolean | null;
  feature_state_value: unknown;
  multivariate_feature_state_values: unknown;
  /** Segment overrides only: the override's priority (0 first). */
  priority?: number | null;
  changed_at: string | null;
  audit_entry_id: number | null;
  event_id: string | null;
}

export const UNKNOWN: StateOut = {
  known: false,
  enabled: null,
  feature_state_value: null,
  multivariate_feature_state_values: null,
  changed_at: null,
  audit_entry_id: null,
  event_id: null,
};

const parse = (json: string | null | undefined): unknown => (json == null ? null : JSON.parse(json));

/** Whether `a` took effect after `b`: by time, then by recording order. */
export const later = (a: Pick<StoredChange, "changedAt" | "id">, b: Pick<StoredChange, "changedAt" | "id">) =>
  a.changedAt > b.changedAt || (a.changedAt === b.changedAt && a.id > b.id);

/** The change in force for one flag state: its own latest, unless a change to every override of its scope is later. */
export function inForce(own: StoredChange | null, every: StoredChange | null): StoredChange | null {
  return every && (!own || later(every, own)) ? every : own;
}

/**
 * The state a change leaves: null when the state does not exist (deleted), UNKNOWN when flaghook
 * cannot tell, else its values. `none` is what no change at all means.
 */
export function stateAfter(change: StoredChange | null, none: StateOut | null): StateOut | null {
  if (!change) return none;
  if (change.change === "deleted") return null;
  if (change.change === "unknown") return UNKNOWN;
  const out: StateOut = {
    known: true,
    enabled: change.enabled,
    feature_state_value: parse(change.value),
    multivariate_feature_state_values: parse(change.multivariate),
    changed_at: change.changedAt,
    audit_entry_id: change.auditEntryId,
    event_id: change.eventId,
  };
  if (change.scope === "segment") out.priority = change.priority;
  return out;
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

type Values = Omit<StateOut, "known" | "priority">;

// --- GET /environments/{env}/state

export interface FeatureStateOut extends Values {
  feature: { id: number; name: string };
  known: boolean;
  known_since: string;
  segment_overrides: (Values & { segment: SegmentRef | null; priority: number | null; known: boolean })[];
  identity_overrides: (Values & { identity: IdentityRef | null; known: boolean })[];
}

const byPriority = (a: { priority: number | null; segment: SegmentRef | null }, b: typeof a) =>
  (a.priority ?? Infinity) - (b.priority ?? Infinity) || (a.segment?.id ?? Infinity) - (b.segment?.id ?? Infinity);

/**
 * Every feature of an environment at a moment, by name: its default, segment overrides (by
 * priority) and identity overrides (by identifier). A feature deleted then, or created later, is
 * absent; one flaghook had not seen yet is `known: false`. An override is listed from its first
 * recorded change; `{"segment": null, "known": false}` stands for overrides flaghook cannot tell.
 */
export function featuresAt(subjects: readonly SubjectInForce[]): FeatureStateOut[] {
  const byFeature = new Map<number, SubjectInForce[]>();
  for (const s of subjects) {
    const group = byFeature.get(s.featureId);
    if (group) group.push(s);
    else byFeature.set(s.featureId, [s]);
  }
  const features: FeatureStateOut[] = [];
  for (const [featureId, group] of byFeature) {
    const env = group.find((s) => s.scope === "environment");
    const state = env ? stateOf(env) : UNKNOWN;
    if (state === null) continue;
    const { priority: _p, ...defaults } = state;
    const out: FeatureStateOut = {
      feature: { id: featureId, name: env?.change?.featureName ?? newest(group).featureName },
      ...defaults,
      known_since: group.reduce((min, s) => (s.firstChangedAt < min ? s.firstChangedAt : min), group[0].firstChangedAt),
      segment_overrides: [],
      identity_overrides: [],
    };
    for (const s of group) {
      if (s.scope === "environment") continue;
      // An override is listed once seen; before that flaghook cannot even name it.
      const st = s.subject === EVERY ? (s.change?.change === "unknown" ? UNKNOWN : null) : stateAfter(s.change, null);
      if (!st) continue;
      const { priority = null, ...rest } = st;
      if (s.scope === "segment") out.segment_overrides.push({ segment: subjectRef("segment", s.subject, s.change) as SegmentRef | null, priority, ...rest });
      else out.identity_overrides.push({ identity: subjectRef("identity", s.subject, s.change) as IdentityRef | null, ...rest });
    }
    out.segment_overrides.sort(byPriority);
    out.identity_overrides.sort((a, b) => (a.identity?.identifier ?? "\uffff").localeCompare(b.identity?.identifier ?? "\uffff"));
    features.push(out);
  }
  return features.sort((a, b) => a.feature.name.localeCompare(b.feature.name) || a.feature.id - b.feature.id);
}

const newest = (group: readonly SubjectInForce[]) => group.reduce((a, b) => (b.featureName && b.firstChangedAt > a.firstChangedAt ? b : a));

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
export function netChanges(before: readonly SubjectInForce[], after: readonly SubjectInForce[], window: readonly StoredChange[]): NetChange[] {
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
    if (s.subject === EVERY) continue;
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
    const named = [...applied].reverse().find((c) => c.subject !== EVERY) ?? (a ?? b)!.change;
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
