// Acceptance: an event is accepted once it is durable, in the ingest queue or, when the queue
// refuses it (too large, or the send fails), written straight to D1. Nothing else runs at ingest.
import { now } from "../domain/clock";
import { ApiError } from "../domain/errors";
import type { ChangeEvent } from "../domain/event";
import type { Submitter } from "../domain/provenance";
import { config, type Env } from "../env";
import type { IngestMessage } from "../queues";
import { eventIdFor } from "./event-id";
import { recordEvents } from "./record";

/** Queue messages may be 128 KB; leave room for the envelope. */
const MAX_MESSAGE_BYTES = 120_000;
const MAX_BATCH_BYTES = 240_000;

export interface Accepted {
  event_id: string;
  status: "accepted";
}

/**
 * The one way into the audit log. `submitter` is who sent the events, as flaghook authenticated
 * them (never what a body claims); `system` marks flaghook's own entries (ingest/system-events.ts).
 */
export async function acceptEvents(
  env: Env,
  orgId: number,
  items: readonly { event: ChangeEvent; clientId?: string }[],
  submitter: Submitter,
  options: { system?: boolean } = {},
): Promise<Accepted[]> {
  const secretsKey = config(env).secretsKey;
  if (!secretsKey) throw new ApiError(500, "server_misconfigured", "SECRETS_KEY is not set on this deployment");
  const receivedAt = now();
  const messages: IngestMessage[] = await Promise.all(
    items.map(async ({ event, clientId }) => ({
      orgId,
      eventId: await eventIdFor(secretsKey, orgId, clientId ?? event.id),
      receivedAt,
      event,
      submitter,
      ...(options.system ? { system: true } : {}),
    })),
  );
  await makeDurable(env, messages);
  return messages.map((m) => ({ event_id: m.eventId, status: "accepted" }));
}

async function makeDurable(env: Env, messages: IngestMessage[]): Promise<void> {
  const direct: IngestMessage[] = [];
  let batch: { body: IngestMessage }[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const sending = batch;
    batch = [];
    batchBytes = 0;
    try {
      // One message goes by send(), which the local queue simulation takes more cheaply than a batch.
      if (sending.length === 1) await env.INGEST_QUEUE.send(sending[0].body);
      else await env.INGEST_QUEUE.sendBatch(sending);
    } catch (err) {
      console.warn(`ingest queue send failed, recording directly: ${String(err)}`);
      direct.push(...sending.map((s) => s.body));
    }
  };
  for (const m of messages) {
    const size = JSON.stringify(m).length;
    if (size > MAX_MESSAGE_BYTES) {
      direct.push(m);
      continue;
    }
    if (batchBytes + size > MAX_BATCH_BYTES) await flush();
    batch.push({ body: m });
    batchBytes += size;
  }
  await flush();
  if (direct.length) {
    try {
      await recordEvents(env, direct);
    } catch (err) {
      console.error(`direct recording failed: ${String(err)}`);
      throw new ApiError(503, "unavailable", "could not store the event durably; retry the request", []);
    }
  }
}
