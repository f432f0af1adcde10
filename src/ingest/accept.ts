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

/**
 * D1 takes at most 2,000,000 bytes in one string, BLOB or row. The largest value an event puts there
 * is the audit row as the bulk insert binds it (src/db/bulk.ts): the event's JSON inside JSON. Keep a
 * margin for the row's other columns.
 */
export const MAX_STORED_BYTES = 1_900_000;

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/** The bytes of the largest value storing this event binds (its log is stored twice: as given and folded for search). */
export const storedBytes = (event: ChangeEvent) => utf8Length(JSON.stringify([JSON.stringify(event), event.log ?? "", event.log ?? ""]));

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
  // Only Flagsmith's relayed bodies can come near D1's limits: flaghook's own events are held to 256 KiB and field maximums.
  for (const { event } of items) {
    if (!event.relayed) continue;
    const bytes = storedBytes(event);
    if (bytes > MAX_STORED_BYTES) {
      throw new ApiError(
        413,
        "payload_too_large",
        `stored, this body takes ${bytes} bytes in one D1 value (its JSON inside JSON, non-ASCII characters written as \\uXXXX), over the ${MAX_STORED_BYTES} flaghook allows under D1's 2 MB limit; nothing was stored`,
      );
    }
  }
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
