// The one source of truth for flaghook's tables; `npm run db:generate` turns it into migrations/.
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Milliseconds since the epoch; every timestamp column uses it except audit `created_date`. */
const ms = (name: string) => integer(name);

export const organisations = sqliteTable("organisations", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
  createdAt: ms("created_at").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(), // key_...
    orgId: integer("org_id").notNull(),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(), // public part of the key, used to find the row
    hash: text("hash").notNull(), // SHA-256 hex of the whole key
    createdAt: ms("created_at").notNull(),
    lastUsedAt: ms("last_used_at"),
    revokedAt: ms("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_prefix").on(t.prefix), index("api_keys_org").on(t.orgId)],
);

export const projects = sqliteTable(
  "projects",
  {
    orgId: integer("org_id").notNull(),
    id: integer("id").notNull(),
    name: text("name"),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.id] })],
);

export const environments = sqliteTable(
  "environments",
  {
    orgId: integer("org_id").notNull(),
    id: integer("id").notNull(),
    projectId: integer("project_id"),
    name: text("name"),
    apiKey: text("api_key"),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    index("environments_project").on(t.orgId, t.projectId),
    index("environments_api_key").on(t.orgId, t.apiKey),
  ],
);

/** Append-only: rows are inserted by the recorder and only `fanned_out` ever changes. */
export const auditEntries = sqliteTable(
  "audit_entries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    orgId: integer("org_id").notNull(),
    eventId: text("event_id").notNull(),
    type: text("type").notNull(),
    createdDate: text("created_date").notNull(), // Flagsmith's microsecond ISO string; sorts as text
    log: text("log").notNull(),
    /** The log folded to lower case (Unicode-aware, which SQLite's lower() is not) for `search`. */
    searchText: text("search_text").notNull().default(""),
    authorId: integer("author_id"),
    authorEmail: text("author_email"),
    author: text("author"), // JSON or null
    apiKeyName: text("api_key_name"),
    projectId: integer("project_id"),
    projectName: text("project_name"),
    environmentId: integer("environment_id"),
    environmentName: text("environment_name"),
    relatedObjectId: integer("related_object_id"),
    relatedObjectType: text("related_object_type").notNull(),
    relatedObjectUuid: text("related_object_uuid"),
    isSystemEvent: integer("is_system_event", { mode: "boolean" }).notNull(),
    event: text("event").notNull(), // the accepted change event, JSON, for details and fan-out
    receivedAt: ms("received_at").notNull(),
    recordedAt: ms("recorded_at").notNull(),
    fannedOut: integer("fanned_out", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [
    uniqueIndex("audit_event").on(t.orgId, t.eventId),
    index("audit_org_time").on(t.orgId, t.createdDate, t.id),
    index("audit_project_time").on(t.orgId, t.projectId, t.createdDate, t.id),
    index("audit_environment_time").on(t.orgId, t.environmentId, t.createdDate, t.id),
    index("audit_type_time").on(t.orgId, t.relatedObjectType, t.createdDate, t.id),
    index("audit_author_time").on(t.orgId, t.authorId, t.createdDate, t.id),
    index("audit_author_email_time").on(t.orgId, t.authorEmail, t.createdDate, t.id),
    index("audit_system_time").on(t.orgId, t.isSystemEvent, t.createdDate, t.id),
    index("audit_not_fanned_out").on(t.recordedAt).where(sql`fanned_out = 0`),
  ],
);

export const webhooks = sqliteTable(
  "webhooks",
  {
    id: text("id").primaryKey(), // whk_...
    orgId: integer("org_id").notNull(),
    scope: text("scope", { enum: ["organisation", "environment"] }).notNull(),
    environmentId: integer("environment_id"),
    url: text("url").notNull(),
    name: text("name").notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    eventTypes: text("event_types"), // JSON array, null means every event of the scope
    secret: text("secret").notNull(), // AES-GCM ciphertext
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: ms("previous_secret_expires_at"),
    disabledReason: text("disabled_reason"),
    failingSince: ms("failing_since"),
    createdAt: ms("created_at").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [index("webhooks_org").on(t.orgId, t.scope, t.environmentId)],
);

export const deliveries = sqliteTable(
  "deliveries",
  {
    id: text("id").primaryKey(), // dlv_..., also the `webhook-id` header
    orgId: integer("org_id").notNull(),
    webhookId: text("webhook_id").notNull(),
    auditEntryId: integer("audit_entry_id"),
    eventId: text("event_id"),
    eventType: text("event_type", { enum: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"] }).notNull(),
    payload: text("payload").notNull(), // the exact bytes sent on every attempt
    status: text("status", { enum: ["pending", "delivered", "failed"] }).notNull(),
    attemptCount: integer("attempt_count").notNull().default(0),
    /** attempt_count when the current retry cycle began (a redelivery starts a new cycle). */
    cycleStart: integer("cycle_start").notNull().default(0),
    nextAttemptAt: ms("next_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    createdAt: ms("created_at").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [
    index("deliveries_webhook").on(t.webhookId, t.createdAt, t.id),
    index("deliveries_event").on(t.orgId, t.eventId),
    index("deliveries_due").on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index("deliveries_age").on(t.createdAt),
  ],
);

export const attempts = sqliteTable(
  "attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deliveryId: text("delivery_id").notNull(),
    number: integer("number").notNull(),
    attemptedAt: ms("attempted_at").notNull(),
    statusCode: integer("status_code"),
    durationMs: integer("duration_ms").notNull(),
    error: text("error"),
    responseBody: text("response_body"),
  },
  (t) => [uniqueIndex("attempts_delivery").on(t.deliveryId, t.number)],
);

/** Where a Flagsmith instance posts its own webhooks (organisation audit log and environment web hooks). */
export const inboundSources = sqliteTable(
  "inbound_sources",
  {
    id: text("id").primaryKey(), // src_...
    orgId: integer("org_id").notNull(),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(), // SHA-256 hex of the URL token; the token is shown once
    tokenPrefix: text("token_prefix").notNull(), // enough of the token to recognise the URL in a list
    secret: text("secret").notNull(), // AES-GCM ciphertext of the secret Flagsmith signs with
    createdAt: ms("created_at").notNull(),
    lastReceivedAt: ms("last_received_at"),
    revokedAt: ms("revoked_at"),
  },
  (t) => [uniqueIndex("inbound_sources_token").on(t.tokenHash), index("inbound_sources_org").on(t.orgId, t.createdAt)],
);

/**
 * Flagsmith FLAG_UPDATED / FLAG_DELETED webhooks relayed from an inbound source. They get no audit
 * entry (Flagsmith's AUDIT_LOG_CREATED for the same change is one); this row makes a resend a no-op.
 */
export const relayedEvents = sqliteTable(
  "relayed_events",
  {
    orgId: integer("org_id").notNull(),
    eventId: text("event_id").notNull(),
    sourceId: text("source_id").notNull(),
    eventType: text("event_type", { enum: ["FLAG_UPDATED", "FLAG_DELETED"] }).notNull(),
    environmentId: integer("environment_id").notNull(),
    receivedAt: ms("received_at").notNull(),
    recordedAt: ms("recorded_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.eventId] }), index("relayed_events_age").on(t.recordedAt)],
);

/**
 * Flag history (src/history/): one row per change of one flag state, in the order the change took
 * effect (`changed_at`, the event's occurred_at; `id` breaks ties by recording order). Written by
 * the recorder in the same batch as the audit entry; append-only, so a late arrival is one more row
 * and corrects every answer after it. `subject` names the state within its scope: '' for the
 * environment default, the segment id, the identity's identifier, or '*' for every override of the
 * scope at once (a feature deleted, a published version).
 */
export const flagChanges = sqliteTable(
  "flag_changes",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    orgId: integer("org_id").notNull(),
    environmentId: integer("environment_id").notNull(),
    featureId: integer("feature_id").notNull(),
    scope: text("scope", { enum: ["environment", "segment", "identity"] }).notNull(),
    subject: text("subject").notNull(),
    changedAt: text("changed_at").notNull(), // microsecond ISO like audit created_date; sorts as text
    change: text("change", { enum: ["set", "created", "deleted", "unknown"] }).notNull(),
    priority: integer("priority"),
    featureName: text("feature_name").notNull(),
    subjectId: integer("subject_id"), // the segment's or identity's id
    subjectName: text("subject_name"), // the segment's name or the identity's identifier
    auditEntryId: integer("audit_entry_id"), // null for Flagsmith's relayed flag events (no entry)
    eventId: text("event_id").notNull(),
    author: text("author"),
    reportedBefore: text("reported_before"), // JSON of the previous state the source reported
    /**
     * The state this change leaves, as the state answer lists it (domain/flag-state.ts listedState):
     * enabled, feature_state_value, multivariate values, ... Null when it leaves none (deleted, unknown).
     */
    stateJson: text("state_json"),
    recordedAt: ms("recorded_at").notNull(),
  },
  (t) => [
    // Ends in changed_at (then the rowid), so "the latest change of a state before T" is one seek.
    index("flag_changes_subject").on(t.orgId, t.environmentId, t.featureId, t.scope, t.subject, t.changedAt),
    index("flag_changes_time").on(t.orgId, t.environmentId, t.changedAt),
  ],
);

/**
 * Every flag state flag_changes has seen (and `*` per scope), so a state at any moment is one seek
 * per state. Kept by a trigger on flag_changes (migrations/*_issue12_flag_subjects_trigger.sql).
 */
export const flagSubjects = sqliteTable(
  "flag_subjects",
  {
    orgId: integer("org_id").notNull(),
    environmentId: integer("environment_id").notNull(),
    featureId: integer("feature_id").notNull(),
    scope: text("scope", { enum: ["environment", "segment", "identity"] }).notNull(),
    subject: text("subject").notNull(),
    featureName: text("feature_name").notNull(), // as of its first change; answers name features by the change in force
    firstChangedAt: text("first_changed_at").notNull(),
    firstChange: text("first_change", { enum: ["set", "created", "deleted", "unknown"] }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.environmentId, t.featureId, t.scope, t.subject] })],
);

/**
 * Audit entries recorded before the flag history existed, projected by the scheduled handler a
 * slice at a time (src/history/backfill.ts): entries with ids in (done_through, upto].
 */
export const historyBackfill = sqliteTable("history_backfill", {
  name: text("name").primaryKey(),
  upto: integer("upto").notNull(),
  doneThrough: integer("done_through").notNull(),
});

export type AuditEntryRow = typeof auditEntries.$inferSelect;
export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof deliveries.$inferSelect;
export type AttemptRow = typeof attempts.$inferSelect;
export type InboundSourceRow = typeof inboundSources.$inferSelect;
export type FlagChangeRow = typeof flagChanges.$inferSelect;
