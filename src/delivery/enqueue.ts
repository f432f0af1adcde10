// Puts deliveries on the delivery queue. A failed send loses nothing: the row in D1 is the
// truth, and the sweeper re-enqueues pending deliveries that are overdue.
import { chunk } from "../db/client";
import type { Env } from "../env";
import type { DeliveryMessage } from "./consumer";

/** Queues allow at most 12 hours of delay; longer waits are left to the sweeper. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

export async function enqueueDeliveries(
  env: Env,
  messages: readonly (DeliveryMessage & { delaySeconds?: number })[],
): Promise<boolean> {
  const sendable = messages.filter((m) => (m.delaySeconds ?? 0) <= MAX_QUEUE_DELAY_SECONDS);
  try {
    for (const part of chunk(sendable, 100)) {
      await env.DELIVERY_QUEUE.sendBatch(
        part.map(({ id, attempt, delaySeconds }) => ({ body: { id, attempt }, delaySeconds: delaySeconds || undefined })),
      );
    }
    return true;
  } catch (err) {
    console.warn(`delivery queue send failed, the sweeper will re-enqueue: ${String(err)}`);
    return false;
  }
}
