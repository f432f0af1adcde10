// Which webhooks get which body for one recorded audit entry (SPEC 3, last paragraph).
import type { ChangeEvent } from "./event";
import { relayedEnvironmentId, type RelayedWebhook } from "./flagsmith";
import { auditLogPayload, flagEventType, flagPayload, type AuditLogEventType, type WebhookEventType } from "./payload";

export type WebhookScope = "organisation" | "environment";

export const SCOPE_EVENT_TYPES: Record<WebhookScope, readonly WebhookEventType[]> = {
  organisation: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED", "AUDIT_CHECKPOINT", "AUDIT_VERIFICATION_FAILED"],
  environment: ["FLAG_UPDATED", "FLAG_DELETED"],
};

/** What a webhook with no `event_types` filter receives. */
export const DEFAULT_EVENT_TYPES: Record<WebhookScope, readonly WebhookEventType[]> = {
  organisation: ["AUDIT_LOG_CREATED"],
  environment: ["FLAG_UPDATED", "FLAG_DELETED"],
};

export interface Subscriber {
  id: string;
  scope: WebhookScope;
  environmentId: number | null;
  eventTypes: readonly WebhookEventType[] | null;
}

export const subscribes = (w: Subscriber, type: WebhookEventType) =>
  (w.eventTypes ?? DEFAULT_EVENT_TYPES[w.scope]).includes(type);

export interface KnownEnvironment {
  id: number;
  name: string | null;
}

export interface PlannedDelivery {
  webhookId: string;
  eventType: WebhookEventType;
  /** The environment a flag event describes; null for AUDIT_LOG_CREATED. */
  environmentId: number | null;
  payload: string;
}

/**
 * One AUDIT_LOG_CREATED per subscribed organisation webhook, and the environment event (if any)
 * for each target environment to its subscribed webhooks. FEATURE_CREATED / FEATURE_DELETED
 * without an environment go to every known environment of the project.
 */
export function planDeliveries(input: {
  event: ChangeEvent;
  auditData: unknown;
  timestamp: string;
  webhooks: readonly Subscriber[];
  projectEnvironments: readonly KnownEnvironment[];
  projectName: string | null;
}): PlannedDelivery[] {
  const { event, webhooks } = input;
  if (event.relayed) return planRelayed(event.relayed, webhooks);
  const planned: PlannedDelivery[] = [];
  const audit = webhooks.filter((w) => w.scope === "organisation" && subscribes(w, "AUDIT_LOG_CREATED"));
  if (audit.length) {
    const payload = auditLogPayload(input.auditData);
    for (const w of audit) planned.push({ webhookId: w.id, eventType: "AUDIT_LOG_CREATED", environmentId: null, payload });
  }
  const flagType = flagEventType(event);
  if (!flagType) return planned;
  const targets: KnownEnvironment[] = event.environment
    ? [{ id: event.environment.id, name: event.environment.name ?? nameOf(input.projectEnvironments, event.environment.id) }]
    : [...input.projectEnvironments];
  for (const environment of targets) {
    const receivers = webhooks.filter(
      (w) =>
        subscribes(w, flagType) && (w.scope === "organisation" || w.environmentId === environment.id),
    );
    if (!receivers.length) continue;
    const payload = flagPayload(event, environment, input.timestamp, input.projectName);
    for (const w of receivers) planned.push({ webhookId: w.id, eventType: flagType, environmentId: environment.id, payload });
  }
  return planned;
}

const nameOf = (envs: readonly KnownEnvironment[], id: number) => envs.find((e) => e.id === id)?.name ?? null;

/**
 * A webhook relayed from Flagsmith goes on as received, keys sorted: AUDIT_LOG_CREATED to the
 * organisation's webhooks, FLAG_UPDATED / FLAG_DELETED to its environment's (and subscribed organisation ones).
 */
export function planRelayed(relayed: RelayedWebhook, webhooks: readonly Subscriber[]): PlannedDelivery[] {
  const eventType = relayed.event_type;
  const environmentId = eventType === "AUDIT_LOG_CREATED" ? null : relayedEnvironmentId(relayed);
  const payload = relayed.payload;
  return webhooks
    .filter((w) => subscribes(w, eventType) && (w.scope === "organisation" || w.environmentId === environmentId))
    .map((w) => ({ webhookId: w.id, eventType, environmentId, payload }));
}

/** An event about the organisation's audit log itself: to its organisation webhooks that subscribe to it. */
export function planOrganisationEvent(eventType: AuditLogEventType, payload: string, webhooks: readonly Subscriber[]): PlannedDelivery[] {
  return webhooks
    .filter((w) => w.scope === "organisation" && subscribes(w, eventType))
    .map((w) => ({ webhookId: w.id, eventType, environmentId: null, payload }));
}
