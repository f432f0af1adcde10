// Reading deliveries and their attempts; redelivering one, or recovering a webhook's failures.
import { and, asc, desc, eq, getTableColumns, gte, inArray, isNotNull, lt, ne, or, sql, type SQL } from "drizzle-orm";
import type { Submitter } from "../domain/provenance";
import { isoTime, now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { chunk } from "../domain/collections";
import { database, runBatch, type Db } from "../db/client";
import { inJson } from "../db/bulk";
import { auditEventIds } from "../db/derived";
import { inPrimary, logDatabase } from "../db/placement";
import { attempts, deliveries, webhooks, type AttemptRow, type DeliveryRow } from "../db/schema";
import { enqueueDeliveries } from "../queues";
import type { Env } from "../env";
import { recordSystemEvent } from "../ingest/system-events";
import { checkUrl } from "./webhooks";

export type DeliveryStatus = DeliveryRow["status"];
export type DeliveryCursor = [number, string];

/** A delivery with the number (seq) of its audit entry, which the API calls the entry's id. */
export type DeliveryView = DeliveryRow & { auditSeq: number | null };

/**
 * Deliveries joined to their audit entry's seq, through the event id (the event ids table outlives
 * entries moved to the archive); deliveries without an entry (relayed flag events) find none.
 */
const selectDeliveries = (db: Db) =>
  db
    .select({ ...getTableColumns(deliveries), auditSeq: auditEventIds.seq })
    .from(deliveries)
    .leftJoin(auditEventIds, and(isNotNull(deliveries.auditEntryId), eq(auditEventIds.orgId, deliveries.orgId), eq(auditEventIds.eventId, deliveries.eventId)));

export function deliveryOut(d: DeliveryView) {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    event_id: d.eventId,
    audit_entry_id: d.auditSeq,
    event_type: d.eventType,
    test: d.kind === "test",
    status: d.status,
    attempt_count: d.attemptCount,
    next_attempt_at: d.status === "pending" ? isoTime(d.nextAttemptAt) : null,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: isoTime(d.createdAt),
    updated_at: isoTime(d.updatedAt),
  };
}

export function attemptOut(a: AttemptRow) {
  return {
    number: a.number,
    attempted_at: isoTime(a.attemptedAt),
    status_code: a.statusCode,
    duration_ms: a.durationMs,
    error: a.error,
    response_body: a.responseBody,
  };
}

/** A webhook's deliveries, newest first, optionally of one status. */
export async function listDeliveries(
  env: Env,
  webhookId: string,
  options: { status?: DeliveryStatus; limit: number; after?: DeliveryCursor },
) {
  const conditions: (SQL | undefined)[] = [eq(deliveries.webhookId, webhookId)];
  if (options.status) conditions.push(eq(deliveries.status, options.status));
  if (options.after) {
    const [createdAt, id] = options.after;
    conditions.push(or(lt(deliveries.createdAt, createdAt), and(eq(deliveries.createdAt, createdAt), lt(deliveries.id, id))));
  }
  const rows = await selectDeliveries(database(env.DB))
    .where(and(...conditions))
    .orderBy(desc(deliveries.createdAt), desc(deliveries.id))
    .limit(options.limit + 1);
  const page = rows.length ? await withAuditSeqs(env, rows[0].orgId, rows.slice(0, options.limit)) : [];
  const last = page.at(-1);
  return { rows: page, next: rows.length > options.limit && last ? ([last.createdAt, last.id] as DeliveryCursor) : null };
}

export async function findDelivery(env: Env, orgId: number, id: string): Promise<DeliveryView> {
  const [row] = await selectDeliveries(database(env.DB)).where(and(eq(deliveries.orgId, orgId), eq(deliveries.id, id)));
  if (!row) throw notFound("delivery");
  return (await withAuditSeqs(env, orgId, [row]))[0];
}

/**
 * The join above finds audit entries in DB only: an organisation whose log lives in another
 * database (src/db/placement.ts) has its entries' seqs looked up there.
 */
async function withAuditSeqs(env: Env, orgId: number, rows: DeliveryView[]): Promise<DeliveryView[]> {
  const eventIds = rows.flatMap((r) => (r.auditEntryId !== null && r.eventId !== null ? [r.eventId] : []));
  if (!eventIds.length || (await inPrimary(env, orgId))) return rows;
  const found = await (await logDatabase(env, orgId))
    .select({ eventId: auditEventIds.eventId, seq: auditEventIds.seq })
    .from(auditEventIds)
    .where(and(eq(auditEventIds.orgId, orgId), inJson(auditEventIds.eventId, eventIds)));
  const seqs = new Map(found.map((f) => [f.eventId, f.seq]));
  return rows.map((r) => (r.auditEntryId !== null && r.eventId !== null ? { ...r, auditSeq: seqs.get(r.eventId) ?? null } : r));
}

export async function deliveryWithAttempts(env: Env, orgId: number, id: string) {
  const db = database(env.DB);
  const delivery = await findDelivery(env, orgId, id);
  const rows = await db.select().from(attempts).where(eq(attempts.deliveryId, id)).orderBy(asc(attempts.number));
  return { ...deliveryOut(delivery), payload: delivery.payload, attempts: rows.map(attemptOut) };
}

/**
 * Sends a delivery again, same bytes and same webhook-id, starting a fresh retry cycle.
 * A delivery still pending is left to its schedule.
 */
export async function redeliver(env: Env, orgId: number, id: string, by: Submitter) {
  const db = database(env.DB);
  const delivery = await findDelivery(env, orgId, id);
  const [hook] = await db
    .select({ id: webhooks.id, enabled: webhooks.enabled, name: webhooks.name, environmentId: webhooks.environmentId, url: webhooks.url })
    .from(webhooks)
    .where(eq(webhooks.id, delivery.webhookId));
  if (!hook?.enabled) throw new ApiError(409, "webhook_disabled", "enable the webhook before redelivering to it");
  if (delivery.status === "pending") {
    throw new ApiError(409, "delivery_pending", "this delivery is still pending: POST /api/v1/deliveries/{id}/retry makes its next attempt now");
  }
  await checkUrl(env, hook.url); // the policy may have tightened, or the name moved, since the webhook was saved
  const [row] = await db
    .update(deliveries)
    .set({ status: "pending", cycleStart: delivery.attemptCount, nextAttemptAt: now(), updatedAt: now() })
    .where(and(eq(deliveries.id, id), eq(deliveries.attemptCount, delivery.attemptCount)))
    .returning();
  if (!row) throw new ApiError(409, "delivery_busy", "the delivery changed while redelivering; try again");
  await enqueueDeliveries(env, [{ id, attempt: row.attemptCount }]);
  await recordSystemEvent(env, orgId, { log: `Delivery redelivered: ${id} to ${hook.name}`, webhook: hook }, by);
  return deliveryOut({ ...row, auditSeq: delivery.auditSeq });
}

/**
 * An attempt is in flight while the delivery is claimed (attempt_count counts it) and its result is
 * not stored yet, within its lease: the consumer's claim moved next_attempt_at past now. Past the
 * lease its worker is taken for dead, as the sweeper does.
 */
export const attemptInFlight = (d: Pick<DeliveryRow, "status" | "attemptCount" | "nextAttemptAt">, lastAttempt: number | null, at: number) =>
  d.status === "pending" && d.attemptCount > 0 && lastAttempt !== d.attemptCount && (d.nextAttemptAt ?? 0) > at;

/**
 * "Retry now": the next attempt of a pending delivery is made at once rather than when its schedule
 * says; it counts as that attempt (the schedule goes on after it), and every earlier attempt stays.
 * The queue's claim sends each attempt number once, so the message already queued for it finds
 * nothing left to do. Refused while an attempt is in flight: it would be sent twice at once.
 */
export async function retryNow(env: Env, orgId: number, id: string, by: Submitter) {
  const db = database(env.DB);
  const delivery = await findDelivery(env, orgId, id);
  if (delivery.status !== "pending") {
    throw new ApiError(409, "delivery_not_pending", `this delivery is ${delivery.status}: retry now is for pending deliveries; redeliver sends it again`);
  }
  if (delivery.kind === "test") throw new ApiError(409, "test_delivery", "a test is sent once; send a new test instead");
  const [hook] = await db
    .select({ id: webhooks.id, enabled: webhooks.enabled, name: webhooks.name, environmentId: webhooks.environmentId, url: webhooks.url })
    .from(webhooks)
    .where(eq(webhooks.id, delivery.webhookId));
  if (!hook?.enabled) throw new ApiError(409, "webhook_disabled", "enable the webhook before retrying to it");
  await checkUrl(env, hook.url);
  const at = now();
  // Only while nothing is in flight: the last claimed attempt is stored, or its lease has run out.
  const [row] = await db
    .update(deliveries)
    .set({ nextAttemptAt: at, updatedAt: at })
    .where(
      and(
        eq(deliveries.id, id),
        eq(deliveries.status, "pending"),
        eq(deliveries.attemptCount, delivery.attemptCount),
        sql`(${deliveries.attemptCount} = 0 or ${deliveries.nextAttemptAt} <= ${at} or exists (select 1 from ${attempts} where ${attempts.deliveryId} = ${deliveries.id} and ${attempts.number} = ${deliveries.attemptCount}))`,
      ),
    )
    .returning();
  if (!row) {
    const [latest] = await selectDeliveries(db).where(eq(deliveries.id, id));
    if (latest?.status === "pending" && latest.attemptCount !== delivery.attemptCount) {
      throw new ApiError(409, "delivery_busy", "the delivery changed while retrying (an attempt just started); try again");
    }
    if (latest?.status !== "pending") throw new ApiError(409, "delivery_not_pending", `this delivery is now ${latest?.status ?? "gone"}`);
    throw new ApiError(409, "attempt_in_flight", "an attempt of this delivery is being made right now; wait for its outcome");
  }
  await enqueueDeliveries(env, [{ id, attempt: row.attemptCount }]);
  await recordSystemEvent(env, orgId, { log: `Delivery retried now: ${id} to ${hook.name}`, webhook: hook }, by);
  return deliveryOut({ ...row, auditSeq: delivery.auditSeq });
}

/** Redelivers every failed delivery of a webhook created at or after `since` (test sends excepted). */
export async function recover(env: Env, webhookId: string, since: number, by: Submitter) {
  const db = database(env.DB);
  const [hook] = await db
    .select({ id: webhooks.id, orgId: webhooks.orgId, enabled: webhooks.enabled, name: webhooks.name, environmentId: webhooks.environmentId, url: webhooks.url })
    .from(webhooks)
    .where(eq(webhooks.id, webhookId));
  if (!hook?.enabled) throw new ApiError(409, "webhook_disabled", "enable the webhook before recovering its deliveries");
  await checkUrl(env, hook.url);
  const failed = await db
    .select({ id: deliveries.id, attemptCount: deliveries.attemptCount })
    .from(deliveries)
    // Test sends were sent by hand, once: they are never sent again by a recovery.
    .where(and(eq(deliveries.webhookId, webhookId), eq(deliveries.status, "failed"), ne(deliveries.kind, "test"), gte(deliveries.createdAt, since)));
  const at = now();
  for (let i = 0; i < failed.length; i += 50) {
    const part = failed.slice(i, i + 50);
    await runBatch(
      db,
      part.map((d) =>
        db
          .update(deliveries)
          .set({ status: "pending", cycleStart: d.attemptCount, nextAttemptAt: at, updatedAt: at })
          .where(and(eq(deliveries.id, d.id), eq(deliveries.status, "failed"))),
      ),
    );
  }
  await enqueueDeliveries(env, failed.map((d) => ({ id: d.id, attempt: d.attemptCount })));
  if (failed.length) {
    const log = `Failed deliveries recovered: ${failed.length} since ${isoTime(since)} to ${hook.name}`;
    await recordSystemEvent(env, hook.orgId, { log, webhook: hook }, by);
  }
  return { recovered: failed.length };
}

/** The attempts of several deliveries at once (a page of them), in order, by delivery id. */
export async function attemptsOf(db: Db, deliveryIds: readonly string[]): Promise<Map<string, ReturnType<typeof attemptOut>[]>> {
  const byDelivery = new Map<string, ReturnType<typeof attemptOut>[]>(deliveryIds.map((id) => [id, []]));
  for (const ids of chunk(deliveryIds, 90)) {
    const rows = await db.select().from(attempts).where(inArray(attempts.deliveryId, ids)).orderBy(asc(attempts.deliveryId), asc(attempts.number));
    for (const row of rows) byDelivery.get(row.deliveryId)?.push(attemptOut(row));
  }
  return byDelivery;
}
