// Entry: fetch (the Hono app), queue (ingest and delivery consumers), scheduled (sweeper, sealing and
// checking the signed audit logs, moving old entries to the R2 archive, retention, flag history of
// entries recorded before it existed).
import { app } from "./app";
import { applyRetention, archiveLogs } from "./audit/archive";
import { sealLogs } from "./audit/seal";
import { watchLogs } from "./audit/watch";
import { processDeliveries } from "./delivery/consumer";
import { sweep } from "./delivery/sweeper";
import { now } from "./domain/clock";
import type { Env } from "./env";
import { backfillFlagHistory } from "./history/backfill";
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
    // Each runs even when another fails; the first failure is rethrown so the run shows as failed.
    // The archive moves only sealed entries, so it waits for this run's sealing.
    const signing = sealLogs(env).then(() => watchLogs(env));
    const archiving = signing.catch(() => undefined).then(async () => {
      await archiveLogs(env);
      await applyRetention(env);
    });
    const runs = await Promise.allSettled([sweep(env), signing, archiving, backfillFlagHistory(env, now())]);
    const failed = runs.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  },
} satisfies ExportedHandler<Env, QueueMessage>;
