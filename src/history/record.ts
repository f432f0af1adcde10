// The projection's writes: what freshly recorded events did to flag states, as statements for the
// recorder's one D1 batch, so an audit entry and its flag history land together or not at all.
import { sql, type SQL } from "drizzle-orm";
import { isoMicro } from "../domain/clock";
import type { ChangeEvent } from "../domain/event";
import { listedState } from "../domain/flag-state";
import { authorOf, reportedStatesOfEvent, subjectOf, type ReportedState } from "../domain/history";
import { jsonChunks } from "../db/bulk";

/** An event as the recorder holds it (its ingest message). */
export interface RecordedEvent {
  orgId: number;
  eventId: string;
  receivedAt: number;
  event: ChangeEvent;
}

// Positions in each bound row; the statements below read them with `r.value ->> n`.
const ORG = 0, ENV = 1, PROJECT = 2, FEATURE = 3, SCOPE = 4, SUBJECT = 5, AT = 6, CHANGE = 7, ENABLED = 8,
  VALUE = 9, MV = 10, PRIORITY = 11, FEATURE_NAME = 12, SUBJECT_ID = 13, SUBJECT_NAME = 14, EVENT = 15,
  AUTHOR = 16, BEFORE = 17, RECORDED = 18, LISTED = 19;

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

function rowsOf(messages: readonly RecordedEvent[], recordedAt: number): unknown[][] {
  const rows: unknown[][] = [];
  for (const m of messages) {
    const reported = reportedStatesOfEvent(m.event);
    if (!reported.length) continue;
    const changedAt = m.event.occurred_at ?? isoMicro(m.receivedAt);
    const author = authorOf(m.event);
    for (const r of reported) {
      const subject = r.segment ?? (r.identity ? { id: r.identity.id, name: r.identity.identifier } : null);
      const row = [
        m.orgId, r.environmentId, r.projectId, r.feature.id, r.scope, subjectOf(r), changedAt, r.change,
        r.state ? (r.state.enabled ? 1 : 0) : null, r.state ? json(r.state.feature_state_value) : null,
        r.state ? json(r.state.multivariate_feature_state_values) : null, r.segment?.priority ?? null, r.feature.name,
        subject?.id ?? null, subject?.name ?? null, m.eventId, author, r.before ? json(r.before) : null, recordedAt,
      ];
      rows.push([...row, json(listed(r, changedAt, m.eventId))]);
    }
  }
  return rows;
}

/** How the state answer lists what `r` leaves; its audit entry id is filled in by the insert. */
const listed = (r: ReportedState, changedAt: string, eventId: string) =>
  listedState({
    id: 0,
    featureId: r.feature.id,
    scope: r.scope,
    subject: subjectOf(r),
    changedAt,
    change: r.change,
    enabled: r.state?.enabled ?? null,
    value: r.state ? (json(r.state.feature_state_value) ?? "null") : null,
    multivariate: r.state ? json(r.state.multivariate_feature_state_values) : null,
    priority: r.segment?.priority ?? null,
    featureName: r.feature.name,
    subjectId: r.segment?.id ?? r.identity?.id ?? null,
    subjectName: r.segment?.name ?? r.identity?.identifier ?? null,
    auditEntryId: null,
    eventId,
    author: null,
  }) ?? undefined;

// Each row is read as JSONB, parsed once: reading 20 columns from its text would parse it 20 times.
const at = (i: number) => sql.raw(`r.v ->> ${i}`);

/** The rows bound as `json`, each once per environment it applies to (all of the project's when it names none). */
const fromRows = (json: string) => sql`from (select jsonb(value) as v from json_each(${json})) r
  left join environments e on ${at(ENV)} is null and e.org_id = ${at(ORG)} and e.project_id = ${at(PROJECT)}
  where (${at(ENV)} is not null or e.id is not null)`;

const environment = sql`coalesce(${at(ENV)}, e.id)`;

function insertChanges(json: string): SQL {
  return sql`insert into flag_changes (org_id, environment_id, feature_id, scope, subject, changed_at, change, enabled, value,
      multivariate, priority, feature_name, subject_id, subject_name, audit_entry_id, event_id, author, reported_before, recorded_at,
      state_json)
    select x.org_id, x.environment_id, x.feature_id, x.scope, x.subject, x.changed_at, x.change, x.enabled, x.value,
      x.multivariate, x.priority, x.feature_name, x.subject_id, x.subject_name, x.audit_entry_id, x.event_id, x.author,
      x.reported_before, x.recorded_at, case when x.listed is not null then json_set(x.listed, '$.audit_entry_id', x.audit_entry_id) end
    from (
      select ${at(ORG)} as org_id, ${environment} as environment_id, ${at(FEATURE)} as feature_id, ${at(SCOPE)} as scope,
        ${at(SUBJECT)} as subject, ${at(AT)} as changed_at, ${at(CHANGE)} as change, ${at(ENABLED)} as enabled,
        ${at(VALUE)} as value, ${at(MV)} as multivariate, ${at(PRIORITY)} as priority, ${at(FEATURE_NAME)} as feature_name,
        ${at(SUBJECT_ID)} as subject_id, ${at(SUBJECT_NAME)} as subject_name,
        (select a.id from audit_entries a where a.org_id = ${at(ORG)} and a.event_id = ${at(EVENT)}) as audit_entry_id,
        ${at(EVENT)} as event_id, ${at(AUTHOR)} as author, ${at(BEFORE)} as reported_before, ${at(RECORDED)} as recorded_at,
        ${at(LISTED)} as listed
      ${fromRows(json)}
    ) x
    where true
    on conflict do nothing`;
}

/** Every state the history has seen, with when it was first and last seen (late arrivals move both). */
function upsertSubjects(json: string): SQL {
  return sql`insert into flag_subjects (org_id, environment_id, feature_id, scope, subject, feature_name, first_changed_at,
      first_change, last_changed_at)
    select ${at(ORG)}, ${environment}, ${at(FEATURE)}, ${at(SCOPE)}, ${at(SUBJECT)}, ${at(FEATURE_NAME)}, ${at(AT)}, ${at(CHANGE)}, ${at(AT)}
    ${fromRows(json)}
    on conflict do update set
      feature_name = case when excluded.last_changed_at >= flag_subjects.last_changed_at then excluded.feature_name else flag_subjects.feature_name end,
      first_change = case when excluded.first_changed_at < flag_subjects.first_changed_at then excluded.first_change else flag_subjects.first_change end,
      first_changed_at = min(flag_subjects.first_changed_at, excluded.first_changed_at),
      last_changed_at = max(flag_subjects.last_changed_at, excluded.last_changed_at)`;
}

/**
 * The statements that project `messages` (events being recorded now, none recorded before) into the
 * flag history. They run after the audit insert of the same batch, whose entry ids they look up.
 */
export function flagHistoryWrites(messages: readonly RecordedEvent[], recordedAt: number): SQL[] {
  return jsonChunks(rowsOf(messages, recordedAt)).flatMap((json) => [insertChanges(json), upsertSubjects(json)]);
}
