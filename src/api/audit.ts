// The audit log: filtered keyset pages, one entry with its change details, streaming export, and
// the redirect from an entry's old global id. Entries are named by their per-organisation `seq`.
import { createRoute, z } from "@hono/zod-openapi";
import { auditData, changeDetails, changeType, submitterOf, timeWarning, type TimeLimits } from "../domain/audit";
import { isoTime } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { timestamp, type ChangeEvent } from "../domain/event";
import { auditLeaf } from "../domain/leaf";
import { SUBMITTER_TYPES } from "../domain/provenance";
import { seqOfLegacyId, type AuditCursor, type AuditFilters } from "../db/audit-queries";
import { logDatabase } from "../db/placement";
import { ArchiveReader, findEntry, listEntries, logStore, removedThrough, type AuditPage, type LogStore } from "../audit/entries";
import { removedLeafHashes } from "../audit/tree";
import type { AuditEntryRow } from "../db/schema";
import { config } from "../env";
import { requireOrganisation } from "./auth";
import { jsonBodyOnly } from "./json-body";
import { resource } from "./context";
import { decodeCursor, encodeCursor, errorResponses, json, numericId, page, pageSize } from "./schemas";

const flag = z.enum(["true", "false"]).transform((v) => v === "true");
/** At most this many values of a repeatable filter: each is a bound parameter, and D1 allows 100 a query. */
export const MAX_FILTER_VALUES = 50;
const oneOrMany = <T extends z.ZodType>(item: T) =>
  z
    .union([item, z.array(item).max(MAX_FILTER_VALUES, `at most ${MAX_FILTER_VALUES} values`)])
    .transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** A numeric id in a query string; an empty value is an error, not 0. */
const queryId = z
  .string()
  .regex(/^\d{1,15}$/, "must be a numeric id")
  .transform(Number);

export const AuditFiltersSchema = z.strictObject({
  project: queryId.optional(),
  environment: oneOrMany(queryId).optional(),
  search: z.string().max(256).optional(),
  related_object_type: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, "must be an upper-case type such as FEATURE, FEATURE_STATE, SEGMENT, ENVIRONMENT")
    .optional(),
  author: z
    .string()
    .max(320)
    .regex(/^(\d+|[^\s@]+@[^\s@]+)$/, "must be an author id or an email address")
    .optional(),
  is_system_event: flag.optional(),
  submitter_type: z.enum(SUBMITTER_TYPES).optional(),
  submitter: z
    .string()
    .max(320)
    .regex(/^\S+$/, "must be a submitter id such as key_..., src_... or an email")
    .optional()
    .openapi({ description: "The submitter's id: an API key (key_...), an inbound source (src_...), a person" }),
  since: timestamp.optional(),
  until: timestamp.optional(),
});

const Submitter = z
  .object({ type: z.enum(SUBMITTER_TYPES), id: z.string().nullable(), name: z.string().nullable() })
  .nullable()
  .openapi("Submitter", { description: "Who submitted the entry, as flaghook authenticated them; null for entries recorded before flaghook kept it" });

const AuditEntry = z
  .object({
    id: z.number().int().openapi({ description: "The entry's number within the organisation (= seq)" }),
    seq: z.number().int().openapi({ description: "1, 2, 3 ... per organisation: the entry's place in the signed log" }),
    legacy_id: z.number().int().nullable().openapi({ description: "The global id of an entry recorded before per-organisation numbers" }),
    event_id: z.string(),
    created_date: z.string().openapi({ description: "When the source says the change happened (occurred_at), else receipt" }),
    received_at: z.string().openapi({ description: "When flaghook received it (flaghook's clock)" }),
    time_warning: z
      .enum(["ahead_of_receipt", "behind_receipt"])
      .nullable()
      .openapi({ description: "created_date is further ahead of / behind receipt than AUDIT_MAX_FUTURE_SECONDS / AUDIT_MAX_PAST_DAYS" }),
    submitter: Submitter,
    log: z.string(),
    author: z
      .object({ id: z.number().nullable(), email: z.string().nullable(), first_name: z.string(), last_name: z.string() })
      .nullable(),
    environment: z.object({ id: z.number(), name: z.string() }).nullable(),
    project: z.object({ id: z.number(), name: z.string(), organisation: z.number() }).nullable(),
    related_object_id: z.number().nullable(),
    related_object_type: z.string(),
    related_object_uuid: z.string().nullable(),
    is_system_event: z.boolean(),
  })
  .openapi("AuditEntry");

export const ArchiveRead = z
  .object({
    segments_read: z.number().int(),
    partial: z.boolean().openapi({ description: "true: the answer stopped at its bound of archive segments; the page may hold fewer entries than page_size. Follow `next`." }),
  })
  .openapi("ArchiveRead", { description: "Present when the answer read entries from the R2 archive (AUDIT_HOT_DAYS)" });

const AuditEntryDetail = AuditEntry.extend({
  change_type: z.enum(["CREATE", "UPDATE", "DELETE"]),
  change_details: z.array(z.object({ field: z.string(), old: z.unknown(), new: z.unknown() })),
  api_key_name: z.string().nullable(),
  archive: ArchiveRead.optional(),
}).openapi("AuditEntryDetail");

/** One entry as every API answer and page shows it. */
export const auditResult = (row: AuditEntryRow, limits: TimeLimits) => ({
  ...auditData(row),
  seq: row.seq,
  legacy_id: row.legacyId,
  event_id: row.eventId,
  received_at: isoTime(row.receivedAt),
  time_warning: timeWarning(row.createdDate, row.receivedAt, limits),
  submitter: submitterOf(row),
});

const security = [{ apiKey: [] }];
const EXPORT_PAGE = 500;

export const auditRoutes = resource();
auditRoutes.use("*", requireOrganisation, jsonBodyOnly);

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["Audit log"],
    summary: "Audit entries, newest first, filtered",
    security,
    request: { query: AuditFiltersSchema.extend({ page_size: pageSize, cursor: z.string().max(512).optional() }) },
    responses: { 200: json(page(AuditEntry).extend({ archive: ArchiveRead.optional() }), "A page of entries"), ...errorResponses },
  }),
  async (c) => {
    const { page_size, cursor, ...filters } = c.req.valid("query");
    const after = cursor ? decodeCursor<AuditCursor>(cursor, ["string", "number"]) : undefined;
    const { rows, next, archive } = await listEntries(await logStore(c.env, c.get("orgId")), c.get("orgId"), filters, page_size, after);
    const limits = config(c.env).auditTimeLimits;
    return c.json({ results: rows.map((row) => auditResult(row, limits)), next: next ? encodeCursor(next) : null, ...(archive ? { archive } : {}) }, 200);
  },
);

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/export",
    tags: ["Audit log"],
    summary: "Every entry matching the filters, streamed as NDJSON or CSV",
    security,
    request: { query: AuditFiltersSchema.extend({ format: z.enum(["ndjson", "csv"]).default("ndjson") }) },
    responses: {
      200: { description: "The export", content: { "application/x-ndjson": { schema: z.string() }, "text/csv": { schema: z.string() } } },
      ...errorResponses,
    },
  }),
  async (c) => {
    const { format, ...filters } = c.req.valid("query");
    const orgId = c.get("orgId");
    const store = await logStore(c.env, orgId);
    const reader = new ArchiveReader(store, orgId);
    // The first page is read before answering, so a failure is an error answer, not an empty 200.
    const first = await listEntries(store, orgId, filters, EXPORT_PAGE, undefined, reader);
    // An unfiltered NDJSON export ends with the leaf hashes of entries retention removed, so the
    // whole tree can still be checked offline (npm run verify).
    const removed = format === "ndjson" && Object.values(filters).every((v) => v === undefined) ? await removedThrough(store.db, orgId) : 0;
    const segments = (await reader.segments()).filter((s) => (!filters.since || s.sortMax >= filters.since) && (!filters.until || s.sortMin <= filters.until));
    const stream = exportStream(store, orgId, filters, format, config(c.env).auditTimeLimits, first, reader, removed);
    return c.body(stream, 200, {
      "Content-Type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "Content-Disposition": `attachment; filename="flaghook-audit.${format}"`,
      // Says the export reaches into the R2 archive, and how far: it reads these segments as it streams.
      ...(segments.length ? { "Flaghook-Archive": `segments=${segments.length}` } : {}),
      ...(removed ? { "Flaghook-Removed-Through": String(removed) } : {}),
    });
  },
);

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/legacy/{old_id}",
    tags: ["Audit log"],
    summary: "Where an entry recorded before per-organisation numbers lives now",
    description: "Redirects (308) from the entry's old global id to /api/v1/audit/{seq}; another organisation's ids answer 404.",
    security,
    request: { params: z.object({ old_id: numericId("old_id") }) },
    responses: { 308: { description: "The entry's address" }, ...errorResponses },
  }),
  async (c) => {
    const seq = await seqOfLegacyId(await logDatabase(c.env, c.get("orgId")), c.get("orgId"), c.req.valid("param").old_id);
    if (seq === undefined) throw notFound("audit entry");
    return c.redirect(`/api/v1/audit/${seq}`, 308);
  },
);

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}",
    tags: ["Audit log"],
    summary: "One entry (by its seq) with what changed",
    security,
    request: { params: z.object({ id: numericId("id") }) },
    responses: { 200: json(AuditEntryDetail, "The entry"), ...errorResponses },
  }),
  async (c) => {
    const seq = c.req.valid("param").id;
    const found = await findEntry(await logStore(c.env, c.get("orgId")), c.get("orgId"), seq);
    if (!found) throw notFound("audit entry");
    if (found.removed) throw removedEntry(seq);
    const { row, archived } = found;
    const event = JSON.parse(row.event) as ChangeEvent;
    return c.json(
      {
        ...auditResult(row, config(c.env).auditTimeLimits),
        change_type: changeType(event),
        change_details: changeDetails(event),
        api_key_name: row.apiKeyName,
        ...(archived ? { archive: { segments_read: 1, partial: false } } : {}),
      },
      200,
    );
  },
);

const CSV_COLUMNS = [
  "id",
  "legacy_id",
  "created_date",
  "received_at",
  "time_warning",
  "log",
  "author_id",
  "author_email",
  "project_id",
  "project_name",
  "environment_id",
  "environment_name",
  "related_object_type",
  "related_object_id",
  "related_object_uuid",
  "is_system_event",
  "submitter_type",
  "submitter_id",
  "submitter_name",
  "event_id",
] as const;

function csvRow(row: AuditEntryRow, limits: TimeLimits): string {
  const values = [
    row.seq,
    row.legacyId,
    row.createdDate,
    isoTime(row.receivedAt),
    timeWarning(row.createdDate, row.receivedAt, limits),
    row.log,
    row.authorId,
    row.authorEmail,
    row.projectId,
    row.projectName,
    row.environmentId,
    row.environmentName,
    row.relatedObjectType,
    row.relatedObjectId,
    row.relatedObjectUuid,
    row.isSystemEvent,
    row.submitterType,
    row.submitterId,
    row.submitterName,
    row.eventId,
  ];
  return values.map(csvCell).join(",") + "\r\n";
}

/** RFC 4180 quoting, and a leading quote on cells a spreadsheet would run as a formula. */
function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** GET of an entry retention removed: 410, saying what is left of it. */
export const removedEntry = (seq: number) =>
  new ApiError(410, "removed_by_retention", `entry ${seq} was removed by the retention policy (AUDIT_RETENTION_DAYS); its leaf hash stays in the signed tree`);

/**
 * Pages through the log with the same keyset as the list, so memory stays flat at any size (the
 * archive's segments are read as the pages reach them, two kept at a time). Each NDJSON line also
 * carries `leaf`, the canonical text the signed log hashes (npm run verify); after them come entries
 * `removed` by retention, newest first, as `{"seq", "removed": true, "leaf_hash"}`.
 */
function exportStream(
  store: LogStore,
  orgId: number,
  filters: AuditFilters,
  format: "ndjson" | "csv",
  limits: TimeLimits,
  first: AuditPage,
  reader: ArchiveReader,
  removed: number,
) {
  const encoder = new TextEncoder();
  let after: AuditCursor | undefined;
  let pending: AuditPage | null = first;
  let done = false;
  let removedFrom = removed;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) {
        // Removed entries' leaf hashes, a few tiles (256 each) a pull.
        const lo = Math.max(1, removedFrom - 4095);
        const hashes = await removedLeafHashes(store.db, orgId, lo, removedFrom);
        let out = "";
        for (let seq = removedFrom; seq >= lo; seq--) out += JSON.stringify({ seq, removed: true, leaf_hash: hashes.get(seq) ?? null }) + "\n";
        controller.enqueue(encoder.encode(out));
        removedFrom = lo - 1;
        if (removedFrom < 1) controller.close();
        return;
      }
      let out = "";
      if (pending === first && format === "csv") out += CSV_COLUMNS.join(",") + "\r\n";
      const { rows, next } = pending ?? (await listEntries(store, orgId, filters, EXPORT_PAGE, after, reader));
      pending = null;
      for (const row of rows) out += format === "csv" ? csvRow(row, limits) : JSON.stringify({ ...auditResult(row, limits), leaf: auditLeaf(row) }) + "\n";
      if (out) controller.enqueue(encoder.encode(out));
      if (next) after = next;
      else if (removedFrom >= 1) done = true;
      else controller.close();
    },
  });
}
