// flaghook's own audit entries (webhooks, API keys, inbound sources, the audit log itself): the one
// service that writes system events, called by the API, the admin pages, delivery and sealing.
import type { ChangeEvent } from "../domain/event";
import { FLAGHOOK, type ReservedRelatedType, type Submitter } from "../domain/provenance";
import type { Env } from "../env";
import { acceptEvents } from "./accept";

export interface SystemChange {
  log: string;
  /** The webhook the change is about: its id becomes the related object's uuid, its environment the entry's. */
  webhook?: { id: string; environmentId: number | null };
  relatedType?: ReservedRelatedType;
  relatedUuid?: string;
}

/**
 * Audits a change of flaghook's own objects. `by` is who caused it (the API key, the operator, a person
 * in the admin pages), or flaghook itself when nobody did. A person's change names them as its author
 * (email, no id or names: flaghook has no user table) and is not a system event; every other is one.
 */
export async function recordSystemEvent(env: Env, orgId: number, change: SystemChange, by: Submitter = FLAGHOOK): Promise<void> {
  await recordSystemEvents(env, orgId, [change], by);
}

/** Several changes of one organisation at once (a queue send per 100), in order. */
export async function recordSystemEvents(env: Env, orgId: number, changes: readonly SystemChange[], by: Submitter = FLAGHOOK): Promise<void> {
  if (!changes.length) return;
  const person = by.type === "person" ? by.id : null;
  const events = changes.map((change): { event: ChangeEvent } => ({
    event: {
      type: "CUSTOM",
      log: change.log,
      author: person ? { id: null, email: person, first_name: "", last_name: "" } : null,
      environment: change.webhook?.environmentId != null ? { id: change.webhook.environmentId } : null,
      related_object: {
        type: change.relatedType ?? "WEBHOOK",
        id: null,
        uuid: change.webhook?.id ?? change.relatedUuid ?? null,
      },
    },
  }));
  // A queue batch takes at most 100 messages.
  for (let i = 0; i < events.length; i += 100) await acceptEvents(env, orgId, events.slice(i, i + 100), by, { system: person === null });
}
