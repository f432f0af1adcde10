// Operational events (SPEC 12), as Svix has them: DELIVERY_FAILED (a delivery used its last attempt),
// WEBHOOK_DISABLED (410 Gone, or failing for WEBHOOK_FAILURE_DISABLE_DAYS) and WEBHOOK_RECOVERED (the
// first success after failures). Each goes to the organisation webhooks subscribed to it, never to the
// webhook it is about, and is recorded as a system audit entry (related object WEBHOOK_HEALTH, whose
// AUDIT_LOG_CREATED skips that webhook too). Their deliveries are `operational`: what becomes of them
// raises no further event, so no notification can cause another.
import { isoTime } from "../domain/clock";
import { planOrganisationEvent, WEBHOOK_HEALTH, type OperationalEventType } from "../domain/fanout";
import { maskedUrl } from "../domain/masked-url";
import { sortedJson } from "../domain/payload";
import type { Db, Statement } from "../db/client";
import { DELIVERY_ROW_LENGTH, deliveryId, deliveryRow, enabledWebhooks, insertDeliveries } from "../db/deliveries";
import type { DeliveryRow, WebhookRow } from "../db/schema";
import type { SystemChange } from "../ingest/system-events";
import type { DeliveryRef } from "../queues";

/** One operational event: what is sent, and the audit entry that records it. */
export interface Notice {
  type: OperationalEventType;
  /** The webhook it is about. */
  webhook: WebhookRow;
  data: Record<string, unknown>;
  /** Makes its deliveries' ids: the same event planned twice is delivered once. */
  origin: string;
  /**
   * What must still hold of the webhook when the consumer's batch runs, before the change this event
   * reports is written: still enabled (about to be disabled) or still failing (about to recover). Of
   * two consumer runs racing to make the same change, only the first sends the event.
   */
  requires: "enabled" | "failing" | null;
  change: SystemChange;
}

const describe = (w: WebhookRow) => `${w.name} (${maskedUrl(w.url)})`;

/** The webhook as operational payloads show it (its URL masked: they go to third-party receivers). */
const webhookData = (w: WebhookRow) => ({ id: w.id, name: w.name, url: maskedUrl(w.url), scope: w.scope, environment: w.environmentId });

const change = (webhook: WebhookRow, log: string): SystemChange => ({ log, webhook, relatedType: WEBHOOK_HEALTH });

export function deliveryFailed(
  delivery: DeliveryRow,
  webhook: WebhookRow,
  last: { number: number; attemptedAt: number; statusCode: number | null; durationMs: number; error: string | null },
  at: number,
): Notice {
  const attempts = last.number - delivery.cycleStart;
  return {
    type: "DELIVERY_FAILED",
    webhook,
    data: {
      webhook: webhookData(webhook),
      delivery: { id: delivery.id, event_type: delivery.eventType, event_id: delivery.eventId, created_at: isoTime(delivery.createdAt), attempts },
      last_attempt: { number: last.number, attempted_at: isoTime(last.attemptedAt), status_code: last.statusCode, duration_ms: last.durationMs, error: last.error },
      failed_at: isoTime(at),
    },
    origin: `DELIVERY_FAILED:${delivery.id}:${delivery.cycleStart}`,
    requires: null,
    change: change(webhook, `Delivery failed: ${delivery.id} (${delivery.eventType}) to ${describe(webhook)} after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${last.error ?? "no answer"}`),
  };
}

export function webhookDisabled(webhook: WebhookRow, reason: string, at: number): Notice {
  return {
    type: "WEBHOOK_DISABLED",
    webhook,
    data: { webhook: webhookData(webhook), reason, failing_since: isoTime(webhook.failingSince), disabled_at: isoTime(at) },
    origin: `WEBHOOK_DISABLED:${webhook.id}:${at}`,
    requires: "enabled",
    change: change(webhook, `Webhook disabled: ${describe(webhook)}: ${reason}`),
  };
}

export function webhookRecovered(webhook: WebhookRow, at: number): Notice {
  const since = isoTime(webhook.failingSince);
  return {
    type: "WEBHOOK_RECOVERED",
    webhook,
    data: { webhook: webhookData(webhook), failing_since: since, recovered_at: isoTime(at) },
    origin: `WEBHOOK_RECOVERED:${webhook.id}:${webhook.failingSince}`,
    requires: "failing",
    change: change(webhook, `Webhook recovered: ${describe(webhook)}: delivered again after failing since ${since}`),
  };
}

/** Appended to each delivery row: the notice's condition and the webhook it is about, read by WHERE. */
const REQUIRES = `value ->> ${DELIVERY_ROW_LENGTH}`;
const ABOUT = `value ->> ${DELIVERY_ROW_LENGTH + 1}`;
const STILL_HOLDS = `(${REQUIRES} is null or exists (select 1 from webhooks w where w.id = ${ABOUT} and case ${REQUIRES} when 'enabled' then w.enabled = 1 else w.failing_since is not null end))`;

/**
 * The deliveries of `notices`, to run in the caller's batch before the changes they report; `queued`
 * says, per notice, what to enqueue once the batch has run and the change was found to be its own.
 */
export async function noticeDeliveries(db: Db, notices: readonly Notice[], at: number): Promise<{ writes: Statement[]; queued: Map<Notice, DeliveryRef[]> }> {
  const queued = new Map<Notice, DeliveryRef[]>();
  if (!notices.length) return { writes: [], queued };
  const subscribers = await enabledWebhooks(db, [...new Set(notices.map((n) => n.webhook.orgId))]);
  const rows: unknown[][] = [];
  for (const notice of notices) {
    const { orgId } = notice.webhook;
    const payload = sortedJson({ data: notice.data, event_type: notice.type });
    const planned = planOrganisationEvent(notice.type, payload, subscribers.filter((w) => w.orgId === orgId), notice.webhook.id);
    const refs: DeliveryRef[] = [];
    for (const p of planned) {
      const id = await deliveryId(notice.origin, p.webhookId, p.eventType, null);
      rows.push([...deliveryRow({ id, orgId, auditEntryId: null, eventId: null }, p, at), notice.requires, notice.webhook.id]);
      refs.push({ id, attempt: 0 });
    }
    queued.set(notice, refs);
  }
  return { writes: insertDeliveries(rows, STILL_HOLDS), queued };
}
