// Which webhooks get which body for one recorded audit entry (SPEC 3, last paragraph), and the one
// list of webhook event types with the scopes that may subscribe to each.
import type { ChangeEvent } from "./event";
import type { ReservedRelatedType } from "./provenance";
import { auditLogPayload, flagEventType, flagPayload, type ChangedByFormat } from "./payload";

export type WebhookScope = "organisation" | "environment";

/** Every event a webhook can receive; the deliveries table's event_type takes these values. */
export const WEBHOOK_EVENT_TYPES = [
  "AUDIT_LOG_CREATED",
  "FLAG_UPDATED",
  "FLAG_DELETED",
  "NEW_VERSION_PUBLISHED",
  "AUDIT_CHECKPOINT",
  "AUDIT_VERIFICATION_FAILED",
  "DELIVERY_FAILED",
  "WEBHOOK_DISABLED",
  "WEBHOOK_RECOVERED",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** flaghook's own events about an organisation's signed audit log (src/audit/). */
export type AuditLogEventType = Extract<WebhookEventType, "AUDIT_CHECKPOINT" | "AUDIT_VERIFICATION_FAILED">;

/** flaghook's operational events about its webhooks' delivery health (src/health/), as Svix's. */
export const OPERATIONAL_EVENT_TYPES = ["DELIVERY_FAILED", "WEBHOOK_DISABLED", "WEBHOOK_RECOVERED"] as const satisfies readonly WebhookEventType[];
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

/** An event flaghook sends to an organisation's webhooks about the organisation itself, not about a change. */
export type OrganisationEventType = AuditLogEventType | OperationalEventType;

/**
 * What a delivery carries: a change (`event`, the default), a test payload sent by hand (`test`), or
 * an operational event or the audit entry recording one (`operational`). The outcome of an
 * operational delivery never raises another operational event: notifications cannot cause notifications.
 */
export const DELIVERY_KINDS = ["event", "test", "operational"] as const;
export type DeliveryKind = (typeof DELIVERY_KINDS)[number];

/**
 * The related-object type of the audit entries that record operational events (delivery failed,
 * webhook disabled or recovered); their uuid is the webhook's id. Their AUDIT_LOG_CREATED deliveries
 * are operational, and never go to the webhook they are about.
 */
export const WEBHOOK_HEALTH: ReservedRelatedType = "WEBHOOK_HEALTH";

/**
 * What each scope may subscribe to. Flagsmith sends NEW_VERSION_PUBLISHED to environment webhooks
 * only (api/features/versioning/tasks.py); an organisation webhook may still choose it here.
 */
export const SCOPE_EVENT_TYPES: Record<WebhookScope, readonly WebhookEventType[]> = {
  organisation: [
    "AUDIT_LOG_CREATED",
    "FLAG_UPDATED",
    "FLAG_DELETED",
    "NEW_VERSION_PUBLISHED",
    "AUDIT_CHECKPOINT",
    "AUDIT_VERIFICATION_FAILED",
    ...OPERATIONAL_EVENT_TYPES,
  ],
  environment: ["FLAG_UPDATED", "FLAG_DELETED", "NEW_VERSION_PUBLISHED"],
};

/**
 * What a new webhook receives when it names no `event_types`: what Flagsmith 2.265 sends to that kind
 * of webhook (organisation: api/audit/signals.py and api/features/tasks.py; environment: those and
 * api/features/versioning/tasks.py). The list is stored on the webhook when it is created, so a
 * later change here never changes what an existing webhook receives. flaghook's own events (the
 * signed log's, the operational ones) are not among them: Flagsmith has none, so a receiver written
 * for Flagsmith would not expect them; a webhook names them to get them.
 */
export const DEFAULT_EVENT_TYPES: Record<WebhookScope, readonly WebhookEventType[]> = {
  organisation: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"],
  environment: ["FLAG_UPDATED", "FLAG_DELETED", "NEW_VERSION_PUBLISHED"],
};

export interface Subscriber {
  id: string;
  scope: WebhookScope;
  environmentId: number | null;
  eventTypes: readonly WebhookEventType[] | null;
  /** How flaghook's own FLAG_UPDATED / FLAG_DELETED name the author; relayed bodies are never rewritten. */
  changedBy?: ChangedByFormat;
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
  /** The environment a flag or version event describes; null for AUDIT_LOG_CREATED. */
  environmentId: number | null;
  payload: string;
  /** Left out: "event". */
  kind?: DeliveryKind;
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
  /** The feature's created_date when the event gives none (the first time flaghook saw the feature). */
  featureCreatedDate?: string | null;
}): PlannedDelivery[] {
  const { event, webhooks } = input;
  if (event.relayed) return planRelayed(event, webhooks);
  const planned: PlannedDelivery[] = [];
  // The entry of an operational event is itself a notification: never to the webhook it is about.
  const health = event.related_object?.type === WEBHOOK_HEALTH;
  const about = health ? event.related_object?.uuid : undefined;
  const audit = webhooks.filter((w) => w.scope === "organisation" && subscribes(w, "AUDIT_LOG_CREATED") && w.id !== about);
  if (audit.length) {
    const payload = auditLogPayload(input.auditData);
    for (const w of audit) {
      planned.push({ webhookId: w.id, eventType: "AUDIT_LOG_CREATED", environmentId: null, payload, ...(health ? { kind: "operational" as const } : {}) });
    }
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
    // One body per author format the receivers ask for (nearly always one).
    const payloads = new Map<ChangedByFormat, string>();
    for (const w of receivers) {
      const format = w.changedBy ?? "name";
      let payload = payloads.get(format);
      if (payload === undefined) {
        payload = flagPayload(event, environment, input.timestamp, input.projectName, { changedBy: format, featureCreatedDate: input.featureCreatedDate });
        payloads.set(format, payload);
      }
      planned.push({ webhookId: w.id, eventType: flagType, environmentId: environment.id, payload });
    }
  }
  return planned;
}

const nameOf = (envs: readonly KnownEnvironment[], id: number) => envs.find((e) => e.id === id)?.name ?? null;

/**
 * A webhook relayed from Flagsmith goes on as received, keys sorted: AUDIT_LOG_CREATED to the
 * organisation's webhooks; FLAG_UPDATED, FLAG_DELETED and NEW_VERSION_PUBLISHED to the webhooks of
 * the environment they describe (and to organisation webhooks subscribed to them).
 */
export function planRelayed(event: ChangeEvent, webhooks: readonly Subscriber[]): PlannedDelivery[] {
  const relayed = event.relayed!;
  const eventType = relayed.event_type;
  const environmentId = eventType === "AUDIT_LOG_CREATED" ? null : (event.environment?.id ?? null);
  const payload = relayed.payload;
  return webhooks
    .filter((w) => subscribes(w, eventType) && (w.scope === "organisation" || (environmentId !== null && w.environmentId === environmentId)))
    .map((w) => ({ webhookId: w.id, eventType, environmentId, payload }));
}

/**
 * An event about the organisation itself (its audit log, its webhooks' health): to its organisation
 * webhooks that subscribe to it. An operational event is never sent to the webhook it is about.
 */
export function planOrganisationEvent(
  eventType: OrganisationEventType,
  payload: string,
  webhooks: readonly Subscriber[],
  about?: string,
): PlannedDelivery[] {
  const operational = (OPERATIONAL_EVENT_TYPES as readonly string[]).includes(eventType);
  return webhooks
    .filter((w) => w.scope === "organisation" && subscribes(w, eventType) && w.id !== about)
    .map((w) => ({ webhookId: w.id, eventType, environmentId: null, payload, ...(operational ? { kind: "operational" as const } : {}) }));
}
