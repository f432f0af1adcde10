// Turns accepted change events into audit entries and deliveries. Used by the ingest queue
// consumer, by ingest itself when the queue refuses a message, and by the sweeper.
import { and, eq, inArray, sql, type Column } from "drizzle-orm";
import { auditData, auditFields, sortTime, type StoredAuditEntry } from "../domain/audit";
import { isoMicro, now } from "../domain/clock";
import { groupBy } from "../domain/collections";
import type { ChangeEvent } from "../domain/event";
import { planDeliveries, planRelayed } from "../domain/fanout";
import { flagEventType } from "../domain/payload";
import { inJson, insertRows } from "../db/bulk";
import { auditEventIds } from "../db/derived";
import { database, runBatch, type Db, type Statement } from "../db/client";
import { byDatabase } from "../db/placement";
import { deliveryId, deliveryRow, enabledWebhooks, insertDeliveries } from "../db/deliveries";
import { auditEntries, environments, features, projects, relayedEvents, type AuditEntryRow } from "../db/schema";
import { flagHistoryWrites } from "../history/record";
import type { Env } from "../env";
import { enqueueDeliveries, type IngestMessage } from "../queues";

/** Flagsmith's own FLAG_UPDATED / FLAG_DELETED: relayed, not audited (its AUDIT_LOG_CREATED is the entry). */
const isRelayedFlagEvent = (m: IngestMessage) => m.event.relayed?.event_type === "FLAG_UPDATED" || m.event.relayed?.event_type === "FLAG_DELETED";

/** When a change happened: the event's occurred_at, else when flaghook received it (the entry's created_date). */
const changeDate = (m: IngestMessage) => m.event.occurred_at ?? isoMicro(m.receivedAt);

/**
 * Records a batch of accepted events idempotently: an event id already recorded changes nothing,
 * and an entry recorded but not yet fanned out (a crash between the two writes) is fanned out now.
 */
export async function recordEvents(env: Env, messages: readonly IngestMessage[]): Promise<void> {
  if (!messages.length) return;
  const db = database(env.DB);
  const recordedAt = now();
  const audited = messages.filter((m) => !isRelayedFlagEvent(m));
  // Each organisation's entries go to the database holding its log (db/placement.ts); the catalogue
  // (projects, environments, features) and relayed flag events stay in DB.
  const logs = await byDatabase(env, [...new Set(audited.map((m) => m.orgId))]);
  const fresh: IngestMessage[] = [];
  const here: IngestMessage[] = [];
  const elsewhere: [Db, IngestMessage[]][] = [];
  for (const [logDb, orgIds] of logs) {
    // A replayed event changes nothing, not even the names of its project and environment.
    const own = await unrecorded(logDb, audited.filter((m) => orgIds.includes(m.orgId)), auditEventIds);
    fresh.push(...own);
    if (logDb === db) here.push(...own);
    else if (own.length) elsewhere.push([logDb, own]);
  }
  const relayed = await relayWrites(db, await unrecorded(db, messages.filter(isRelayedFlagEvent), relayedEvents), recordedAt);
  const upserts = upsertScopes(db, [...fresh, ...relayed.fresh], recordedAt);
  const inserts = insertAuditEntries(here, recordedAt);
  // The flag history (src/history/, kept in DB with the catalogue) is projected in the same batch as
  // the entries of DB: recorded means projected.
  const history = flagHistoryWrites([...here, ...relayed.fresh], recordedAt);
  const results = await runBatch(db, [...upserts, ...inserts, ...relayed.writes, ...history]);
  const insertedRows = results.slice(upserts.length, upserts.length + inserts.length).flat();
  // Logs in other databases: after the catalogue, with the names it now knows written in; then their
  // flag history in DB, with the entry numbers the insert answered.
  for (const [logDb, own] of elsewhere) {
    const named = await withCatalogueNames(db, own);
    const rows = (await runBatch(logDb, insertAuditEntries(named, recordedAt))).flat();
    insertedRows.push(...rows);
    await runBatch(db, flagHistoryWrites(own, recordedAt, new Map(rows.map((r) => [`${r.org_id}:${r.event_id}`, Number(r.seq)]))));
  }
  // The entries just inserted come back from the insert; a replayed event's entry is looked up in
  // case a crash left it without deliveries.
  const events = new Map(fresh.map((m) => [`${m.orgId}:${m.eventId}`, m.event]));
  const inserted = insertedRows.map((row) => returnedEntry(row, events.get(`${row.org_id}:${row.event_id}`)!));
  const replayed = audited.filter((m) => !events.has(`${m.orgId}:${m.eventId}`));
  const stranded: FanOutEntry[] = [];
  for (const [logDb, orgIds] of logs) {
    const own = replayed.filter((m) => orgIds.includes(m.orgId));
    stranded.push(...(await notFannedOut(logDb, own)));
    // A crash between an entry in another database and its flag history in DB: projected again now
    // (the history insert adds nothing it already holds).
    if (logDb !== db && own.length) await runBatch(db, flagHistoryWrites(own, recordedAt, await recordedSeqs(logDb, own)));
  }
  await fanOutEntries(env, [...inserted, ...stranded]);
  await enqueueDeliveries(env, relayed.queued.map((id) => ({ id, attempt: 0 })));
}

/** The entry numbers of recorded events, by `org:event id`, from the database holding their log. */
async function recordedSeqs(logDb: Db, messages: readonly IngestMessage[]): Promise<Map<string, number>> {
  const seqs = new Map<string, number>();
  for (const [orgId, group] of groupBy(messages, (m) => m.orgId)) {
    const rows = await logDb
      .select({ eventId: auditEventIds.eventId, seq: auditEventIds.seq })
      .from(auditEventIds)
      .where(and(eq(auditEventIds.orgId, orgId), inJson(auditEventIds.eventId, group.map((m) => m.eventId))));
    for (const r of rows) seqs.set(`${orgId}:${r.eventId}`, r.seq);
  }
  return seqs;
}

/**
 * Messages with the names their events leave out filled from DB's catalogue, as the insert's own
 * lookup does when the log shares DB (that lookup finds nothing in another database).
 */
async function withCatalogueNames(db: Db, messages: IngestMessage[]): Promise<IngestMessage[]> {
  const wanted = messages.filter((m) => (m.event.project && m.event.project.name == null) || (m.event.environment && (m.event.environment.name == null || m.event.environment.api_key == null)));
  if (!wanted.length) return messages;
  const named = new Map<string, { name: string | null; apiKey?: string | null }>();
  for (const [orgId, group] of groupBy(wanted, (m) => m.orgId)) {
    const projectIds = group.flatMap((m) => (m.event.project ? [m.event.project.id] : []));
    const environmentIds = group.flatMap((m) => (m.event.environment ? [m.event.environment.id] : []));
    for (const p of await db.select({ id: projects.id, name: projects.name }).from(projects).where(and(eq(projects.orgId, orgId), inJson(projects.id, projectIds)))) {
      named.set(`p:${orgId}:${p.id}`, { name: p.name });
    }
    for (const e of await db
      .select({ id: environments.id, name: environments.name, apiKey: environments.apiKey })
      .from(environments)
      .where(and(eq(environments.orgId, orgId), inJson(environments.id, environmentIds)))) {
      named.set(`e:${orgId}:${e.id}`, { name: e.name, apiKey: e.apiKey });
    }
  }
  return messages.map((m) => {
    const { project, environment } = m.event;
    const p = project && named.get(`p:${m.orgId}:${project.id}`);
    const e = environment && named.get(`e:${m.orgId}:${environment.id}`);
    if (!p && !e) return m;
    return {
      ...m,
      event: {
        ...m.event,
        ...(project && p ? { project: { ...project, name: project.name ?? p.name ?? undefined } } : {}),
        ...(environment && e ? { environment: { ...environment, name: environment.name ?? e.name ?? undefined, api_key: environment.api_key ?? e.apiKey ?? undefined } } : {}),
      },
    } as IngestMessage;
  });
}

function upsertScopes(db: Db, messages: readonly IngestMessage[], at: number): Statement[] {
  const projectRows = new Map<string, typeof projects.$inferInsert>();
  const environmentRows = new Map<string, typeof environments.$inferInsert>();
  for (const { orgId, event } of messages) {
    if (event.project) {
      const key = `${orgId}:${event.project.id}`;
      projectRows.set(key, { orgId, id: event.project.id, name: event.project.name ?? projectRows.get(key)?.name ?? null, updatedAt: at });
    }
    if (event.environment) {
      const e = event.environment;
      const key = `${orgId}:${e.id}`;
      // Like the upsert's coalesce: what an earlier event of the batch said survives a later silence.
      const earlier = environmentRows.get(key);
      environmentRows.set(key, {
        orgId,
        id: e.id,
        projectId: event.project?.id ?? earlier?.projectId ?? null,
        name: e.name ?? earlier?.name ?? null,
        apiKey: e.api_key ?? earlier?.apiKey ?? null,
        updatedAt: at,
      });
    }
  }
  const coalesce = (column: string) => sql.raw(`coalesce(excluded.${column}, ${column})`);
  // A row written costs as much as a change: an upsert that would change nothing writes nothing,
  // and an environment's indexed columns are set (their index entries rewritten) only when they change.
  return [
    ...featureUpserts(db, messages, at),
    ...[...projectRows.values()].map((row) =>
      db.insert(projects).values(row).onConflictDoUpdate({
        target: [projects.orgId, projects.id],
        set: { name: coalesce("name"), updatedAt: at },
        setWhere: sql.raw("excluded.name is not null and excluded.name is not name"),
      }),
    ),
    ...[...environmentRows.values()].flatMap((row) => [
      // updated_at is when the environment was last seen (the newest wins an api_key two environments had).
      db.insert(environments).values(row).onConflictDoUpdate({
        target: [environments.orgId, environments.id],
        set: { name: coalesce("name"), updatedAt: at },
      }),
      db
        .update(environments)
        .set({ projectId: sql`coalesce(${row.projectId}, project_id)`, apiKey: sql`coalesce(${row.apiKey}, api_key)` })
        .where(
          and(
            eq(environments.orgId, row.orgId),
            eq(environments.id, row.id),
            sql`(coalesce(${row.projectId}, project_id) is not project_id or coalesce(${row.apiKey}, api_key) is not api_key)`,
          ),
        ),
    ]),
  ];
}

/**
 * A feature's created_date: the one an event gave wins over flaghook's estimate (the earliest
 * change it saw of the feature), and a later given one over an earlier given one.
 */
function featureUpserts(db: Db, messages: readonly IngestMessage[], at: number): Statement[] {
  const rows = new Map<string, typeof features.$inferInsert>();
  for (const m of messages) {
    const f = m.event.feature;
    if (!f) continue;
    const key = `${m.orgId}:${f.id}`;
    const given = f.created_date ?? null;
    const row = { orgId: m.orgId, id: f.id, projectId: m.event.project?.id ?? null, name: f.name, createdDate: given ?? changeDate(m), createdDateGiven: given !== null, updatedAt: at };
    const earlier = rows.get(key);
    if (earlier) {
      row.projectId ??= earlier.projectId ?? null;
      if (!row.createdDateGiven && (earlier.createdDateGiven || earlier.createdDate < row.createdDate)) {
        row.createdDate = earlier.createdDate;
        row.createdDateGiven = earlier.createdDateGiven;
      }
    }
    rows.set(key, row);
  }
  return [...rows.values()].map((row) =>
    db
      .insert(features)
      .values(row)
      .onConflictDoUpdate({
        target: [features.orgId, features.id],
        set: {
          name: sql.raw("coalesce(excluded.name, name)"),
          projectId: sql.raw("coalesce(excluded.project_id, project_id)"),
          createdDate: sql.raw(
            "case when excluded.created_date_given then excluded.created_date when created_date_given then created_date else min(created_date, excluded.created_date) end",
          ),
          createdDateGiven: sql.raw("max(created_date_given, excluded.created_date_given)"),
          updatedAt: at,
        },
        // Only when something changes (updated_at says when the feature's row last changed).
        setWhere: sql.raw(
          "coalesce(excluded.name, name) is not name or coalesce(excluded.project_id, project_id) is not project_id" +
            " or excluded.created_date_given > created_date_given" +
            " or (excluded.created_date_given = created_date_given and excluded.created_date is not created_date" +
            " and (excluded.created_date_given or excluded.created_date < created_date))",
        ),
      }),
  );
}

/** What fan-out needs of an audit entry: its stored fields (and internal id) and the event it records. */
export type FanOutEntry = StoredAuditEntry & { id: number; eventId: string; event: ChangeEvent };

const fanOutColumns = {
  id: auditEntries.id,
  seq: auditEntries.seq,
  orgId: auditEntries.orgId,
  eventId: auditEntries.eventId,
  createdDate: auditEntries.createdDate,
  log: auditEntries.log,
  author: auditEntries.author,
  projectId: auditEntries.projectId,
  projectName: auditEntries.projectName,
  environmentId: auditEntries.environmentId,
  environmentName: auditEntries.environmentName,
  environmentApiKey: auditEntries.environmentApiKey,
  scopeExtras: auditEntries.scopeExtras,
  relatedObjectId: auditEntries.relatedObjectId,
  relatedObjectType: auditEntries.relatedObjectType,
  relatedObjectUuid: auditEntries.relatedObjectUuid,
  isSystemEvent: auditEntries.isSystemEvent,
};

/** A stored entry as fan-out takes it (the sweeper's stranded entries). */
export const fanOutEntry = (row: AuditEntryRow): FanOutEntry => ({ ...row, event: JSON.parse(row.event) as ChangeEvent });

/** The audit columns an insert writes, in the order of `auditEntryRow` (seq and the watermark last: computed in SQL). */
const auditInsertColumns: Column[] = [
  auditEntries.orgId, auditEntries.eventId, auditEntries.type, auditEntries.createdDate, auditEntries.log,
  auditEntries.searchText, auditEntries.authorId, auditEntries.authorEmail, auditEntries.author, auditEntries.apiKeyName,
  auditEntries.projectId, auditEntries.projectName, auditEntries.environmentId, auditEntries.environmentName,
  auditEntries.environmentApiKey, auditEntries.scopeExtras, auditEntries.relatedObjectId, auditEntries.relatedObjectType, auditEntries.relatedObjectUuid, auditEntries.isSystemEvent,
  auditEntries.event, auditEntries.submitterType, auditEntries.submitterId, auditEntries.submitterName,
  auditEntries.receivedAt, auditEntries.sortTime, auditEntries.recordedAt, auditEntries.seq, auditEntries.sortWatermark,
];
const position = (column: Column) => auditInsertColumns.indexOf(column);
const orgOf = `value ->> ${position(auditEntries.orgId)}`;
const sortOf = `value ->> ${position(auditEntries.sortTime)}`;

const auditInsertSql = {
  expressions: {
    // Names the event left out come from what earlier events said about the project/environment.
    project_name: `coalesce(value ->> ${position(auditEntries.projectName)}, (select name from projects where org_id = ${orgOf} and id = value ->> ${position(auditEntries.projectId)}))`,
    environment_name: `coalesce(value ->> ${position(auditEntries.environmentName)}, (select name from environments where org_id = ${orgOf} and id = value ->> ${position(auditEntries.environmentId)}))`,
    environment_api_key: `coalesce(value ->> ${position(auditEntries.environmentApiKey)}, (select api_key from environments where org_id = ${orgOf} and id = value ->> ${position(auditEntries.environmentId)}))`,
    // The organisation's next numbers, in message order. SQLite reads the whole SELECT before it
    // inserts a row, and a D1 batch is one transaction on its single writer: no two entries of an
    // organisation get one number, and none is skipped (the unique index audit_seq would fail the batch).
    seq: `coalesce((select max(a.seq) from audit_entries a where a.org_id = ${orgOf}), 0) + row_number() over (partition by ${orgOf} order by key)`,
    // The latest sort time so far in seq order (the organisation's last entry's watermark, then this
    // batch's entries up to this one), kept only when it is later than this entry's own.
    sort_wm: `nullif(max(
      coalesce((select coalesce(a.sort_wm, a.sort_time) from audit_entries a where a.org_id = ${orgOf} order by a.seq desc limit 1), ''),
      max(${sortOf}) over (partition by ${orgOf} order by key)), ${sortOf})`,
  },
  // An event recorded meanwhile (a duplicate message) takes no number.
  where: `not exists (select 1 from audit_event_ids a where a.org_id = ${orgOf} and a.event_id = value ->> ${position(auditEntries.eventId)})`,
  onConflict: "fail" as const,
  returning: Object.values(fanOutColumns),
};

/** Inserts the entries; each statement answers the rows it inserted (fan-out's columns). */
function insertAuditEntries(messages: readonly IngestMessage[], recordedAt: number) {
  return insertRows(auditEntries, auditInsertColumns, messages.map((m) => auditEntryRow(m, recordedAt)), auditInsertSql);
}

function auditEntryRow(m: IngestMessage, recordedAt: number): unknown[] {
  const createdDate = changeDate(m);
  // A message without a submitter was queued before provenance was recorded: system as then.
  const system = m.submitter === undefined ? undefined : m.system === true;
  const f = auditFields(m.orgId, m.event, createdDate, system);
  const by = m.submitter ?? null;
  return [
    f.orgId, m.eventId, f.type, f.createdDate, f.log, f.searchText, f.authorId, f.authorEmail, f.author, f.apiKeyName,
    f.projectId, f.projectName, f.environmentId, f.environmentName, f.environmentApiKey, f.scopeExtras, f.relatedObjectId, f.relatedObjectType,
    f.relatedObjectUuid, f.isSystemEvent ? 1 : 0, JSON.stringify(m.event), by?.type ?? null, by?.id ?? null, by?.name ?? null,
    m.receivedAt, sortTime(createdDate, m.receivedAt), recordedAt, null, null,
  ];
}

/** An inserted row as the insert's RETURNING gives it (column names, 0/1 for booleans). */
function returnedEntry(row: Record<string, unknown>, event: ChangeEvent): FanOutEntry {
  const entry = Object.fromEntries(Object.entries(fanOutColumns).map(([key, column]) => [key, row[column.name]]));
  return { ...(entry as Omit<FanOutEntry, "event">), isSystemEvent: Boolean(entry.isSystemEvent), event };
}

/** The entries of these (already recorded) events that have no deliveries yet. */
async function notFannedOut(db: Db, messages: readonly IngestMessage[]): Promise<FanOutEntry[]> {
  const entries: FanOutEntry[] = [];
  for (const [orgId, group] of groupBy(messages, (m) => m.orgId)) {
    const ids = group.map((m) => m.eventId);
    const seqs = db.select({ seq: auditEventIds.seq }).from(auditEventIds).where(and(eq(auditEventIds.orgId, orgId), inJson(auditEventIds.eventId, ids)));
    const rows = await db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.orgId, orgId), inArray(auditEntries.seq, seqs), eq(auditEntries.fannedOut, false)));
    entries.push(...rows.map(fanOutEntry));
  }
  return entries;
}

/** Also called by the sweeper for entries a crash left without deliveries. */
export async function fanOutEntries(env: Env, entries: readonly FanOutEntry[]): Promise<void> {
  if (!entries.length) return;
  const db = database(env.DB);
  const orgIds = [...new Set(entries.map((e) => e.orgId))];
  const hooks = await enabledWebhooks(db, orgIds);
  const needsProjectEnvironments = entries.filter((e) => e.environmentId == null && e.projectId != null);
  const projectEnvironments = needsProjectEnvironments.length
    ? await db
        .select({ orgId: environments.orgId, projectId: environments.projectId, id: environments.id, name: environments.name })
        .from(environments)
        .where(
          and(
            inArray(environments.orgId, orgIds),
            inArray(environments.projectId, [...new Set(needsProjectEnvironments.map((e) => e.projectId!))]),
          ),
        )
    : [];
  const createdDates = await featureCreatedDates(db, entries);
  const at = now();
  const writes: Statement[] = [];
  const rows: unknown[][] = [];
  const queued: string[] = [];
  for (const entry of entries) {
    const subscribers = hooks.filter((h) => h.orgId === entry.orgId);
    const planned = planDeliveries({
      event: entry.event,
      auditData: auditData(entry),
      timestamp: entry.createdDate,
      webhooks: subscribers,
      projectEnvironments: projectEnvironments.filter((e) => e.orgId === entry.orgId && e.projectId === entry.projectId),
      projectName: entry.projectName,
      featureCreatedDate: entry.event.feature ? createdDates.get(`${entry.orgId}:${entry.event.feature.id}`) : null,
    });
    for (const p of planned) {
      const id = await deliveryId(entry.id, p.webhookId, p.eventType, p.environmentId);
      queued.push(id);
      rows.push(deliveryRow({ id, orgId: entry.orgId, auditEntryId: entry.id, eventId: entry.eventId }, p, at));
    }
  }
  writes.push(...insertDeliveries(rows));
  // Entries are marked in the database holding their log: with the deliveries in one batch when that
  // is DB, else after them (a crash between leaves the mark to the sweeper; delivery ids repeat, so
  // the deliveries are not written twice).
  const marks = new Map<Db, Statement[]>();
  for (const [logDb, placed] of await byDatabase(env, orgIds)) {
    const ids = entries.filter((e) => placed.includes(e.orgId)).map((e) => e.id);
    marks.set(logDb, [logDb.update(auditEntries).set({ fannedOut: true }).where(inJson(auditEntries.id, ids))]);
  }
  await runBatch(db, [...writes, ...(marks.get(db) ?? [])]);
  for (const [logDb, statements] of marks) if (logDb !== db) await runBatch(logDb, statements);
  await enqueueDeliveries(env, queued.map((id) => ({ id, attempt: 0 })));
}

/** The stored created_date of features whose flag events leave it out (one read per batch, often none). */
async function featureCreatedDates(db: Db, entries: readonly FanOutEntry[]): Promise<Map<string, string>> {
  const wanted = entries.filter((e) => !e.event.relayed && e.event.feature && !e.event.feature.created_date && flagEventType(e.event));
  const dates = new Map<string, string>();
  for (const [orgId, group] of groupBy(wanted, (e) => e.orgId)) {
    const rows = await db
      .select({ id: features.id, createdDate: features.createdDate })
      .from(features)
      .where(and(eq(features.orgId, orgId), inJson(features.id, [...new Set(group.map((e) => e.event.feature!.id))])));
    for (const r of rows) dates.set(`${orgId}:${r.id}`, r.createdDate);
  }
  return dates;
}

/**
 * The relayed_events row and the deliveries of each relayed flag event not yet recorded, to be
 * written in the recorder's one batch: either both land or neither, so nothing needs recovering.
 */
async function relayWrites(db: Db, fresh: readonly IngestMessage[], at: number) {
  const writes: Statement[] = [];
  const queued: string[] = [];
  const rows: unknown[][] = [];
  if (!fresh.length) return { fresh, writes, queued };
  const hooks = await enabledWebhooks(db, [...new Set(fresh.map((m) => m.orgId))]);
  for (const m of fresh) {
    const relayed = m.event.relayed!;
    const planned = planRelayed(m.event, hooks.filter((h) => h.orgId === m.orgId));
    writes.push(
      db
        .insert(relayedEvents)
        .values({
          orgId: m.orgId,
          eventId: m.eventId,
          sourceId: relayed.source,
          eventType: relayed.event_type as "FLAG_UPDATED" | "FLAG_DELETED",
          environmentId: m.event.environment!.id,
          receivedAt: m.receivedAt,
          recordedAt: at,
        })
        .onConflictDoNothing(),
    );
    for (const p of planned) {
      const id = await deliveryId(m.eventId, p.webhookId, p.eventType, p.environmentId);
      queued.push(id);
      rows.push(deliveryRow({ id, orgId: m.orgId, auditEntryId: null, eventId: m.eventId }, p, at));
    }
  }
  writes.push(...insertDeliveries(rows));
  return { fresh, writes, queued };
}

/** The messages whose event id `table` does not hold yet (one read per organisation). */
async function unrecorded(
  db: Db,
  messages: readonly IngestMessage[],
  table: typeof auditEventIds | typeof relayedEvents,
): Promise<IngestMessage[]> {
  const fresh = new Map(messages.map((m) => [`${m.orgId}:${m.eventId}`, m]));
  for (const [orgId, group] of groupBy(messages, (m) => m.orgId)) {
    const ids = [...new Set(group.map((m) => m.eventId))];
    const known = await db
      .select({ eventId: table.eventId })
      .from(table)
      .where(and(eq(table.orgId, orgId), inJson(table.eventId, ids)));
    for (const k of known) fresh.delete(`${orgId}:${k.eventId}`);
  }
  return [...fresh.values()];
}
