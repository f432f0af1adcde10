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

// Positions in each bound row; the statement below reads them with `r.v ->> n`.
const ORG = 0, ENV = 1, PROJECT = 2, FEATURE = 3, SCOPE = 4, SUBJECT = 5, AT = 6, CHANGE = 7, PRIORITY = 8,
  FEATURE_NAME = 9, SUBJECT_ID = 10, SUBJECT_NAME = 11, EVENT = 12, AUTHOR = 13, BEFORE = 14, RECORDED = 15, LISTED = 16,
  SEQ = 17;

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

function rowsOf(messages: readonly RecordedEvent[], recordedAt: number, seqs?: ReadonlyMap<string, number>): unknown[][] {
  const rows: unknown[][] = [];
  for (const m of messages) {
    const reported = reportedStatesOfEvent(m.event);
    if (!reported.length) continue;
    const changedAt = m.event.occurred_at ?? isoMicro(m.receivedAt);
    const author = authorOf(m.event);
    for (const r of reported) {
      const subject = r.segment ?? (r.identity ? { id: r.identity.id, name: r.identity.identifier } : null);
      rows.push([
        m.orgId, r.environmentId, r.projectId, r.feature.id, r.scope, subjectOf(r), changedAt, r.change,
        r.segment?.priority ?? null, r.feature.name, subject?.id ?? null, subject?.name ?? null, m.eventId, author,
        r.before ? json(r.before) : null, recordedAt, listed(r, changedAt, m.eventId) ?? null,
        seqs?.get(`${m.orgId}:${m.eventId}`) ?? null,
      ]);
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
  });

// Each row is read as JSONB, parsed once: reading 20 columns from its text would parse it 20 times.
const at = (i: number) => sql.raw(`r.v ->> ${i}`);

/** The rows bound as `json`, each once per environment it applies to (all of the project's when it names none). */
const fromRows = (json: string) => sql`from (select jsonb(value) as v from json_each(${json})) r
  left join environments e on ${at(ENV)} is null and e.org_id = ${at(ORG)} and e.project_id = ${at(PROJECT)}
  where (${at(ENV)} is not null or e.id is not null)`;

const environment = sql`coalesce(${at(ENV)}, e.id)`;

function insertChanges(json: string): SQL {
  // Materialized: each bound value is read once, not once per place the insert uses it.
  return sql`with x as materialized (
      select ${at(ORG)} as org_id, ${environment} as environment_id, ${at(FEATURE)} as feature_id, ${at(SCOPE)} as scope,
        ${at(SUBJECT)} as subject, ${at(AT)} as changed_at, ${at(CHANGE)} as change, ${at(PRIORITY)} as priority,
        ${at(FEATURE_NAME)} as feature_name, ${at(SUBJECT_ID)} as subject_id, ${at(SUBJECT_NAME)} as subject_name,
        coalesce(${at(SEQ)}, (select a.seq from audit_event_ids a where a.org_id = ${at(ORG)} and a.event_id = ${at(EVENT)})) as audit_entry_id,
        ${at(EVENT)} as event_id, ${at(AUTHOR)} as author, ${at(BEFORE)} as reported_before, ${at(RECORDED)} as recorded_at,
        ${at(LISTED)} as listed
      ${fromRows(json)}
    )
    insert into flag_changes (org_id, environment_id, feature_id, scope, subject, changed_at, change, priority,
      feature_name, subject_id, subject_name, audit_entry_id, event_id, author, reported_before, recorded_at, state_json)
    select x.org_id, x.environment_id, x.feature_id, x.scope, x.subject, x.changed_at, x.change, x.priority, x.feature_name,
      x.subject_id, x.subject_name, x.audit_entry_id, x.event_id, x.author, x.reported_before, x.recorded_at,
      case when x.listed is not null then json_set(x.listed, '$.audit_entry_id', x.audit_entry_id) end
    from x
    -- An event recorded twice (two consumers racing; D1 runs batches one at a time) adds nothing.
    where not exists (select 1 from flag_changes f where f.org_id = x.org_id and f.environment_id = x.environment_id
      and f.feature_id = x.feature_id and f.scope = x.scope and f.subject = x.subject and f.changed_at = x.changed_at
      and f.event_id = x.event_id)`;
}

/**
 * The statements that project `messages` (events being recorded now, none recorded before) into the
 * flag history. They run after the audit insert of the same batch, whose entry ids they look up, or,
 * for an organisation whose log is in another database (db/placement.ts), take them from `seqs`
 * (by `org:event id`); flag_subjects follows by trigger.
 */
export function flagHistoryWrites(messages: readonly RecordedEvent[], recordedAt: number, seqs?: ReadonlyMap<string, number>): SQL[] {
  return jsonChunks(rowsOf(messages, recordedAt, seqs)).map(insertChanges);
}
