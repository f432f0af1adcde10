// Entry: fetch (the Hono app), queue (ingest and delivery consumers), scheduled (sweeper, retention).
import { app } from "./app";
import { processDeliveries } from "./delivery/consumer";
import { sweep } from "./delivery/sweeper";
import type { Env } from "./env";
import { recordBatch } from "./ingest/consumer";
import type { DeliveryMessage, DeliveryRef, IngestMessage, QueueMessage } from "./queues";

/** Messages queued before a deploy that grouped deliveries carried one `{id, attempt}` each. */
const deliveryRefs = (body: DeliveryMessage | DeliveryRef): DeliveryRef[] => ("deliveries" in body ? body.deliveries : [body]);

export default {
  fetch: app.fetch,

  async queue(batch, env, _ctx) {
    if (batch.queue.startsWith("flaghook-ingest")) {
      await recordBatch(env, batch as MessageBatch<IngestMessage>);
    } else {
      await processDeliveries(env, (batch as MessageBatch<DeliveryMessage>).messages.flatMap((m) => deliveryRefs(m.body)));
      batch.ackAll();
    }
  },

  async scheduled(_controller, env, _ctx) {
    await sweep(env);
  },
} satisfies ExportedHandler<Env, QueueMessage>;
