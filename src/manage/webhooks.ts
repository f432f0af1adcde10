// Managing webhooks: create, update, delete, rotate, test. Shared by the JSON API and the admin pages.
import { and, desc, eq, inArray, sql, type Column, type SQL } from "drizzle-orm";
import type { Submitter } from "../domain/provenance";
import { isoMicro, isoTime, now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { DEFAULT_EVENT_TYPES, SCOPE_EVENT_TYPES, type WebhookEventType, type WebhookScope } from "../domain/fanout";
import { newId } from "../domain/ids";
import { maskedUrl } from "../domain/masked-url";
import { auditLogPayload, sortedJson, type ChangedByFormat } from "../domain/payload";
import { webhookHealth } from "../domain/health";
import { checkWebhookUrl } from "../domain/url-policy";
import { database, runBatch, type Db } from "../db/client";
import { attempts, deliveries, environments, projects, webhookHealth as healthHours, webhooks, type WebhookRow } from "../db/schema";
import { writeAttemptPoint } from "../health/analytics";
import { attempt } from "../delivery/consumer";
import { privateResolution } from "../delivery/resolve";
import { encryptSecret, generateSecret, requireSecretsKey } from "../delivery/secrets";
import { config, type Config, type Env } from "../env";
import { recordSystemEvent } from "../ingest/system-events";

export interface WebhookInput {
  url?: string;
  name?: string;
  enabled?: boolean;
  /** null or left out on create: the scope's default, the same as Flagsmith's (stored as a list). */
  event_types?: WebhookEventType[] | null;
  changed_by?: ChangedByFormat;
  secret?: string;
}

/** Where a webhook hangs: the organisation, or one of its environments. */
export interface WebhookOwner {
  orgId: number;
  scope: WebhookScope;
  environmentId: number | null;
}

/** A rotation under way: which secret X-Flagsmith-Signature uses, and until when the previous one signs. */
export function rotationOut(w: WebhookRow, at = now()) {
  if (!w.previousSecret || (w.previousSecretExpiresAt ?? 0) <= at) return null;
  return {
    staged: w.stagedRotation,
    x_flagsmith_signature: w.stagedRotation ? ("previous" as const) : ("new" as const),
    previous_secret_expires_at: isoTime(w.previousSecretExpiresAt!),
  };
}

/** A webhook as its own API answer and page show it: the whole URL. */
export function webhookOut(w: WebhookRow) {
  return {
    id: w.id,
    url: w.url,
    name: w.name,
    scope: w.scope,
    environment: w.environmentId,
    enabled: w.enabled,
    health: webhookHealth(w),
    failing_since: isoTime(w.failingSince),
    event_types: w.eventTypes ? (JSON.parse(w.eventTypes) as WebhookEventType[]) : [...DEFAULT_EVENT_TYPES[w.scope]],
    changed_by: w.changedBy,
    created_at: isoTime(w.createdAt),
    updated_at: isoTime(w.updatedAt),
    disabled_reason: w.disabledReason,
    has_secret: true,
    secret_rotation: rotationOut(w),
  };
}

/** The list a webhook stores: the one given, or its scope's default (Flagsmith's) when none is. */
const eventTypesOf = (scope: WebhookScope, types: readonly WebhookEventType[] | null | undefined) =>
  JSON.stringify(types ?? DEFAULT_EVENT_TYPES[scope]);

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

/** The URL as it will be stored, or a 400 url_not_allowed saying why the policy in force refuses it now. */
export async function checkUrl(env: Env, raw: string): Promise<string> {
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

const webhooksOfOrganisation = (orgId: number) => sql`(select count(*) from ${webhooks} where ${webhooks.orgId} = ${orgId})`;
const webhooksOfEnvironment = (orgId: number, environmentId: number) =>
  sql`(select count(*) from ${webhooks} where ${webhooks.orgId} = ${orgId} and ${webhooks.scope} = 'environment' and ${webhooks.environmentId} = ${environmentId})`;

/** True while the owner has fewer webhooks than MAX_WEBHOOKS_PER_ORGANISATION and _PER_ENVIRONMENT allow (0: no cap). */
function underCaps(cfg: Config, owner: WebhookOwner): SQL {
  const conditions = [sql`1`];
  if (cfg.maxWebhooksPerOrganisation > 0) conditions.push(sql`${webhooksOfOrganisation(owner.orgId)} < ${cfg.maxWebhooksPerOrganisation}`);
  if (owner.environmentId !== null && cfg.maxWebhooksPerEnvironment > 0) {
    conditions.push(sql`${webhooksOfEnvironment(owner.orgId, owner.environmentId)} < ${cfg.maxWebhooksPerEnvironment}`);
  }
  return sql.join(conditions, sql` and `);
}

/** 409 limit_reached naming the cap the owner is at; `surely`: the insert found it at a cap. */
async function refuseOverCaps(db: Db, cfg: Config, owner: WebhookOwner, surely = false): Promise<void> {
  const [counts] = await runBatch(db, [
    sql`select ${webhooksOfOrganisation(owner.orgId)} as organisation, ${owner.environmentId === null ? sql`0` : webhooksOfEnvironment(owner.orgId, owner.environmentId)} as environment`,
  ]);
  const { organisation, environment } = counts[0] as { organisation: number; environment: number };
  const max = { organisation: cfg.maxWebhooksPerOrganisation, environment: cfg.maxWebhooksPerEnvironment };
  if (owner.environmentId !== null && max.environment > 0 && environment >= max.environment) {
    throw limitReached("environment", `environment ${owner.environmentId} already has ${environment} webhooks, the most allowed (MAX_WEBHOOKS_PER_ENVIRONMENT = ${max.environment}); delete one first`);
  }
  if (max.organisation > 0 && organisation >= max.organisation) {
    throw limitReached("organisation", `the organisation already has ${organisation} webhooks, the most allowed (MAX_WEBHOOKS_PER_ORGANISATION = ${max.organisation}); delete one first`);
  }
  if (surely) throw limitReached("organisation", "a webhook limit was reached while this one was being created; try again");
}

const limitReached = (field: string, message: string) => new ApiError(409, "limit_reached", message, [{ field, message }]);

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

/** A webhook anywhere else (lists, other pages): its URL masked, since some URLs carry a secret. */
export const webhookListed = (w: WebhookRow) => ({ ...webhookOut(w), url: maskedUrl(w.url) });

/** How audit entries name a webhook; they go to third-party receivers, so its URL is masked. */
const describe = (w: Pick<WebhookRow, "name" | "url">) => `${w.name} (${maskedUrl(w.url)})`;

export async function createWebhook(env: Env, owner: WebhookOwner, input: WebhookInput & { url: string }, by: Submitter) {
  const cfg = config(env);
  const secretsKey = requireSecretsKey(cfg.secretsKey);
  const url = await checkUrl(env, input.url);
  checkEventTypes(owner.scope, input.event_types);
  await refuseOverCaps(database(env.DB), cfg, owner); // the usual case, before any work
  const secret = input.secret ?? generateSecret();
  const at = now();
  const db = database(env.DB);
  const id = newId("whk");
  const values: [Column, unknown][] = [
    [webhooks.id, id],
    [webhooks.orgId, owner.orgId],
    [webhooks.scope, owner.scope],
    [webhooks.environmentId, owner.environmentId],
    [webhooks.url, url],
    [webhooks.name, input.name ?? new URL(url).host],
    [webhooks.enabled, (input.enabled ?? true) ? 1 : 0],
    [webhooks.eventTypes, eventTypesOf(owner.scope, input.event_types)],
    [webhooks.changedBy, input.changed_by ?? "name"],
    [webhooks.secret, await encryptSecret(secretsKey, secret)],
    [webhooks.createdAt, at],
    [webhooks.updatedAt, at],
  ];
  // The caps are checked again in the insert itself, so concurrent creations cannot pass them together.
  const insert = sql`insert into ${webhooks} (${sql.raw(values.map(([c]) => `"${c.name}"`).join(", "))}) select ${sql.join(
    values.map(([, v]) => sql`${v}`),
    sql`, `,
  )} where ${underCaps(cfg, owner)}`;
  // An environment first named by its webhook is registered with it, and only then.
  const register =
    owner.environmentId === null
      ? []
      : [sql`insert into ${environments} (org_id, id, updated_at) select ${owner.orgId}, ${owner.environmentId}, ${at} where exists (select 1 from ${webhooks} where id = ${id}) on conflict do nothing`];
  await runBatch(db, [insert, ...register]);
  const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  if (!row) await refuseOverCaps(db, cfg, owner, true);
  await recordSystemEvent(env, owner.orgId, { log: `Webhook created: ${describe(row)}`, webhook: row }, by);
  return { ...webhookOut(row), secret };
}

export async function listWebhooks(db: Db, owner: WebhookOwner) {
  const rows = await db.select().from(webhooks).where(ownerWhere(owner)).orderBy(desc(webhooks.createdAt));
  return rows.map(webhookListed);
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
    patch.eventTypes = eventTypesOf(hook.scope, input.event_types);
    changed.push("event_types");
  }
  if (input.changed_by !== undefined && input.changed_by !== hook.changedBy) {
    patch.changedBy = input.changed_by;
    changed.push("changed_by");
  }
  if (input.secret !== undefined) {
    patch.secret = await encryptSecret(requireSecretsKey(config(env).secretsKey), input.secret);
    patch.previousSecret = null;
    patch.previousSecretExpiresAt = null;
    patch.stagedRotation = false;
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
    db.delete(healthHours).where(eq(healthHours.webhookId, hook.id)),
    db.delete(webhooks).where(eq(webhooks.id, hook.id)),
  ]);
  await recordSystemEvent(env, hook.orgId, { log: `Webhook deleted: ${describe(hook)}`, webhook: hook }, by);
}

/**
 * A new secret now. Its predecessor is the secret X-Flagsmith-Signature signs with at this moment
 * (the one receivers check, even mid-rotation), and it keeps signing webhook-signature for the grace
 * period. Staged (the default): X-Flagsmith-Signature keeps the predecessor until confirmSecret or
 * the grace ends, so a receiver that checks only that header can switch when its owner is ready.
 * Not staged: X-Flagsmith-Signature switches at once (for receivers that verify webhook-signature).
 */
export async function rotateSecret(env: Env, hook: WebhookRow, options: { secret?: string; staged?: boolean } = {}, by: Submitter) {
  const cfg = config(env);
  const secretsKey = requireSecretsKey(cfg.secretsKey);
  const next = options.secret ?? generateSecret();
  const staged = options.staged ?? true;
  const at = now();
  const signingNow = rotationOut(hook, at)?.x_flagsmith_signature === "previous" ? hook.previousSecret! : hook.secret;
  const [row] = await database(env.DB)
    .update(webhooks)
    .set({
      secret: await encryptSecret(secretsKey, next),
      previousSecret: signingNow,
      previousSecretExpiresAt: at + cfg.secretGraceMs,
      stagedRotation: staged,
      updatedAt: at,
    })
    .where(eq(webhooks.id, hook.id))
    .returning();
  await recordSystemEvent(env, hook.orgId, { log: `Webhook secret rotated${staged ? " (staged)" : ""}: ${describe(row)}`, webhook: row }, by);
  return { ...webhookOut(row), secret: next, previous_secret_expires_at: isoTime(row.previousSecretExpiresAt!) };
}

/**
 * The owner's "switch now" at the end of a staged rotation: X-Flagsmith-Signature and
 * webhook-signature use the new secret only from here on. 409 when no rotation is under way.
 */
export async function confirmSecret(env: Env, hook: WebhookRow, by: Submitter) {
  if (!rotationOut(hook)) throw new ApiError(409, "no_rotation", "this webhook has no secret rotation under way; rotate the secret first");
  const [row] = await database(env.DB)
    .update(webhooks)
    .set({ previousSecret: null, previousSecretExpiresAt: null, stagedRotation: false, updatedAt: now() })
    .where(eq(webhooks.id, hook.id))
    .returning();
  await recordSystemEvent(env, hook.orgId, { log: `Webhook secret switch confirmed: ${describe(row)}`, webhook: row }, by);
  return webhookOut(row);
}

/** The environment (and its project) as flaghook knows them, for an environment webhook's test payload. */
async function testScope(db: Db, hook: WebhookRow) {
  if (hook.environmentId === null) return null;
  const [row] = await db
    .select({ name: environments.name, projectId: environments.projectId, projectName: projects.name })
    .from(environments)
    .leftJoin(projects, and(eq(projects.orgId, environments.orgId), eq(projects.id, environments.projectId)))
    .where(and(eq(environments.orgId, hook.orgId), eq(environments.id, hook.environmentId)));
  return {
    environment: { id: hook.environmentId, name: row?.name ?? "" },
    project: { id: row?.projectId ?? 0, name: row?.projectName ?? "" },
  };
}

/** A test body in the shape the webhook receives; it names itself a test, and its environment by name. */
function testPayload(hook: WebhookRow, at: number, scope: Awaited<ReturnType<typeof testScope>>): { eventType: WebhookEventType; payload: string } {
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
    environment: scope!.environment,
    feature: { created_date: created, default_enabled: false, description: "Test webhook from flaghook", id: 0, initial_value: null, name: "flaghook_test", project: scope!.project, type: "STANDARD" },
    feature_segment: null,
    feature_state_value: null,
    identity: null,
    identity_identifier: null,
  };
  return { eventType: "FLAG_UPDATED", payload: sortedJson({ data: { changed_by: "flaghook", new_state: state, timestamp: created }, event_type: "FLAG_UPDATED" }) };
}

/**
 * Sends a sample payload now and answers what the receiver said. It is stored as a delivery marked
 * as a test, with its one attempt; it is not retried, never recovered, and counts for nothing in the
 * webhook's health (neither its figures nor disabling).
 */
export async function testWebhook(env: Env, hook: WebhookRow) {
  await checkUrl(env, hook.url); // the policy may have tightened since the webhook was saved
  const db = database(env.DB);
  const at = now();
  const { eventType, payload } = testPayload(hook, at, await testScope(db, hook));
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
      kind: "test",
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
  writeAttemptPoint(env.DELIVERY_ANALYTICS, {
    webhookId: hook.id,
    orgId: hook.orgId,
    deliveryId: delivery.id,
    eventType,
    kind: "test",
    outcome: ok ? "delivered" : result.refused ? "refused" : "failed",
    statusCode: result.statusCode,
    durationMs: result.durationMs,
    number: 1,
    error: result.error,
  });
  return {
    delivery_id: delivery.id,
    test: true as const,
    ok,
    status_code: result.statusCode,
    duration_ms: result.durationMs,
    error: result.error,
    response_body: result.responseBody,
  };
}
