// The ingest queue consumer: records a whole batch at once; if that fails, one message at a time,
// so one bad message cannot hold the others back. Failures are retried by the queue.
import type { Env } from "../env";
import type { IngestMessage } from "../queues";
import { recordEvents } from "./record";

export async function recordBatch(env: Env, batch: MessageBatch<IngestMessage>): Promise<void> {
  try {
    await recordEvents(env, batch.messages.map((m) => m.body));
    batch.ackAll();
    return;
  } catch (err) {
    console.warn(`recording a batch of ${batch.messages.length} failed, retrying one by one: ${String(err)}`);
  }
  for (const message of batch.messages) {
    try {
      await recordEvents(env, [message.body]);
      message.ack();
    } catch (err) {
      console.error(`recording ${message.body.eventId} failed (attempt ${message.attempts}): ${String(err)}`);
      message.retry({ delaySeconds: Math.min(60, 2 ** message.attempts) });
    }
  }
}
