// Writing deliveries as fan-out plans them (the recorder's, and sealing's AUDIT_CHECKPOINT), and the
// webhooks that receive them.
import { and, eq, inArray, type Column } from "drizzle-orm";
import { sha256 } from "../domain/crypto";
import type { PlannedDelivery, Subscriber, WebhookEventType } from "../domain/fanout";
import { base32 } from "../domain/ids";
import { insertRows } from "./bulk";
import type { Db, Statement } from "./client";
import { deliveries, webhooks } from "./schema";

export async function enabledWebhooks(db: Db, orgIds: number[]): Promise<(Subscriber & { orgId: number })[]> {
  const hooks = await db
    .select({
      id: webhooks.id,
      orgId: webhooks.orgId,
      scope: webhooks.scope,
      environmentId: webhooks.environmentId,
      eventTypes: webhooks.eventTypes,
      changedBy: webhooks.changedBy,
    })
    .from(webhooks)
    .where(and(inArray(webhooks.orgId, orgIds), eq(webhooks.enabled, true)));
  return hooks.map((h) => ({ ...h, eventTypes: h.eventTypes ? (JSON.parse(h.eventTypes) as WebhookEventType[]) : null }));
}

const deliveryInsertColumns: Column[] = [
  deliveries.id, deliveries.orgId, deliveries.auditEntryId, deliveries.eventId, deliveries.webhookId, deliveries.eventType,
  deliveries.payload, deliveries.status, deliveries.nextAttemptAt, deliveries.createdAt, deliveries.updatedAt, deliveries.kind,
];

/** Where a row's own values end: a caller may append more, for its `where` to read (value ->> DELIVERY_ROW_LENGTH, ...). */
export const DELIVERY_ROW_LENGTH = deliveryInsertColumns.length;

export function deliveryRow(
  origin: { id: string; orgId: number; auditEntryId: number | null; eventId: string | null },
  p: PlannedDelivery,
  at: number,
): unknown[] {
  return [origin.id, origin.orgId, origin.auditEntryId, origin.eventId, p.webhookId, p.eventType, p.payload, "pending", at, at, at, p.kind ?? "event"];
}

/** `where` (SQL over `value`) skips rows, as in insertRows. */
export function insertDeliveries(rows: readonly unknown[][], where?: string): Statement[] {
  return insertRows(deliveries, deliveryInsertColumns, rows, where ? { where } : {});
}

/**
 * Deterministic, so a second fan-out of the same entry (duplicate message, crash) inserts nothing.
 * The origin is the audit entry's internal id, the event id of a relayed flag event (which has no
 * entry), or a checkpoint's key.
 */
export async function deliveryId(origin: number | string, webhookId: string, eventType: string, environmentId: number | null) {
  const digest = await sha256(`${origin}:${webhookId}:${eventType}:${environmentId ?? ""}`);
  return `dlv_${base32(digest.slice(0, 16))}`;
}
