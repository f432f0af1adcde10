// Reading the flag history: which change is in force for each flag state of an environment at a
// moment (one index seek per state, so the cost follows the environment's size, not the log's), the
// changes between two moments, and one flag's changes in order.
import { and, eq } from "drizzle-orm";
import { notFound } from "../domain/errors";
import type { FeatureAt, StoredChange, SubjectInForce } from "../domain/flag-state";
import type { Change, Scope } from "../domain/history";
import type { Db } from "../db/client";
import { environments } from "../db/schema";

/** The organisation's environment by id or api_key; another organisation's, or one never seen, is not found. */
export async function findEnvironment(db: Db, orgId: number, ref: string): Promise<{ id: number; name: string | null }> {
  const byId = /^\d{1,15}$/.test(ref);
  const [found] = await db
    .select({ id: environments.id, name: environments.name })
    .from(environments)
    .where(and(eq(environments.orgId, orgId), byId ? eq(environments.id, Number(ref)) : eq(environments.apiKey, ref)))
    .limit(1);
  if (!found) throw notFound("environment");
  return found;
}

// The values come out of the listed state: ->> gives enabled as 0/1, -> the values as JSON text.
const CHANGE_COLUMNS = `c.id, c.changed_at, c.change, c.state_json ->> '$.enabled', c.state_json -> '$.feature_state_value',
  c.state_json -> '$.multivariate_feature_state_values', c.priority, c.feature_name,
  c.subject_id, c.subject_name, c.audit_entry_id, c.event_id, c.author, c.subject as change_subject`;

/** The latest change of subject `s` (own: its own subject; '*': every override of its scope) before a bound. */
const latest = (subject: string, bound: string) => `(select o.id from flag_changes o
  where o.org_id = s.org_id and o.environment_id = s.environment_id and o.feature_id = s.feature_id
    and o.scope = s.scope and o.subject = ${subject} and ${bound}
  order by o.changed_at desc, o.id desc limit 1)`;

/**
 * For each subject of `where` (over flag_subjects s, in the organisation ?2 and environment ?3), the
 * change in force at a bound: its own latest change, unless a change to every override of its scope
 * (subject '*', rare: a feature deleted, a version published) is later. `bound` limits the changes
 * `o` considered, e.g. `o.changed_at <= ?1`. One index seek per subject.
 */
function inForceSql(where: string, bound: string, extra = ""): string {
  return `with m as (
      select s.feature_id, s.scope, ${latest("'*'", bound)} as every
      from flag_subjects s where s.org_id = ?2 and s.environment_id = ?3 and s.subject = '*'
    ), l as (
      select s.feature_id, s.scope, s.subject, s.feature_name, s.first_changed_at, s.first_change,
        ${latest("s.subject", bound)} as own, m.every
      from flag_subjects s left join m on m.feature_id = s.feature_id and m.scope = s.scope and s.subject <> '*'
      where ${where}
    )
    select l.feature_id, l.scope, l.subject, l.feature_name as subject_feature_name, l.first_changed_at, l.first_change, ${CHANGE_COLUMNS}${extra ? `, ${extra}` : ""}
    from l
    left join flag_changes c on c.id = case
      when l.every is null then l.own
      when l.own is null then l.every
      when (select (w.changed_at, w.id) > (o.changed_at, o.id) from flag_changes w, flag_changes o where w.id = l.every and o.id = l.own) then l.every
      else l.own end`;
}

type Row = [number, Scope, string, string, string, Change, ...unknown[]];

function storedChange(r: unknown[], from: number): StoredChange | null {
  if (r[from] === null) return null;
  const [id, changedAt, change, enabled, value, multivariate, priority, featureName, subjectId, subjectName, auditEntryId, eventId, author, subject] =
    r.slice(from) as [number, string, Change, number | null, string | null, string | null, number | null, string, number | null, string | null, number | null, string, string | null, string];
  return {
    id,
    featureId: r[0] as number,
    scope: r[1] as Scope,
    subject,
    changedAt,
    change,
    enabled: enabled === null ? null : enabled === 1,
    value,
    multivariate,
    priority,
    featureName,
    subjectId,
    subjectName,
    auditEntryId,
    eventId,
    author,
  };
}

function subjectsInForce(rows: Row[]): SubjectInForce[] {
  return rows.map((r) => ({
    featureId: r[0],
    scope: r[1],
    subject: r[2],
    featureName: r[3],
    firstChangedAt: r[4],
    firstChange: r[5],
    change: storedChange(r, 6),
  }));
}

/**
 * Every feature of the environment at `at` (changes up to and including it), by name, each
 * assembled in SQL from the listed states stored with the changes in force: an environment of
 * 1,000 features with 50 overrides each is 1,000 rows out of D1, not 51,000.
 */
export async function featuresAt(db: Db, orgId: number, environmentId: number, at: string): Promise<FeatureAt[]> {
  // An override whose state is unknown is named by its own latest change (the one in force names all).
  const own = (column: string) => `case when c.change = 'unknown' then (select ${column} from flag_changes where id = l.own) end`;
  const query = `with f as (${inForceSql("s.org_id = ?2 and s.environment_id = ?3", "o.changed_at <= ?1", `c.state_json, ${own("subject_name")} as own_subject_name, ${own("subject_id")} as own_subject_id`)})
    select feature_id,
      coalesce(max(case when scope = 'environment' then feature_name end), max(subject_feature_name)) as name,
      min(first_changed_at) as known_since,
      max(case when scope = 'environment' then coalesce(change, case first_change when 'created' then 'absent' else 'unknown' end) end) as defaults,
      max(case when scope = 'environment' then state_json end) as listed,
      group_concat(case when scope = 'segment' and subject <> '*' and change in ('set', 'created') then state_json end, ','
        order by priority nulls last, cast(subject as integer)) as segments,
      group_concat(case when scope = 'identity' and subject <> '*' and change in ('set', 'created') then state_json end, ',' order by subject) as identities,
      group_concat(case when scope <> 'environment' and change = 'unknown' and change_subject = subject
        then json_array(scope, subject, own_subject_id, own_subject_name) end) as unknown
    from f group by feature_id order by name, feature_id`;
  const rows = await db.$client.prepare(query).bind(at, orgId, environmentId).raw<[number, string, string, string | null, string | null, string | null, string | null, string | null]>();
  return rows.map(([featureId, name, knownSince, defaults, listed, segments, identities, unknown]) => ({
    featureId,
    name,
    knownSince,
    // No default recorded: unknown. A default not yet changed: absent if it began with a creation, else unknown.
    defaults: defaults === "set" || defaults === "created" ? listed! : defaults === "absent" || defaults === "deleted" ? "absent" : "unknown",
    segments: segments ?? "",
    identities: identities ?? "",
    unknown: unknown
      ? (JSON.parse(`[${unknown}]`) as [FeatureAt["unknown"][number]["scope"], string, number | null, string | null][]).map(([scope, subject, subjectId, subjectName]) => ({
          scope,
          subject,
          subjectId,
          subjectName,
        }))
      : [],
  }));
}

/** The given flag states of the environment with the change in force for each at `at`. */
export async function subjectsAt(
  db: Db,
  orgId: number,
  environmentId: number,
  at: string,
  subjects: readonly Pick<SubjectInForce, "featureId" | "scope" | "subject">[],
): Promise<SubjectInForce[]> {
  if (!subjects.length) return [];
  const where = "s.org_id = ?2 and s.environment_id = ?3 and (s.feature_id, s.scope, s.subject) in (select value ->> 0, value ->> 1, value ->> 2 from json_each(?4))";
  const rows = await db.$client
    .prepare(inForceSql(where, "o.changed_at <= ?1"))
    .bind(at, orgId, environmentId, JSON.stringify(subjects.map((s) => [s.featureId, s.scope, s.subject])))
    .raw<Row>();
  return subjectsInForce(rows);
}

/** Every flag state of the environment that a change to every override of its scope may have reached. */
export async function subjectsOfScopes(db: Db, orgId: number, environmentId: number, scopes: readonly [number, string][]) {
  if (!scopes.length) return [];
  const rows = await db.$client
    .prepare(
      `select feature_id, scope, subject from flag_subjects where org_id = ?1 and environment_id = ?2
       and (feature_id, scope) in (select value ->> 0, value ->> 1 from json_each(?3))`,
    )
    .bind(orgId, environmentId, JSON.stringify(scopes))
    .raw<[number, SubjectInForce["scope"], string]>();
  return rows.map(([featureId, scope, subject]) => ({ featureId, scope, subject }));
}

/** The changes that took effect in (from, to], oldest first. */
export async function changesWithin(db: Db, orgId: number, environmentId: number, from: string, to: string): Promise<StoredChange[]> {
  const rows = await db.$client
    .prepare(
      `select c.feature_id, c.scope, c.subject, ${CHANGE_COLUMNS} from flag_changes c
       where c.org_id = ?1 and c.environment_id = ?2 and c.changed_at > ?3 and c.changed_at <= ?4 order by c.changed_at, c.id`,
    )
    .bind(orgId, environmentId, from, to)
    .raw<unknown[]>();
  return rows.map((r) => storedChange(r, 3)!);
}

/** Position of a change in a flag's timeline: (changed_at, id). */
export type TimelineCursor = [string, number];

/**
 * One flag's changes after `after`, oldest first, each with the change that was in force for its
 * state just before it (null: none).
 */
export async function timelineOf(
  db: Db,
  orgId: number,
  environmentId: number,
  featureId: number,
  limit: number,
  after?: TimelineCursor,
): Promise<{ changes: { change: StoredChange; previous: StoredChange | null }[]; next: TimelineCursor | null }> {
  const page = await db.$client
    .prepare(
      // By the flag's own changes (sorted), not by scanning the environment's in time order for them.
      `select c.feature_id, c.scope, c.subject, ${CHANGE_COLUMNS}, c.reported_before from flag_changes c indexed by flag_changes_subject
       where c.org_id = ?1 and c.environment_id = ?2 and c.feature_id = ?3 and (c.changed_at > ?4 or (c.changed_at = ?4 and c.id > ?5))
       order by c.changed_at, c.id limit ?6`,
    )
    .bind(orgId, environmentId, featureId, after?.[0] ?? "", after?.[1] ?? 0, limit + 1)
    .raw<unknown[]>();
  const changes = page.slice(0, limit).map((r) => ({ ...storedChange(r, 3)!, reportedBefore: r.at(-1) as string | null }));
  const where = "s.org_id = ?2 and s.environment_id = ?3 and s.feature_id = ?4 and s.scope = ?5 and s.subject = ?6";
  const bound = "(o.changed_at < ?1 or (o.changed_at = ?1 and o.id < ?7))";
  const previous = changes.length
    ? await db.$client.batch<unknown>(
        changes.map((c) => db.$client.prepare(inForceSql(where, bound)).bind(c.changedAt, orgId, environmentId, featureId, c.scope, c.subject, c.id)),
      )
    : [];
  const last = changes.at(-1);
  return {
    changes: changes.map((change, i) => {
      const [row] = (previous[i].results ?? []) as Record<string, unknown>[];
      return { change, previous: row ? storedChange(Object.values(row), 6) : null };
    }),
    next: page.length > limit && last ? [last.changedAt, last.id] : null,
  };
}
