// Entry: fetch (the Hono app), queue (ingest and delivery consumers), scheduled (sweeper, retention,
// flag history of entries recorded before it existed).
import { app } from "./app";
import { processDeliveries, type DeliveryMessage, type DeliveryRef } from "./delivery/consumer";
import { sweep } from "./delivery/sweeper";
import { now } from "./domain/clock";
import type { Env } from "./env";
import { backfillFlagHistory } from "./history/backfill";
import { recordBatch } from "./ingest/consumer";
import type { IngestMessage } from "./ingest/record";

export type QueueMessage = IngestMessage | DeliveryMessage;

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
    await backfillFlagHistory(env, now());
  },
} satisfies ExportedHandler<Env, QueueMessage>;
