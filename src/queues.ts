// The queue messages, a contract between producers and consumers, and the delivery producer.
// Producers, consumers and env.ts import them from here (and nothing else of each other's).
import { chunk, groupBy } from "./domain/collections";
import type { ChangeEvent } from "./domain/event";
import type { Submitter } from "./domain/provenance";

/** One accepted change event on its way to the recorder (ingest queue). */
export interface IngestMessage {
  orgId: number;
  eventId: string;
  /** Receipt time in ms; the default `created_date`. */
  receivedAt: number;
  event: ChangeEvent;
  /** Who submitted it. Absent only in messages queued before flaghook recorded provenance. */
  submitter?: Submitter | null;
  /** An entry flaghook writes about itself (src/ingest/system-events.ts); never set from a request body. */
  system?: boolean;
}

/** One attempt of one delivery to make. */
export interface DeliveryRef {
  id: string;
  /** attempt_count the delivery had when this was queued; any other value marks a duplicate. */
  attempt: number;
}

/** A delivery queue message: the attempts fan-out or a retry made due at the same time. */
export interface DeliveryMessage {
  deliveries: DeliveryRef[];
}

export type QueueMessage = IngestMessage | DeliveryMessage;

/** Queues allow at most 12 hours of delay; longer waits are left to the sweeper. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** Deliveries a message carries: few queue operations per event, few enough attempts per consumer run. */
export const DELIVERIES_PER_MESSAGE = 25;

/**
 * Queues deliveries, those due at the same time together in one message. Answers false when the
 * queue refused them: a failed send loses nothing, the row in D1 is the truth and the sweeper
 * re-enqueues pending deliveries that are overdue.
 */
export async function enqueueDeliveries(
  env: { DELIVERY_QUEUE: Queue<DeliveryMessage> },
  refs: readonly (DeliveryRef & { delaySeconds?: number })[],
): Promise<boolean> {
  const sendable = refs.filter((r) => (r.delaySeconds ?? 0) <= MAX_QUEUE_DELAY_SECONDS);
  const messages: MessageSendRequest<DeliveryMessage>[] = [];
  for (const [delaySeconds, group] of groupBy(sendable, (r) => r.delaySeconds ?? 0)) {
    for (const part of chunk(group, DELIVERIES_PER_MESSAGE)) {
      messages.push({ body: { deliveries: part.map(({ id, attempt }) => ({ id, attempt })) }, delaySeconds: delaySeconds || undefined });
    }
  }
  try {
    for (const part of chunk(messages, 100)) await env.DELIVERY_QUEUE.sendBatch(part);
    return true;
  } catch (err) {
    console.warn(`delivery queue send failed, the sweeper will re-enqueue: ${String(err)}`);
    return false;
  }
}
