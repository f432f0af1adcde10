// Puts deliveries on the delivery queue. A failed send loses nothing: the row in D1 is the
// truth, and the sweeper re-enqueues pending deliveries that are overdue.
import { chunk, groupBy } from "../domain/collections";
import type { Env } from "../env";
import type { DeliveryMessage, DeliveryRef } from "./consumer";

/** Queues allow at most 12 hours of delay; longer waits are left to the sweeper. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** Deliveries a message carries: few queue operations per event, few enough attempts per consumer run. */
export const DELIVERIES_PER_MESSAGE = 25;

/**
 * Queues deliveries, those due at the same time together in one message. Answers false when the
 * queue refused them (the sweeper will find them in D1).
 */
export async function enqueueDeliveries(env: Env, refs: readonly (DeliveryRef & { delaySeconds?: number })[]): Promise<boolean> {
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
