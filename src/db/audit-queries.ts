// Reading the audit log: every filter of SPEC 6 as one WHERE clause, keyset pages newest first.
import { and, desc, eq, gte, inArray, lte, or, sql, type SQL } from "drizzle-orm";
import type { SubmitterType } from "../domain/provenance";
import { searchable, searchEntries } from "./audit-search";
import { auditEntries, type AuditEntryRow } from "./schema";
import type { Db } from "./client";

export interface AuditFilters {
  project?: number;
  environment?: number[];
  search?: string;
  related_object_type?: string;
  author?: string;
  is_system_event?: boolean;
  submitter_type?: SubmitterType;
  submitter?: string;
  since?: string;
  until?: string;
}

/** Position after the last row of a page: (sort_time, seq) of that row. */
export type AuditCursor = [string, number];

export function auditWhere(orgId: number, f: AuditFilters, after?: AuditCursor): SQL {
  const t = auditEntries;
  const conditions: (SQL | undefined)[] = [eq(t.orgId, orgId)];
  if (f.project !== undefined) conditions.push(eq(t.projectId, f.project));
  if (f.environment?.length) conditions.push(f.environment.length === 1 ? eq(t.environmentId, f.environment[0]) : inArray(t.environmentId, f.environment));
  if (f.related_object_type) conditions.push(eq(t.relatedObjectType, f.related_object_type));
  // A literal, not a bound value: the planner matches it to audit_system_time's `is_system_event = 1`.
  if (f.is_system_event !== undefined) conditions.push(f.is_system_event ? sql`${t.isSystemEvent} = 1` : sql`${t.isSystemEvent} = 0`);
  if (f.author) {
    conditions.push(/^\d+$/.test(f.author) ? eq(t.authorId, Number(f.author)) : eq(t.authorEmail, f.author.toLowerCase()));
  }
  if (f.submitter_type) conditions.push(eq(t.submitterType, f.submitter_type));
  if (f.submitter) conditions.push(eq(t.submitterId, f.submitter));
  // The list's time: created_date, but never later than receipt (a claimed future sorts at receipt).
  if (f.since) conditions.push(gte(t.sortTime, f.since));
  if (f.until) conditions.push(lte(t.sortTime, f.until));
  if (f.search) {
    // Searches of 3 characters or more go through the index (db/audit-search.ts); shorter ones scan.
    // instr, not LIKE: D1 refuses LIKE patterns over 50 bytes, and a search may be 256 characters.
    conditions.push(sql`instr(${t.searchText}, ${f.search.toLowerCase()}) > 0`);
  }
  if (after) conditions.push(or(sql`${t.sortTime} < ${after[0]}`, and(eq(t.sortTime, after[0]), sql`${t.seq} < ${after[1]}`)));
  return and(...conditions)!;
}

/** Up to `n` entries matching the filters after the cursor, newest first (D1 only). */
export function auditRows(db: Db, orgId: number, filters: AuditFilters, n: number, after?: AuditCursor): Promise<AuditEntryRow[]> {
  const { search, ...rest } = filters;
  if (search && searchable(search)) return searchEntries(db, orgId, search, auditWhere(orgId, rest, after), n - 1, { afterSeq: after?.[1], since: filters.since });
  return auditRowsQuery(db, orgId, filters, n, after);
}

/** The plain (not indexed-search) list query, for running in a batch with others. */
export const auditRowsQuery = (db: Db, orgId: number, filters: AuditFilters, n: number, after?: AuditCursor) =>
  db.select().from(auditEntries).where(auditWhere(orgId, filters, after)).orderBy(desc(auditEntries.sortTime), desc(auditEntries.seq)).limit(n);

/** A page of `limit` from up to limit + 1 rows newest first: the rows, and the cursor after them if more follow. */
export function pageOf(rows: readonly AuditEntryRow[], limit: number): { rows: AuditEntryRow[]; next: AuditCursor | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, next: rows.length > limit && last ? [last.sortTime, last.seq] : null };
}

/**
 * The filters of `auditWhere` over a row read from elsewhere (the R2 archive): the same answers,
 * field for field.
 */
export function auditMatches(row: AuditEntryRow, f: AuditFilters, after?: AuditCursor): boolean {
  if (f.project !== undefined && row.projectId !== f.project) return false;
  if (f.environment?.length && (row.environmentId === null || !f.environment.includes(row.environmentId))) return false;
  if (f.related_object_type && row.relatedObjectType !== f.related_object_type) return false;
  if (f.is_system_event !== undefined && row.isSystemEvent !== f.is_system_event) return false;
  if (f.author && (/^\d+$/.test(f.author) ? row.authorId !== Number(f.author) : row.authorEmail !== f.author.toLowerCase())) return false;
  if (f.submitter_type && row.submitterType !== f.submitter_type) return false;
  if (f.submitter && row.submitterId !== f.submitter) return false;
  if (f.since && row.sortTime < f.since) return false;
  if (f.until && row.sortTime > f.until) return false;
  if (f.search && !row.searchText.includes(f.search.toLowerCase())) return false;
  if (after && !(row.sortTime < after[0] || (row.sortTime === after[0] && row.seq < after[1]))) return false;
  return true;
}

/** One entry of the organisation by its number, or undefined (another organisation's entries are not found). */
export async function findAuditEntry(db: Db, orgId: number, seq: number): Promise<AuditEntryRow | undefined> {
  const [row] = await db
    .select()
    .from(auditEntries)
    .where(and(eq(auditEntries.orgId, orgId), eq(auditEntries.seq, seq)));
  return row;
}

/** The number an entry recorded before per-organisation numbers has now, from its old global id. */
export async function seqOfLegacyId(db: Db, orgId: number, legacyId: number): Promise<number | undefined> {
  const [row] = await db
    .select({ seq: auditEntries.seq })
    .from(auditEntries)
    .where(and(eq(auditEntries.orgId, orgId), eq(auditEntries.legacyId, legacyId)));
  return row?.seq;
}
