// AUDIT_CHECKPOINT and AUDIT_VERIFICATION_FAILED: flaghook's events about an organisation's signed
// log, delivered to its organisation webhooks that subscribe to them.
import { planOrganisationEvent, type AuditLogEventType } from "../domain/fanout";
import { sortedJson } from "../domain/payload";
import type { Db, Statement } from "../db/client";
import { deliveryId, deliveryRow, enabledWebhooks, insertDeliveries } from "../db/deliveries";
import type { DeliveryRef } from "../queues";

/**
 * The deliveries of one such event, to be written in the caller's batch and queued after it.
 * `origin` makes their ids: the same event planned twice is delivered once.
 */
export async function logEventDeliveries(
  db: Db,
  orgId: number,
  eventType: AuditLogEventType,
  data: Record<string, unknown>,
  origin: string,
  at: number,
): Promise<{ writes: Statement[]; queued: DeliveryRef[] }> {
  const payload = sortedJson({ data, event_type: eventType });
  const planned = planOrganisationEvent(eventType, payload, await enabledWebhooks(db, [orgId]));
  const rows: unknown[][] = [];
  const queued: DeliveryRef[] = [];
  for (const p of planned) {
    const id = await deliveryId(origin, p.webhookId, p.eventType, null);
    rows.push(deliveryRow({ id, orgId, auditEntryId: null, eventId: null }, p, at));
    queued.push({ id, attempt: 0 });
  }
  return { writes: insertDeliveries(rows), queued };
}
