// An organisation's log as it is stored: recent entries in D1, older ones in R2 segments
// (src/audit/archive.ts), the oldest perhaps removed by retention. Lists, single entries and leaves
// are read here, from wherever each entry is; an answer that read the archive says so. One answer
// reads at most SEGMENTS_PER_ANSWER segments (more only when a page could not otherwise move on),
// and a list that stopped at that bound answers what it can vouch for and a cursor to go on.
import { and, asc, eq, gte, lte } from "drizzle-orm";
import { auditMatches, auditRows, auditRowsQuery, pageOf, type AuditCursor, type AuditFilters } from "../db/audit-queries";
import { newestFirst, searchable } from "../db/audit-search";
import type { Db } from "../db/client";
import { logDatabase } from "../db/placement";
import { auditEntries, auditRetention, auditSegments, type AuditEntryRow, type AuditSegmentRow } from "../db/schema";
import type { Env } from "../env";
import { readSegment } from "./segments";

/** Segments one answer reads at most (each up to ARCHIVE_SEGMENT_ENTRIES entries, one R2 read). */
export const SEGMENTS_PER_ANSWER = 8;

export interface LogStore {
  db: Db;
  bucket: R2Bucket;
}

/** Where the organisation's log is: its database (src/db/placement.ts) and the archive's bucket. */
export const logStore = async (env: Env, orgId: number): Promise<LogStore> => ({ db: await logDatabase(env, orgId), bucket: env.AUDIT_BUCKET });

/** What an answer took from the archive. `partial`: it stopped at its bound; follow `next` for the rest. */
export interface ArchiveRead {
  segments_read: number;
  partial: boolean;
}

/** One organisation's archive as one answer (or one export) reads it: its index once, segments cached. */
export class ArchiveReader {
  private index: AuditSegmentRow[] | null = null;
  private cached = new Map<string, AuditEntryRow[]>();
  /** Segments fetched from R2 so far. */
  fetched = 0;

  constructor(
    private readonly store: LogStore,
    readonly orgId: number,
  ) {}

  /** The index, in seq order; `rows` is what a batch already read of it. */
  async segments(rows?: AuditSegmentRow[]): Promise<AuditSegmentRow[]> {
    this.index ??= rows ?? (await this.store.db.select().from(auditSegments).where(eq(auditSegments.orgId, this.orgId)).orderBy(asc(auditSegments.seqLo)));
    return this.index;
  }

  indexQuery() {
    return this.store.db.select().from(auditSegments).where(eq(auditSegments.orgId, this.orgId)).orderBy(asc(auditSegments.seqLo));
  }

  /** The segment's rows; the last two read stay cached (an export reads each segment's entries over several pages). */
  async rows(segment: AuditSegmentRow): Promise<AuditEntryRow[]> {
    const hit = this.cached.get(segment.key);
    if (hit) return hit;
    const rows = await readSegment(this.store.bucket, segment);
    this.fetched++;
    this.cached.set(segment.key, rows);
    if (this.cached.size > 2) this.cached.delete(this.cached.keys().next().value!);
    return rows;
  }

  async segmentOf(seq: number): Promise<AuditSegmentRow | undefined> {
    return (await this.segments()).find((s) => s.seqLo <= seq && seq <= s.seqHi);
  }
}

export interface AuditPage {
  rows: AuditEntryRow[];
  next: AuditCursor | null;
  archive: ArchiveRead | null;
}

/** Segments that may hold entries the filters and cursor admit, newest sort time first. */
function candidates(segments: readonly AuditSegmentRow[], f: AuditFilters, after?: AuditCursor) {
  return segments
    .filter((s) => (!f.since || s.sortMax >= f.since) && (!f.until || s.sortMin <= f.until) && (!after || s.sortMin <= after[0]))
    .sort((a, b) => (a.sortMax === b.sortMax ? b.seqHi - a.seqHi : a.sortMax < b.sortMax ? 1 : -1));
}

/** A page of the log newest first, from D1 and, where the page reaches that far, the archive. */
export async function listEntries(store: LogStore, orgId: number, filters: AuditFilters, limit: number, after?: AuditCursor, reader = new ArchiveReader(store, orgId)): Promise<AuditPage> {
  const want = limit + 1;
  let hot: AuditEntryRow[];
  let index: AuditSegmentRow[];
  if (filters.search && searchable(filters.search)) {
    // The indexed search walks D1 in several queries; the index is read after them, so an entry
    // archived meanwhile is taken from one place or the other, never both, never neither.
    hot = await auditRows(store.db, orgId, filters, want, after);
    index = await reader.segments();
  } else {
    // One batch, one snapshot of D1: the entries and the index agree.
    const [rows, segments] = await store.db.batch([auditRowsQuery(store.db, orgId, filters, want, after), reader.indexQuery()]);
    hot = rows;
    index = await reader.segments(segments);
  }
  if (!index.length) return { ...pageOf(hot, limit), archive: null };
  const archived = (seq: number) => index.some((s) => s.seqLo <= seq && seq <= s.seqHi);
  const found = hot.filter((r) => !archived(r.seq));
  let read = 0;
  let stop: string | null = null;
  for (const segment of candidates(index, filters, after)) {
    // Nothing in this segment, or any after it, sorts above the page's last place.
    if (found.length >= want && segment.sortMax < found[want - 1].sortTime) break;
    // At the bound, stop where the next page can start strictly below this one's cursor.
    if (read >= SEGMENTS_PER_ANSWER && (!after || segment.sortMax < after[0])) {
      stop = segment.sortMax;
      break;
    }
    found.push(...(await reader.rows(segment)).filter((r) => auditMatches(r, filters, after)));
    found.sort(newestFirst);
    found.length = Math.min(found.length, want);
    read++;
  }
  const archive = read || stop !== null ? { segments_read: read, partial: stop !== null } : null;
  if (stop === null) return { ...pageOf(found, limit), archive };
  // Unread segments hold only entries at or below `stop`: what sorts above it is final.
  const sure = found.filter((r) => r.sortTime > stop);
  const page = pageOf(sure, limit);
  return { rows: page.rows, next: page.next ?? [stop, Number.MAX_SAFE_INTEGER], archive };
}

export type FoundEntry =
  | { row: AuditEntryRow; archived: boolean; removed?: undefined }
  | { row?: undefined; archived?: undefined; removed: true };

/** One entry by its number, from D1 or the archive; `removed` when retention took it. */
export async function findEntry(store: LogStore, orgId: number, seq: number, reader = new ArchiveReader(store, orgId)): Promise<FoundEntry | undefined> {
  const [row] = await store.db
    .select()
    .from(auditEntries)
    .where(and(eq(auditEntries.orgId, orgId), eq(auditEntries.seq, seq)));
  if (row) return { row, archived: false };
  const segment = await reader.segmentOf(seq);
  if (segment) {
    const archived = (await reader.rows(segment)).find((r) => r.seq === seq);
    return archived ? { row: archived, archived: true } : undefined;
  }
  return seq <= (await removedThrough(store.db, orgId)) ? { removed: true } : undefined;
}

/** Entries 1..this were removed by AUDIT_RETENTION_DAYS (0: none). */
export async function removedThrough(db: Db, orgId: number): Promise<number> {
  const [row] = await db.select({ removedThrough: auditRetention.removedThrough }).from(auditRetention).where(eq(auditRetention.orgId, orgId));
  return row?.removedThrough ?? 0;
}

/**
 * Every stored entry with seq in [from, to], in seq order, from D1 and the archive (sealing and
 * verification; a window of at most a few segments). Numbers held nowhere are simply absent.
 */
export async function entriesBetween(store: LogStore, orgId: number, from: number, to: number, reader = new ArchiveReader(store, orgId)): Promise<AuditEntryRow[]> {
  const hot = await store.db
    .select()
    .from(auditEntries)
    .where(and(eq(auditEntries.orgId, orgId), gte(auditEntries.seq, from), lte(auditEntries.seq, to)))
    .orderBy(asc(auditEntries.seq));
  const archived: AuditEntryRow[] = [];
  for (const segment of await reader.segments()) {
    if (segment.seqHi < from || segment.seqLo > to) continue;
    archived.push(...(await reader.rows(segment)).filter((r) => r.seq >= from && r.seq <= to));
  }
  const bySeq = new Set(archived.map((r) => r.seq));
  return [...archived, ...hot.filter((r) => !bySeq.has(r.seq))].sort((a, b) => a.seq - b.seq);
}
