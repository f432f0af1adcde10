// The one source of truth for flaghook's tables; `npm run db:generate` turns it into migrations/.
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { DELIVERY_KINDS, WEBHOOK_EVENT_TYPES } from "../domain/fanout";
import { LATENCY_COLUMNS } from "../domain/health";

/** Milliseconds since the epoch; every timestamp column uses it except audit `created_date`. */
const ms = (name: string) => integer(name);

export const organisations = sqliteTable("organisations", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
  createdAt: ms("created_at").notNull(),
  /** The D1 binding holding the organisation's audit log (src/db/placement.ts); null: DB. Set once, at creation. */
  database: text("database"),
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

/**
 * Who may enter an organisation's admin pages through Cloudflare Access: an email address, or every
 * address of a domain (values lower-cased). Set by the operator with PATCH /api/v1/organisations/{org}.
 */
export const organisationAccess = sqliteTable(
  "organisation_access",
  {
    orgId: integer("org_id").notNull(),
    kind: text("kind", { enum: ["email", "domain"] }).notNull(),
    value: text("value").notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.value, t.orgId] }), index("organisation_access_org").on(t.orgId)],
);

/**
 * Admin-page sessions. The cookie carries only the signed id; the row says who is signed in, so
 * signing out (deleting the row) ends the session everywhere at once. An API-key session names its
 * key (revoking the key ends it); an Access session names the person's email.
 */
export const uiSessions = sqliteTable(
  "ui_sessions",
  {
    id: text("id").primaryKey(),
    orgId: integer("org_id").notNull(),
    keyId: text("key_id"),
    email: text("email"),
    createdAt: ms("created_at").notNull(),
    expiresAt: ms("expires_at").notNull(),
  },
  (t) => [index("ui_sessions_expiry").on(t.expiresAt)],
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

/**
/**
 * Features named by events, for what payloads need and an event may leave out: Flagsmith always
 * sends feature.created_date, so when no event gave it, it is the first time flaghook saw the feature.
 */
export const features = sqliteTable(
  "features",
  {
    orgId: integer("org_id").notNull(),
    id: integer("id").notNull(),
    projectId: integer("project_id"),
    name: text("name"),
    createdDate: text("created_date").notNull(), // Flagsmith's microsecond ISO string
    /** true: an event gave created_date; false: the earliest change flaghook saw (an estimate). */
    createdDateGiven: integer("created_date_given", { mode: "boolean" }).notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.id] })],
);

/**
 * Append-only: rows are inserted by the recorder and only `fanned_out` ever changes. `id` is internal;
 * the API names an entry by its `seq` within the organisation (its position in the Merkle log). Event
 * ids are unique per organisation through audit_event_ids (src/db/derived.ts), which a trigger fills
 * and which outlives the row when it moves to the archive.
 */
export const auditEntries = sqliteTable(
  "audit_entries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    orgId: integer("org_id").notNull(),
    /** 1, 2, 3 ... per organisation, gapless, assigned in the insert itself (src/ingest/record.ts). */
    seq: integer("seq").notNull().default(0),
    /** The global id an entry recorded before per-organisation numbers had (old URLs redirect). */
    legacyId: integer("legacy_id"),
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
    environmentApiKey: text("environment_api_key"),
    /** JSON {project?, environment?} of the fields an event gave beyond flaghook's, passed on in AUDIT_LOG_CREATED. */
    scopeExtras: text("scope_extras"),
    relatedObjectId: integer("related_object_id"),
    relatedObjectType: text("related_object_type").notNull(),
    relatedObjectUuid: text("related_object_uuid"),
    isSystemEvent: integer("is_system_event", { mode: "boolean" }).notNull(),
    event: text("event").notNull(), // the accepted change event, JSON, for details and fan-out
    /** Who submitted it (domain/provenance.ts), as flaghook authenticated them; null before provenance was kept. */
    submitterType: text("submitter_type"),
    submitterId: text("submitter_id"),
    submitterName: text("submitter_name"),
    receivedAt: ms("received_at").notNull(),
    /** The list order: created_date, but never later than receipt (a claimed future cannot pin an entry on top). */
    sortTime: text("sort_time").notNull().default(""),
    /**
     * The latest sort time of the organisation's entries up to this one (by seq), when it is later
     * than this entry's own (the entry arrived out of time order); null otherwise. Search walks the
     * log by seq and stops once this says no earlier entry can still sort higher (db/audit-search.ts).
     */
    sortWatermark: text("sort_wm"),
    recordedAt: ms("recorded_at").notNull(),
    fannedOut: integer("fanned_out", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [
    uniqueIndex("audit_seq").on(t.orgId, t.seq),
    index("audit_legacy").on(t.orgId, t.legacyId).where(sql`legacy_id is not null`),
    // Every list filter pages newest first by (sort_time, seq) within the organisation. An entry
    // costs a row written per index it enters: the filters on a column an entry may leave empty
    // (`= ?` and `in (...)` imply not null) index only the entries that have it.
    index("audit_org_time").on(t.orgId, t.sortTime, t.seq),
    index("audit_project_time").on(t.orgId, t.projectId, t.sortTime, t.seq).where(sql`project_id is not null`),
    index("audit_environment_time").on(t.orgId, t.environmentId, t.sortTime, t.seq).where(sql`environment_id is not null`),
    index("audit_type_time").on(t.orgId, t.relatedObjectType, t.sortTime, t.seq),
    index("audit_author_time").on(t.orgId, t.authorId, t.sortTime, t.seq).where(sql`author_id is not null`),
    index("audit_author_email_time").on(t.orgId, t.authorEmail, t.sortTime, t.seq).where(sql`author_email is not null`),
    // System events only (few); is_system_event=false pages through audit_org_time, skipping them.
    index("audit_system_time").on(t.orgId, t.sortTime, t.seq).where(sql`is_system_event = 1`),
    index("audit_submitter_type_time").on(t.orgId, t.submitterType, t.sortTime, t.seq),
    index("audit_submitter_time").on(t.orgId, t.submitterId, t.sortTime, t.seq),
    index("audit_not_fanned_out").on(t.recordedAt).where(sql`fanned_out = 0`),
  ],
);

/**
 * The organisation's Merkle tree as C2SP tlog-tiles store it: tile (level L, index N) holds up to 256
 * hashes of the tree's nodes at height 8L, indexes 256N..256N+255, concatenated. Level 0 holds leaf
 * hashes. A proof reads a few tiles, never the leaves. Written by sealing (src/audit/seal.ts); a tile
 * only ever grows.
 */
export const auditTiles = sqliteTable(
  "audit_tiles",
  {
    orgId: integer("org_id").notNull(),
    level: integer("level").notNull(),
    idx: integer("idx").notNull(),
    hashes: blob("hashes").notNull(), // raw bytes, 32 per hash; read and written with raw SQL
  },
  (t) => [primaryKey({ columns: [t.orgId, t.level, t.idx] })],
);

/**
 * The R2 archive of an organisation's log (src/audit/archive.ts): each row one gzipped NDJSON object
 * holding entries seq_lo..seq_hi (every one of them, in seq order, as their audit_entries rows), and
 * the time range they cover, so a read knows which objects can hold what it looks for.
 */
export const auditSegments = sqliteTable(
  "audit_segments",
  {
    orgId: integer("org_id").notNull(),
    seqLo: integer("seq_lo").notNull(),
    seqHi: integer("seq_hi").notNull(),
    key: text("key").notNull(), // archive/<org>/<seq_lo>-<seq_hi>.ndjson.gz
    entries: integer("entries").notNull(),
    bytes: integer("bytes").notNull(), // the object's size, gzipped
    sha256: text("sha256").notNull(), // hex, of the NDJSON before compression
    sortMin: text("sort_min").notNull(),
    sortMax: text("sort_max").notNull(),
    receivedMax: ms("received_max").notNull(),
    createdAt: ms("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.seqLo] })],
);

/**
 * What AUDIT_RETENTION_DAYS removed of an organisation's log: entries 1..removed_through, from D1
 * or the archive. Their leaf hashes stay in audit_tiles, so the tree and every later entry still verify.
 */
export const auditRetention = sqliteTable("audit_retention", {
  orgId: integer("org_id").primaryKey(),
  removedThrough: integer("removed_through").notNull(),
  /** The newest receipt among the removed entries. */
  receivedMax: ms("received_max").notNull(),
  updatedAt: ms("updated_at").notNull(),
});

/** Signed tree heads (C2SP tlog-checkpoint notes), one per seal of an organisation's log. */
export const auditCheckpoints = sqliteTable(
  "audit_checkpoints",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    orgId: integer("org_id").notNull(),
    treeSize: integer("tree_size").notNull(),
    rootHash: text("root_hash").notNull(), // base64
    note: text("note").notNull(), // the whole signed note
    createdAt: ms("created_at").notNull(),
  },
  (t) => [index("audit_checkpoints_org").on(t.orgId, t.id), index("audit_checkpoints_size").on(t.orgId, t.treeSize, t.id)],
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
    eventTypes: text("event_types"), // JSON array; null only on rows older than the stored default (see migrations)
    /** How flaghook's own FLAG_UPDATED / FLAG_DELETED write changed_by: "name" (the seed's) or "email" (Flagsmith's). */
    changedBy: text("changed_by", { enum: ["name", "email"] }).notNull().default("name"),
    secret: text("secret").notNull(), // AES-GCM ciphertext
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: ms("previous_secret_expires_at"),
    /** A staged rotation: X-Flagsmith-Signature keeps the previous secret until confirmed or expired. */
    stagedRotation: integer("staged_rotation", { mode: "boolean" }).notNull().default(false),
    disabledReason: text("disabled_reason"),
    failingSince: ms("failing_since"),
    /** The attempt rate limit's current window (ms since the epoch / window length) and attempts asked for in it. */
    attemptWindow: integer("attempt_window"),
    attemptWindowCount: integer("attempt_window_count").notNull().default(0),
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
    eventType: text("event_type", { enum: WEBHOOK_EVENT_TYPES }).notNull(),
    payload: text("payload").notNull(), // the exact bytes sent on every attempt
    status: text("status", { enum: ["pending", "delivered", "failed"] }).notNull(),
    attemptCount: integer("attempt_count").notNull().default(0),
    /** attempt_count when the current retry cycle began (a redelivery starts a new cycle). */
    cycleStart: integer("cycle_start").notNull().default(0),
    nextAttemptAt: ms("next_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    /** A change's delivery, a test sent by hand, or an operational notification (domain/fanout.ts). */
    kind: text("kind", { enum: DELIVERY_KINDS }).notNull().default("event"),
    createdAt: ms("created_at").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [
    index("deliveries_webhook").on(t.webhookId, t.createdAt, t.id),
    index("deliveries_event").on(t.orgId, t.eventId),
    // A webhook's backlog (count, oldest) for its health; the sweeper scans it whole for what is overdue.
    // Not next_attempt_at: a claim rewrites it, and an index holding it would be rewritten with it
    // (a row written per attempt); the sweeper reads it from the few pending rows themselves.
    index("deliveries_pending").on(t.webhookId, t.createdAt).where(sql`status = 'pending'`),
    // No index on created_at alone: the sweeper prunes from the head of the table in rowid order
    // (src/delivery/sweeper.ts), as old as created_at.
  ],
);

/**
 * A delivery's attempt log, keyed by (delivery_id, number). WITHOUT ROWID (a custom migration,
 * issue16 rows_attempts_without_rowid; drizzle-kit cannot say it): the key is the table, so an
 * attempt is one row written, not a row, its key's index and AUTOINCREMENT's counter. A table
 * rebuild drizzle-kit generates for this table would drop WITHOUT ROWID: redo it by hand.
 */
export const attempts = sqliteTable(
  "attempts",
  {
    deliveryId: text("delivery_id").notNull(),
    number: integer("number").notNull(),
    attemptedAt: ms("attempted_at").notNull(),
    statusCode: integer("status_code"),
    durationMs: integer("duration_ms").notNull(),
    error: text("error"),
    responseBody: text("response_body"),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.number] })],
);

/** The latency histogram's columns: le_10 ... le_10000 (attempts that took at most that many ms), then gt_10000. */
const latencyColumns = Object.fromEntries(LATENCY_COLUMNS.map((name) => [name, integer(name).notNull().default(0)]));

/**
 * Delivery health, rolled up per webhook and hour by the delivery consumer as it records attempts
 * (one upsert per webhook and hour a consumer run), so stats never read the attempts themselves.
 */
export const webhookHealth = sqliteTable(
  "webhook_health",
  {
    webhookId: text("webhook_id").notNull(),
    hour: ms("hour").notNull(), // the hour's start
    /** Deliveries that succeeded in the hour, and that failed for good (their last attempt). */
    delivered: integer("delivered").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    /** Attempts that did not succeed (refusals included), and those the URL policy refused (never sent). */
    attemptsFailed: integer("attempts_failed").notNull().default(0),
    attemptsRefused: integer("attempts_refused").notNull().default(0),
    ...latencyColumns,
    lastSuccessAt: ms("last_success_at"),
    lastFailureAt: ms("last_failure_at"),
    lastFailure: text("last_failure"),
  },
  (t) => [primaryKey({ columns: [t.webhookId, t.hour] }), index("webhook_health_hour").on(t.hour)],
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
    secret: text("secret").notNull(), // AES-GCM ciphertext of the secret Flagsmith signs with; "" when unsigned
    /** false: created explicitly as unsigned (a blank secret in Flagsmith sends no signature). */
    signed: integer("signed", { mode: "boolean" }).notNull().default(true),
    createdAt: ms("created_at").notNull(),
    lastReceivedAt: ms("last_received_at"),
    /** The last of Flagsmith's "Test webhook" samples received (not recorded, not relayed). */
    lastTestReceivedAt: ms("last_test_received_at"),
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
export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;
export type AuditSegmentRow = typeof auditSegments.$inferSelect;
export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof deliveries.$inferSelect;
export type AttemptRow = typeof attempts.$inferSelect;
export type InboundSourceRow = typeof inboundSources.$inferSelect;
export type FlagChangeRow = typeof flagChanges.$inferSelect;
