// Workers Analytics Engine, when the optional DELIVERY_ANALYTICS binding is there: one data point per
// attempt, for dashboards and alerts over every webhook (README, "Delivery health"). writeDataPoint
// neither waits nor fails the attempt; without the binding nothing happens.
import type { DeliveryKind, WebhookEventType } from "../domain/fanout";

/** blob1 of a data point: what became of the attempt. */
export type AttemptOutcome = "delivered" | "retrying" | "failed" | "refused";

export interface AttemptPoint {
  webhookId: string;
  orgId: number;
  deliveryId: string;
  eventType: WebhookEventType;
  kind: DeliveryKind;
  outcome: AttemptOutcome;
  statusCode: number | null;
  durationMs: number;
  number: number;
  error: string | null;
}

/**
 * index1 webhook id; blob1 outcome, blob2 event type, blob3 kind (event / test / operational),
 * blob4 organisation id, blob5 delivery id, blob6 error; double1 status code (0: none),
 * double2 duration ms, double3 attempt number.
 */
export function writeAttemptPoint(dataset: AnalyticsEngineDataset | undefined, p: AttemptPoint): void {
  dataset?.writeDataPoint({
    indexes: [p.webhookId],
    blobs: [p.outcome, p.eventType, p.kind, String(p.orgId), p.deliveryId, p.error?.slice(0, 1000) ?? ""],
    doubles: [p.statusCode ?? 0, p.durationMs, p.number],
  });
}
