// Turns accepted change events into audit entries and deliveries. Used by the ingest queue
// consumer, by ingest itself when the queue refuses a message, and by the sweeper.
import { and, eq, inArray, sql, type Column } from "drizzle-orm";
import { auditData, auditFields, type StoredAuditEntry } from "../domain/audit";
import { isoMicro, now } from "../domain/clock";
import { groupBy } from "../domain/collections";
import { sha256 } from "../domain/crypto";
import { base32 } from "../domain/ids";
import type { ChangeEvent } from "../domain/event";
import { planDeliveries, planRelayed, type PlannedDelivery, type Subscriber } from "../domain/fanout";
import type { WebhookEventType } from "../domain/payload";
import { inJson, insertRows } from "../db/bulk";
import { database, runBatch, type Db, type Statement } from "../db/client";
import { auditEntries, deliveries, environments, projects, relayedEvents, webhooks, type AuditEntryRow } from "../db/schema";
import { enqueueDeliveries } from "../delivery/enqueue";
import { flagHistoryWrites } from "../history/record";
import type { Env } from "../env";

export interface IngestMessage {
  orgId: number;
  eventId: string;
  /** Receipt time in ms; the default `created_date`. */
  receivedAt: number;
  event: ChangeEvent;
}

/** Flagsmith's own FLAG_UPDATED / FLAG_DELETED: relayed, not audited (its AUDIT_LOG_CREATED is the entry). */
const isRelayedFlagEvent = (m: IngestMessage) => m.event.relayed != null && m.event.relayed.event_type !== "AUDIT_LOG_CREATED";

/**
 * Records a batch of accepted events idempotently: an event id already recorded changes nothing,
 * and an entry recorded but not yet fanned out (a crash between the two writes) is fanned out now.
 */
export async function recordEvents(env: Env, messages: readonly IngestMessage[]): Promise<void> {
  if (!messages.length) return;
  const db = database(env.DB);
  const recordedAt = now();
  const audited = messages.filter((m) => !isRelayedFlagEvent(m));
  // A replayed event changes nothing, not even the names of its project and environment.
  const fresh = await unrecorded(db, audited, auditEntries);
  const relayed = await relayWrites(db, await unrecorded(db, messages.filter(isRelayedFlagEvent), relayedEvents), recordedAt);
  const upserts = upsertScopes(db, [...fresh, ...relayed.fresh], recordedAt);
  const inserts = insertAuditEntries(fresh, recordedAt);
  // The flag history (src/history/) is projected in the same batch: recorded means projected.
  const history = flagHistoryWrites([...fresh, ...relayed.fresh], recordedAt);
  const results = await runBatch(db, [...upserts, ...inserts, ...relayed.writes, ...history]);
  // The entries just inserted come back from the insert; a replayed event's entry is looked up in
  // case a crash left it without deliveries.
  const events = new Map(fresh.map((m) => [`${m.orgId}:${m.eventId}`, m.event]));
  const inserted = results
    .slice(upserts.length, upserts.length + inserts.length)
    .flat()
    .map((row) => returnedEntry(row, events.get(`${row.org_id}:${row.event_id}`)!));
  const replayed = audited.filter((m) => !events.has(`${m.orgId}:${m.eventId}`));
  await fanOutEntries(env, db, [...inserted, ...(await notFannedOut(db, replayed))]);
  await enqueueDeliveries(env, relayed.queued.map((id) => ({ id, attempt: 0 })));
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
  return [
    ...[...projectRows.values()].map((row) =>
      db.insert(projects).values(row).onConflictDoUpdate({
        target: [projects.orgId, projects.id],
        set: { name: coalesce("name"), updatedAt: at },
      }),
    ),
    ...[...environmentRows.values()].map((row) =>
      db.insert(environments).values(row).onConflictDoUpdate({
        target: [environments.orgId, environments.id],
        set: { name: coalesce("name"), projectId: coalesce("project_id"), apiKey: coalesce("api_key"), updatedAt: at },
      }),
    ),
  ];
}

/** What fan-out needs of an audit entry: its stored fields and the event it records. */
export type FanOutEntry = StoredAuditEntry & { eventId: string; event: ChangeEvent };

const fanOutColumns = {
  id: auditEntries.id,
  orgId: auditEntries.orgId,
  eventId: auditEntries.eventId,
  createdDate: auditEntries.createdDate,
  log: auditEntries.log,
  author: auditEntries.author,
  projectId: auditEntries.projectId,
  projectName: auditEntries.projectName,
  environmentId: auditEntries.environmentId,
  environmentName: auditEntries.environmentName,
  relatedObjectId: auditEntries.relatedObjectId,
  relatedObjectType: auditEntries.relatedObjectType,
  relatedObjectUuid: auditEntries.relatedObjectUuid,
  isSystemEvent: auditEntries.isSystemEvent,
};

/** A stored entry as fan-out takes it (the sweeper's stranded entries). */
export const fanOutEntry = (row: AuditEntryRow): FanOutEntry => ({ ...row, event: JSON.parse(row.event) as ChangeEvent });

/** The audit columns an insert writes, in the order of `auditEntryRow`. */
const auditInsertColumns: Column[] = [
  auditEntries.orgId, auditEntries.eventId, auditEntries.type, auditEntries.createdDate, auditEntries.log,
  auditEntries.searchText, auditEntries.authorId, auditEntries.authorEmail, auditEntries.author, auditEntries.apiKeyName,
  auditEntries.projectId, auditEntries.projectName, auditEntries.environmentId, auditEntries.environmentName,
  auditEntries.relatedObjectId, auditEntries.relatedObjectType, auditEntries.relatedObjectUuid, auditEntries.isSystemEvent,
  auditEntries.event, auditEntries.receivedAt, auditEntries.recordedAt,
];
const position = (column: Column) => auditInsertColumns.indexOf(column);

/** Names the event left out come from what earlier events said about the project/environment. */
const auditNameLookups = {
  project_name: `coalesce(value ->> ${position(auditEntries.projectName)}, (select name from projects where org_id = value ->> ${position(auditEntries.orgId)} and id = value ->> ${position(auditEntries.projectId)}))`,
  environment_name: `coalesce(value ->> ${position(auditEntries.environmentName)}, (select name from environments where org_id = value ->> ${position(auditEntries.orgId)} and id = value ->> ${position(auditEntries.environmentId)}))`,
};

/** Inserts the entries; each statement answers the rows it inserted (fan-out's columns). */
function insertAuditEntries(messages: readonly IngestMessage[], recordedAt: number) {
  const rows = messages.map((m) => auditEntryRow(m, recordedAt));
  return insertRows(auditEntries, auditInsertColumns, rows, {
    expressions: auditNameLookups,
    returning: Object.values(fanOutColumns),
  });
}

function auditEntryRow(m: IngestMessage, recordedAt: number): unknown[] {
  const f = auditFields(m.orgId, m.event, m.event.occurred_at ?? isoMicro(m.receivedAt));
  return [
    f.orgId, m.eventId, f.type, f.createdDate, f.log, f.searchText, f.authorId, f.authorEmail, f.author, f.apiKeyName,
    f.projectId, f.projectName, f.environmentId, f.environmentName, f.relatedObjectId, f.relatedObjectType,
    f.relatedObjectUuid, f.isSystemEvent ? 1 : 0, JSON.stringify(m.event), m.receivedAt, recordedAt,
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
    const rows = await db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.orgId, orgId), inJson(auditEntries.eventId, ids), eq(auditEntries.fannedOut, false)));
    entries.push(...rows.map(fanOutEntry));
  }
  return entries;
}

/** Also called by the sweeper for entries a crash left without deliveries. */
export async function fanOutEntries(env: Env, db: Db, entries: readonly FanOutEntry[]): Promise<void> {
  if (!entries.length) return;
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
    });
    for (const p of planned) {
      const id = await deliveryId(entry.id, p.webhookId, p.eventType, p.environmentId);
      queued.push(id);
      rows.push(deliveryRow({ id, orgId: entry.orgId, auditEntryId: entry.id, eventId: entry.eventId }, p, at));
    }
  }
  writes.push(...insertDeliveries(rows));
  writes.push(db.update(auditEntries).set({ fannedOut: true }).where(inJson(auditEntries.id, entries.map((e) => e.id))));
  await runBatch(db, writes);
  await enqueueDeliveries(env, queued.map((id) => ({ id, attempt: 0 })));
}

async function enabledWebhooks(db: Db, orgIds: number[]): Promise<(Subscriber & { orgId: number })[]> {
  const hooks = await db
    .select({
      id: webhooks.id,
      orgId: webhooks.orgId,
      scope: webhooks.scope,
      environmentId: webhooks.environmentId,
      eventTypes: webhooks.eventTypes,
    })
    .from(webhooks)
    .where(and(inArray(webhooks.orgId, orgIds), eq(webhooks.enabled, true)));
  return hooks.map((h) => ({ ...h, eventTypes: h.eventTypes ? (JSON.parse(h.eventTypes) as WebhookEventType[]) : null }));
}

const deliveryInsertColumns: Column[] = [
  deliveries.id, deliveries.orgId, deliveries.auditEntryId, deliveries.eventId, deliveries.webhookId, deliveries.eventType,
  deliveries.payload, deliveries.status, deliveries.nextAttemptAt, deliveries.createdAt, deliveries.updatedAt,
];

function deliveryRow(
  origin: { id: string; orgId: number; auditEntryId: number | null; eventId: string },
  p: PlannedDelivery,
  at: number,
): unknown[] {
  return [origin.id, origin.orgId, origin.auditEntryId, origin.eventId, p.webhookId, p.eventType, p.payload, "pending", at, at, at];
}

function insertDeliveries(rows: readonly unknown[][]): Statement[] {
  return insertRows(deliveries, deliveryInsertColumns, rows);
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
    const planned = planRelayed(relayed, hooks.filter((h) => h.orgId === m.orgId));
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
  table: typeof auditEntries | typeof relayedEvents,
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

/**
 * Deterministic, so a second fan-out of the same entry (duplicate message, crash) inserts nothing.
 * The origin is the audit entry's id, or the event id of a relayed flag event (which has no entry).
 */
async function deliveryId(origin: number | string, webhookId: string, eventType: string, environmentId: number | null) {
  const digest = await sha256(`${origin}:${webhookId}:${eventType}:${environmentId ?? ""}`);
  return `dlv_${base32(digest.slice(0, 16))}`;
}
