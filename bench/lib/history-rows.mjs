// Flag history rows for the history bench, written by SQLite itself (INSERT ... SELECT over a
// recursive CTE) like lib/audit-rows.mjs. Columns follow flag_changes in migrations/
// (*_issue12_flag_history.sql); its trigger (*_issue12_flag_subjects_trigger.sql) fills flag_subjects.
//
// The environment under test: `features` features, each with a default, `segments` segment
// overrides and `identities` identity overrides, every one of them set `versions` times: version 0
// creates it on day 0, version v sets it on day 10 v; within a version, state s takes effect s
// seconds into the day. Its changes are Flagsmith's relayed flag events (no audit entry), so the
// same environment can sit in an organisation of 10k audit entries or of 1M.
import { BASE_EPOCH } from "./audit-rows.mjs";

export const DAY = 86_400;
/** created_date / changed_at form of a unix time: ISO-8601 with microseconds and Z. */
export const micro = (seconds) => `${new Date(seconds * 1000).toISOString().slice(0, 19)}.000000Z`;
/** When version v of state s took effect (seconds). */
export const changedAt = (v, s) => BASE_EPOCH + v * 10 * DAY + s;

const date = (expr) => `strftime('%Y-%m-%dT%H:%M:%S', ${expr}, 'unixepoch') || '.000000Z'`;

/**
 * flag_changes.state_json as the recorder writes it (domain/flag-state.ts listedState), from
 * columns of the row being inserted: `ref` is the segment/identity object, or null for a default.
 */
const listed = ({ scope, ref, priority }) =>
  ref === undefined
    ? `json_object(${values()})`
    : `case ${scope}
  when 'environment' then json_object(${values()})
  when 'segment' then json_object('segment', ${ref}, 'priority', ${priority}, ${values()})
  else json_object('identity', ${ref}, ${values()}) end`;
function values() {
  return "'enabled', json(case ENABLED when 1 then 'true' else 'false' end), 'feature_state_value', json(VALUE), 'multivariate_feature_state_values', json(MV), 'changed_at', AT, 'audit_entry_id', AUDIT, 'event_id', EVENT, 'known', json('true')";
}
const fill = (template, parts) => template.replace(/\b(ENABLED|VALUE|MV|AT|AUDIT|EVENT)\b/g, (k) => parts[k.toLowerCase()]);

/** SQL writing the environment's states and their changes. */
export function environmentHistorySql(orgId, { environmentId, projectId, features, segments, identities, versions }) {
  const per = 1 + segments + identities;
  const states = features * per;
  const s = `(n % ${states})`;
  const v = `(n / ${states})`;
  const feature = `(1 + ${s} / ${per})`;
  const k = `(${s} % ${per})`;
  const scope = `case when ${k} = 0 then 'environment' when ${k} <= ${segments} then 'segment' else 'identity' end`;
  const subject = `case when ${k} = 0 then '' when ${k} <= ${segments} then cast(${k} as text) else 'user-' || ${feature} || '-' || ${k} end`;
  const subjectId = `case when ${k} = 0 then null when ${k} <= ${segments} then ${k} else ${feature} * 1000 + ${k} end`;
  const subjectName = `case when ${k} = 0 then null when ${k} <= ${segments} then 'segment ' || ${k} else 'user-' || ${feature} || '-' || ${k} end`;
  const featureName = `'feature_' || printf('%04d', ${feature})`;
  const at = date(`${BASE_EPOCH} + ${v} * ${10 * DAY} + ${s}`);
  return `INSERT INTO environments (org_id, id, project_id, name, api_key, updated_at)
  VALUES (${orgId}, ${environmentId}, ${projectId}, 'History bench', 'history_bench_env', ${BASE_EPOCH * 1000});
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < ${states * versions - 1})
INSERT INTO flag_changes (org_id, environment_id, feature_id, scope, subject, changed_at, change, priority, feature_name,
  subject_id, subject_name, audit_entry_id, event_id, author, reported_before, recorded_at, state_json)
SELECT org_id, environment_id, feature_id, scope, subject, changed_at, change, priority, feature_name, subject_id, subject_name,
  audit_entry_id, event_id, author, reported_before, recorded_at, ${fill(
    listed({
      scope: "scope",
      ref: "case scope when 'segment' then json_object('id', subject_id, 'name', subject_name) else json_object('id', subject_id, 'identifier', subject) end",
      priority: "priority",
    }),
    { enabled: "enabled", value: "value", mv: "multivariate", at: "changed_at", audit: "audit_entry_id", event: "event_id" },
  )}
FROM (SELECT ${orgId} as org_id, ${environmentId} as environment_id, ${feature} as feature_id, ${scope} as scope, ${subject} as subject,
  ${at} as changed_at, case when ${v} = 0 then 'created' else 'set' end as change,
  (n / 7) % 2 as enabled, '"value ' || ${v} || ' of ' || ${s} || '"' as value, case when ${k} = 0 then '[]' end as multivariate,
  case when ${k} between 1 and ${segments} then ${k} - 1 end as priority, ${featureName} as feature_name, ${subjectId} as subject_id,
  ${subjectName} as subject_name, null as audit_entry_id, 'evt_history_bench_' || n as event_id, 'kyle@example.com' as author,
  null as reported_before, (${BASE_EPOCH} + ${v} * ${10 * DAY} + ${s}) * 1000 as recorded_at
FROM g);`;
}

/**
 * SQL projecting the organisation's generated audit entries (lib/audit-rows.mjs: FLAG_STATE_UPDATED
 * in environments <project>00-04) into the flag history as the recorder would have, so the
 * organisation's history holds their changes too.
 */
export function projectedAuditSql(orgId) {
  const flag = `FROM audit_entries a WHERE a.org_id = ${orgId} AND a.type = 'FLAG_STATE_UPDATED'`;
  return `INSERT INTO flag_changes (org_id, environment_id, feature_id, scope, subject, changed_at, change, priority, feature_name,
  subject_id, subject_name, audit_entry_id, event_id, author, reported_before, recorded_at, state_json)
SELECT org_id, environment_id, feature_id, 'environment', '', changed_at, 'set', null, feature_name, null, null, audit_entry_id, event_id,
  author, reported_before, recorded_at,
  ${fill(listed({}), { enabled: "enabled", value: "value", mv: "multivariate", at: "changed_at", audit: "audit_entry_id", event: "event_id" })}
FROM (SELECT a.org_id, a.environment_id, json_extract(a.event, '$.feature.id') as feature_id, a.created_date as changed_at,
  json_extract(a.event, '$.new_state.enabled') as enabled, json_quote(json_extract(a.event, '$.new_state.feature_state_value')) as value,
  null as multivariate, json_extract(a.event, '$.feature.name') as feature_name, a.id as audit_entry_id, a.event_id as event_id,
  'User Number ' || a.author_id as author, json_extract(a.event, '$.previous_state') as reported_before, a.recorded_at
${flag});`;
}
