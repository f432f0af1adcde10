// The audit log: filtered keyset pages, one entry with its change details, streaming export, and
// the redirect from an entry's old global id. Entries are named by their per-organisation `seq`.
import { createRoute, z } from "@hono/zod-openapi";
import { auditData, changeDetails, changeType, submitterOf, timeWarning, type TimeLimits } from "../domain/audit";
import { isoTime } from "../domain/clock";
import { notFound } from "../domain/errors";
import { timestamp, type ChangeEvent } from "../domain/event";
import { auditLeaf } from "../domain/leaf";
import { SUBMITTER_TYPES } from "../domain/provenance";
import { findAuditEntry, listAudit, seqOfLegacyId, type AuditCursor, type AuditFilters } from "../db/audit-queries";
import { database } from "../db/client";
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

const AuditEntryDetail = AuditEntry.extend({
  change_type: z.enum(["CREATE", "UPDATE", "DELETE"]),
  change_details: z.array(z.object({ field: z.string(), old: z.unknown(), new: z.unknown() })),
  api_key_name: z.string().nullable(),
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
    responses: { 200: json(page(AuditEntry), "A page of entries"), ...errorResponses },
  }),
  async (c) => {
    const { page_size, cursor, ...filters } = c.req.valid("query");
    const after = cursor ? decodeCursor<AuditCursor>(cursor, ["string", "number"]) : undefined;
    const { rows, next } = await listAudit(database(c.env.DB), c.get("orgId"), filters, page_size, after);
    const limits = config(c.env).auditTimeLimits;
    return c.json({ results: rows.map((row) => auditResult(row, limits)), next: next ? encodeCursor(next) : null }, 200);
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
    // The first page is read before answering, so a failure is an error answer, not an empty 200.
    const first = await listAudit(database(c.env.DB), c.get("orgId"), filters, EXPORT_PAGE);
    const stream = exportStream(c.env.DB, c.get("orgId"), filters, format, config(c.env).auditTimeLimits, first);
    return c.body(stream, 200, {
      "Content-Type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "Content-Disposition": `attachment; filename="flaghook-audit.${format}"`,
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
    const seq = await seqOfLegacyId(database(c.env.DB), c.get("orgId"), c.req.valid("param").old_id);
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
    const row = await findAuditEntry(database(c.env.DB), c.get("orgId"), c.req.valid("param").id);
    if (!row) throw notFound("audit entry");
    const event = JSON.parse(row.event) as ChangeEvent;
    return c.json(
      {
        ...auditResult(row, config(c.env).auditTimeLimits),
        change_type: changeType(event),
        change_details: changeDetails(event),
        api_key_name: row.apiKeyName,
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

type AuditPage = Awaited<ReturnType<typeof listAudit>>;

/**
 * Pages through the log with the same keyset as the list, so memory stays flat at any size. Each
 * NDJSON line also carries `leaf`, the canonical text the signed log hashes (npm run verify).
 */
function exportStream(d1: D1Database, orgId: number, filters: AuditFilters, format: "ndjson" | "csv", limits: TimeLimits, first: AuditPage) {
  const encoder = new TextEncoder();
  let after: AuditCursor | undefined;
  let pending: AuditPage | null = first;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let out = "";
      if (pending === first && format === "csv") out += CSV_COLUMNS.join(",") + "\r\n";
      const { rows, next } = pending ?? (await listAudit(database(d1), orgId, filters, EXPORT_PAGE, after));
      pending = null;
      for (const row of rows) out += format === "csv" ? csvRow(row, limits) : JSON.stringify({ ...auditResult(row, limits), leaf: auditLeaf(row) }) + "\n";
      if (out) controller.enqueue(encoder.encode(out));
      if (!next) controller.close();
      else after = next;
    },
  });
}
