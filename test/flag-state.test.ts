// The pure part of the flag history: what each change event says about flag states, and how stored
// changes answer (domain/history.ts, domain/flag-state.ts). No I/O; test/history*.test.ts go through the API.
import { describe, expect, it } from "vitest";
import { featureJson, netChanges, sameState, timelineEntry, UNKNOWN, type StoredChange, type SubjectInForce } from "../src/domain/flag-state";
import { flagsmithFlagStates, reportedStatesOfEvent, subjectOf } from "../src/domain/history";

const base = { project: { id: 1 }, environment: { id: 10 }, feature: { id: 5, name: "banner" } };

describe("what a change event says about flag states", () => {
  it("maps each of flaghook's flag event types, and nothing for the others", () => {
    const where = { environmentId: 10, projectId: 1, feature: { id: 5, name: "banner" } };
    const on = { enabled: true, feature_state_value: "x" };
    expect(reportedStatesOfEvent({ ...base, type: "FEATURE_CREATED", feature: { id: 5, name: "banner", default_enabled: true, initial_value: 3 } })).toEqual([
      { ...where, scope: "environment", change: "created", state: { enabled: true, feature_state_value: 3 } },
    ]);
    expect(reportedStatesOfEvent({ ...base, type: "FEATURE_DELETED", environment: null })).toEqual([
      { ...where, environmentId: null, scope: "environment", change: "deleted", state: null, before: null },
      { ...where, environmentId: null, scope: "segment", every: true, change: "deleted", state: null },
      { ...where, environmentId: null, scope: "identity", every: true, change: "deleted", state: null },
    ]);
    expect(reportedStatesOfEvent({ ...base, type: "REMOTE_CONFIG_UPDATED", new_state: on, previous_state: { enabled: false } })).toEqual([
      { ...where, scope: "environment", change: "set", state: on, before: { enabled: false, feature_state_value: null } },
    ]);
    expect(reportedStatesOfEvent({ ...base, type: "SEGMENT_OVERRIDE_DELETED", segment: { id: 9, name: "beta" }, segment_priority: 2 })).toEqual([
      { ...where, scope: "segment", segment: { id: 9, name: "beta", priority: 2 }, change: "deleted", state: null, before: null },
    ]);
    expect(reportedStatesOfEvent({ ...base, type: "IDENTITY_OVERRIDE_UPDATED", identity: { identifier: "u" }, new_state: on })).toEqual([
      { ...where, scope: "identity", identity: { id: null, identifier: "u" }, change: "set", state: on, before: null },
    ]);
    for (const type of ["FEATURE_UPDATED", "SEGMENT_CREATED", "ENVIRONMENT_UPDATED", "CUSTOM"] as const) {
      expect(reportedStatesOfEvent({ ...base, type, segment: { id: 9, name: "s" }, log: "x", related_object: { type: "X" } })).toEqual([]);
    }
  });

  it("reads Flagsmith's flag bodies: identity by identity, segment by feature_segment, else the default", () => {
    const fs = (more: Record<string, unknown> = {}) => ({ enabled: true, environment: { id: 23 }, feature: { id: 7, name: "f", project: { id: 12 } }, feature_state_value: 1, ...more });
    const where = { environmentId: 23, projectId: 12, feature: { id: 7, name: "f" } };
    const mv = [{ id: 1, multivariate_feature_option: 3, percentage_allocation: 50 }];
    expect(flagsmithFlagStates("FLAG_UPDATED", { new_state: fs({ identity: "9f2c-uuid", identity_identifier: "edge-user", multivariate_feature_state_values: mv }) })).toEqual([
      { ...where, scope: "identity", identity: { id: null, identifier: "edge-user" }, change: "created", state: { enabled: true, feature_state_value: 1, multivariate_feature_state_values: mv }, before: null },
    ]);
    expect(flagsmithFlagStates("FLAG_DELETED", { previous_state: fs({ feature_segment: { segment: { id: 4, name: "s" }, priority: 0 } }) })[0]).toMatchObject({
      scope: "segment",
      segment: { id: 4, name: "s", priority: 0 },
      change: "deleted",
      state: null,
    });
    expect(flagsmithFlagStates("FLAG_DELETED", { previous_state: fs() }).map((r) => [r.scope, subjectOf(r), r.change])).toEqual([
      ["environment", "", "deleted"],
      ["segment", "*", "deleted"],
      ["identity", "*", "deleted"],
    ]);
  });
});

const change = (over: Partial<StoredChange>): StoredChange => ({
  id: 1,
  featureId: 5,
  scope: "identity",
  subject: "u",
  changedAt: "2024-01-01T10:00:00.000000Z",
  change: "set",
  enabled: true,
  value: '"x"',
  multivariate: null,
  priority: null,
  featureName: "banner",
  subjectId: null,
  subjectName: "u",
  auditEntryId: 1,
  eventId: "evt_1",
  author: "Kyle",
  ...over,
});
const subject = (c: StoredChange | null, over: Partial<SubjectInForce> = {}): SubjectInForce => ({
  featureId: 5,
  scope: "identity",
  subject: "u",
  featureName: "banner",
  firstChangedAt: "2024-01-01T09:00:00.000000Z",
  firstChange: "set",
  change: c,
  ...over,
});

describe("answers from stored changes", () => {
  it("counts a deletion of every override only for overrides that existed then", () => {
    const set = change({ id: 2, changedAt: "2024-01-01T10:10:00.000000Z" });
    const gone = change({ id: 3, subject: "*", change: "deleted", changedAt: "2024-01-01T10:20:00.000000Z", eventId: "evt_3", auditEntryId: 3, author: "Ana" });
    // Did not exist at `from`, was set, then every identity override ended: 2 changes, none after.
    const [entry] = netChanges("2024-01-01T11:00:00.000000Z", [subject(null, { firstChangedAt: "2024-01-01T10:10:00.000000Z", firstChange: "created" })], [subject(gone)], [set, gone]);
    expect(entry).toMatchObject({ before: null, after: null, changes_between: 2, authors: ["Kyle", "Ana"], audit_entry_ids: [1, 3] });
    // Already gone at `from`: the later deletion of every override does not apply to it.
    expect(netChanges("2024-01-01T11:00:00.000000Z", [subject(change({ change: "deleted" }))], [subject(gone)], [gone])).toEqual([]);
  });

  it("gives a state's first change the previous state its source reported, and none to a creation", () => {
    expect(timelineEntry(change({ reportedBefore: '{"enabled":false,"feature_state_value":"a"}' }), null).before).toEqual({ ...UNKNOWN, enabled: false, feature_state_value: "a", known: true });
    expect(timelineEntry(change({}), null).before).toEqual(UNKNOWN);
    expect(timelineEntry(change({ change: "created" }), null).before).toBeNull();
    expect(timelineEntry(change({ id: 5 }), change({ id: 4, change: "deleted" })).before).toBeNull();
  });

  it("tells states apart by enabled, value, variations and priority, and unknown from known", () => {
    const s = { ...UNKNOWN, known: true, enabled: true, feature_state_value: 1 };
    expect(sameState(s, { ...s })).toBe(true);
    expect(sameState(s, { ...s, feature_state_value: "1" })).toBe(false);
    expect(sameState(s, { ...s, priority: 1 })).toBe(false);
    expect(sameState(s, { ...s, multivariate_feature_state_values: [] })).toBe(false);
    expect(sameState(UNKNOWN, { ...UNKNOWN })).toBe(true);
    expect(sameState(UNKNOWN, null)).toBe(false);
  });

  it("writes a feature entry from its stored parts, or none for a feature absent then", () => {
    const json = featureJson({
      featureId: 5,
      name: "banner",
      knownSince: "2024-01-01T09:00:00.000000Z",
      defaults: "unknown",
      segments: '{"segment":{"id":9,"name":"b"},"priority":0}',
      identities: "",
      unknown: [{ scope: "segment", subject: "*", subjectId: null, subjectName: null }],
    });
    expect(JSON.parse(json!)).toEqual({
      feature: { id: 5, name: "banner" },
      ...UNKNOWN,
      known_since: "2024-01-01T09:00:00.000000Z",
      segment_overrides: [{ segment: { id: 9, name: "b" }, priority: 0 }, { segment: null, priority: null, ...UNKNOWN }],
      identity_overrides: [],
    });
    expect(featureJson({ featureId: 5, name: "b", knownSince: "x", defaults: "absent", segments: "", identities: "", unknown: [] })).toBeNull();
  });
});
