// Managing webhooks: create, update, delete, rotate, test. Shared by the JSON API and the admin pages.
import { and, desc, eq, inArray, type SQL } from "drizzle-orm";
import { isoMicro, isoTime, now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { SCOPE_EVENT_TYPES, type WebhookScope } from "../domain/fanout";
import { newId } from "../domain/ids";
import { auditLogPayload, sortedJson, type WebhookEventType } from "../domain/payload";
import { checkWebhookUrl } from "../domain/url-policy";
import { database, runBatch, type Db } from "../db/client";
import { attempts, deliveries, environments, webhooks, type WebhookRow } from "../db/schema";
import { attempt } from "../delivery/consumer";
import { privateResolution } from "../delivery/resolve";
import { encryptSecret, generateSecret, requireSecretsKey } from "../delivery/secrets";
import { config, type Env } from "../env";
import type { Submitter } from "../domain/provenance";
import { recordSystemEvent } from "../ingest/system-events";

export interface WebhookInput {
  url?: string;
  name?: string;
  enabled?: boolean;
  event_types?: WebhookEventType[] | null;
  secret?: string;
}

/** Where a webhook hangs: the organisation, or one of its environments. */
export interface WebhookOwner {
  orgId: number;
  scope: WebhookScope;
  environmentId: number | null;
}

export function webhookOut(w: WebhookRow) {
  return {
    id: w.id,
    url: w.url,
    name: w.name,
    scope: w.scope,
    environment: w.environmentId,
    enabled: w.enabled,
    event_types: w.eventTypes ? (JSON.parse(w.eventTypes) as WebhookEventType[]) : null,
    created_at: isoTime(w.createdAt),
    updated_at: isoTime(w.updatedAt),
    disabled_reason: w.disabledReason,
    has_secret: true,
  };
}

/**
 * `{env}` in a path is the environment's numeric id (known or not: environments may be referenced
 * before any event names them) or its api_key. Nothing is written: createWebhook registers the id.
 */
export async function resolveEnvironment(db: Db, orgId: number, ref: string): Promise<number> {
  if (/^\d{1,15}$/.test(ref)) return Number(ref);
  const [found] = await db
    .select({ id: environments.id })
    .from(environments)
    .where(and(eq(environments.orgId, orgId), eq(environments.apiKey, ref)))
    .orderBy(desc(environments.updatedAt))
    .limit(1);
  if (!found) throw notFound("environment");
  return found.id;
}

async function checkUrl(env: Env, raw: string): Promise<string> {
  const cfg = config(env);
  const verdict = checkWebhookUrl(raw, cfg.allowPrivateWebhookUrls);
  const refuse = (reason: string) =>
    new ApiError(400, "url_not_allowed", `webhook url ${reason}`, [{ field: "url", message: reason }]);
  if (!verdict.ok) throw refuse(verdict.reason);
  if (!cfg.allowPrivateWebhookUrls) {
    const problem = await privateResolution(cfg.dnsResolverUrl, verdict.url.hostname);
    if (problem) throw refuse(problem);
  }
  return verdict.url.toString();
}

function checkEventTypes(scope: WebhookScope, types: readonly string[] | null | undefined) {
  if (!types) return;
  const allowed = SCOPE_EVENT_TYPES[scope];
  const bad = types.find((t) => !allowed.includes(t as WebhookEventType));
  if (bad) {
    throw new ApiError(400, "validation_failed", `event_types: ${bad} is not an event of ${scope} webhooks`, [
      { field: "event_types", message: `allowed: ${allowed.join(", ")}` },
    ]);
  }
}

const describe = (w: Pick<WebhookRow, "name" | "url">) => `${w.name} (${w.url})`;

export async function createWebhook(env: Env, owner: WebhookOwner, input: WebhookInput & { url: string }, by: Submitter) {
  const secretsKey = requireSecretsKey(config(env).secretsKey);
  const url = await checkUrl(env, input.url);
  checkEventTypes(owner.scope, input.event_types);
  const secret = input.secret ?? generateSecret();
  const at = now();
  const db = database(env.DB);
  const insert = db
    .insert(webhooks)
    .values({
      id: newId("whk"),
      orgId: owner.orgId,
      scope: owner.scope,
      environmentId: owner.environmentId,
      url,
      name: input.name ?? new URL(url).host,
      enabled: input.enabled ?? true,
      eventTypes: input.event_types ? JSON.stringify(input.event_types) : null,
      secret: await encryptSecret(secretsKey, secret),
      createdAt: at,
      updatedAt: at,
    })
    .returning();
  // An environment first named by its webhook is registered with it, and only then.
  const [row] =
    owner.environmentId === null
      ? await insert
      : (await db.batch([db.insert(environments).values({ orgId: owner.orgId, id: owner.environmentId, updatedAt: at }).onConflictDoNothing(), insert]))[1];
  await recordSystemEvent(env, owner.orgId, { log: `Webhook created: ${describe(row)}`, webhook: row }, by);
  return { ...webhookOut(row), secret };
}

export async function listWebhooks(db: Db, owner: WebhookOwner) {
  const rows = await db.select().from(webhooks).where(ownerWhere(owner)).orderBy(desc(webhooks.createdAt));
  return rows.map(webhookOut);
}

function ownerWhere(owner: WebhookOwner): SQL {
  return and(
    eq(webhooks.orgId, owner.orgId),
    eq(webhooks.scope, owner.scope),
    owner.environmentId === null ? undefined : eq(webhooks.environmentId, owner.environmentId),
  )!;
}

/** A webhook of this owner; another owner's (or another organisation's) answers 404. */
export async function findWebhook(db: Db, owner: WebhookOwner, id: string): Promise<WebhookRow> {
  const [row] = await db.select().from(webhooks).where(and(ownerWhere(owner), eq(webhooks.id, id)));
  if (!row) throw notFound("webhook");
  return row;
}

/** A webhook of the organisation, whatever its scope (for deliveries and the admin pages). */
export async function findOrganisationWebhook(db: Db, orgId: number, id: string): Promise<WebhookRow> {
  const [row] = await db.select().from(webhooks).where(and(eq(webhooks.orgId, orgId), eq(webhooks.id, id)));
  if (!row) throw notFound("webhook");
  return row;
}

export async function updateWebhook(env: Env, hook: WebhookRow, input: WebhookInput, by: Submitter) {
  const patch: Partial<WebhookRow> = {};
  const changed: string[] = [];
  if (input.url !== undefined && input.url !== hook.url) {
    patch.url = await checkUrl(env, input.url);
    changed.push("url");
  }
  if (input.name !== undefined && input.name !== hook.name) {
    patch.name = input.name;
    changed.push("name");
  }
  if (input.event_types !== undefined) {
    checkEventTypes(hook.scope, input.event_types);
    patch.eventTypes = input.event_types ? JSON.stringify(input.event_types) : null;
    changed.push("event_types");
  }
  if (input.secret !== undefined) {
    patch.secret = await encryptSecret(requireSecretsKey(config(env).secretsKey), input.secret);
    patch.previousSecret = null;
    patch.previousSecretExpiresAt = null;
    changed.push("secret");
  }
  if (input.enabled !== undefined && input.enabled !== hook.enabled) {
    patch.enabled = input.enabled;
    // Enabling by hand clears why it was disabled and restarts the failure clock.
    if (input.enabled) Object.assign(patch, { disabledReason: null, failingSince: null });
    else patch.disabledReason = "disabled by a user";
    changed.push(input.enabled ? "enabled" : "disabled");
  }
  if (!changed.length) return webhookOut(hook);
  const [row] = await database(env.DB)
    .update(webhooks)
    .set({ ...patch, updatedAt: now() })
    .where(eq(webhooks.id, hook.id))
    .returning();
  await recordSystemEvent(env, hook.orgId, { log: `Webhook updated (${changed.join(", ")}): ${describe(row)}`, webhook: row }, by);
  return webhookOut(row);
}

export async function deleteWebhook(env: Env, hook: WebhookRow, by: Submitter): Promise<void> {
  const db = database(env.DB);
  const ids = (await db.select({ id: deliveries.id }).from(deliveries).where(eq(deliveries.webhookId, hook.id))).map((d) => d.id);
  const writes = [];
  for (let i = 0; i < ids.length; i += 90) writes.push(db.delete(attempts).where(inArray(attempts.deliveryId, ids.slice(i, i + 90))));
  await runBatch(db, [
    ...writes,
    db.delete(deliveries).where(eq(deliveries.webhookId, hook.id)),
    db.delete(webhooks).where(eq(webhooks.id, hook.id)),
  ]);
  await recordSystemEvent(env, hook.orgId, { log: `Webhook deleted: ${describe(hook)}`, webhook: hook }, by);
}

/** New secret now; the old one keeps signing (as a second webhook-signature entry) for the grace period. */
export async function rotateSecret(env: Env, hook: WebhookRow, secret: string | undefined, by: Submitter) {
  const cfg = config(env);
  const secretsKey = requireSecretsKey(cfg.secretsKey);
  const next = secret ?? generateSecret();
  const at = now();
  const [row] = await database(env.DB)
    .update(webhooks)
    .set({
      secret: await encryptSecret(secretsKey, next),
      previousSecret: hook.secret,
      previousSecretExpiresAt: at + cfg.secretGraceMs,
      updatedAt: at,
    })
    .where(eq(webhooks.id, hook.id))
    .returning();
  await recordSystemEvent(env, hook.orgId, { log: `Webhook secret rotated: ${describe(row)}`, webhook: row }, by);
  return { ...webhookOut(row), secret: next, previous_secret_expires_at: isoTime(row.previousSecretExpiresAt) };
}

function testPayload(hook: WebhookRow, at: number): { eventType: WebhookEventType; payload: string } {
  const created = isoMicro(at);
  if (hook.scope === "organisation") {
    return {
      eventType: "AUDIT_LOG_CREATED",
      payload: auditLogPayload({
        id: 0,
        created_date: created,
        log: `Test webhook from flaghook: ${hook.name}`,
        author: null,
        environment: null,
        project: null,
        related_object_id: null,
        related_object_type: "WEBHOOK",
        related_object_uuid: hook.id,
        is_system_event: true,
      }),
    };
  }
  const state = {
    enabled: true,
    environment: { id: hook.environmentId, name: "" },
    feature: { created_date: created, default_enabled: false, description: "Test webhook from flaghook", id: 0, initial_value: null, name: "flaghook_test", project: { id: 0, name: "" }, type: "STANDARD" },
    feature_segment: null,
    feature_state_value: null,
    identity: null,
    identity_identifier: null,
  };
  return { eventType: "FLAG_UPDATED", payload: sortedJson({ data: { changed_by: "flaghook", new_state: state, timestamp: created }, event_type: "FLAG_UPDATED" }) };
}

/**
 * Sends a sample payload now and answers what the receiver said. It is stored as a delivery with
 * its one attempt, and is not retried; it does not count towards disabling the webhook.
 */
export async function testWebhook(env: Env, hook: WebhookRow) {
  await checkUrl(env, hook.url); // the policy may have tightened since the webhook was saved
  const db = database(env.DB);
  const at = now();
  const { eventType, payload } = testPayload(hook, at);
  const [delivery] = await db
    .insert(deliveries)
    .values({
      id: newId("dlv"),
      orgId: hook.orgId,
      webhookId: hook.id,
      eventType,
      payload,
      status: "pending",
      attemptCount: 1,
      createdAt: at,
      updatedAt: at,
    })
    .returning();
  const result = await attempt(env, { ...delivery, attemptCount: 0 }, hook, at);
  const ok = result.outcome.kind === "delivered";
  await db.batch([
    db.insert(attempts).values({
      deliveryId: delivery.id,
      number: 1,
      attemptedAt: at,
      statusCode: result.statusCode,
      durationMs: result.durationMs,
      error: result.error,
      responseBody: result.responseBody,
    }),
    db
      .update(deliveries)
      .set({ status: ok ? "delivered" : "failed", lastStatusCode: result.statusCode, lastError: result.error, updatedAt: now() })
      .where(eq(deliveries.id, delivery.id)),
  ]);
  return {
    delivery_id: delivery.id,
    ok,
    status_code: result.statusCode,
    duration_ms: result.durationMs,
    error: result.error,
    response_body: result.responseBody,
  };
}
