// Moving old entries to R2, and retention, run by the scheduled handler.
//
// Archive (AUDIT_HOT_DAYS): an organisation's entries leave D1 in seq order, a day of receipt at a
// time (at most ARCHIVE_SEGMENT_ENTRIES per segment), once that day is older than AUDIT_HOT_DAYS.
// Each segment is copied (a gzipped NDJSON object), verified (read back: it decompresses to exactly
// the NDJSON written), then, in one D1 transaction, named in audit_segments and deleted from
// audit_entries. A failure at any step leaves the entries in D1, and the next run starts that
// segment again from the beginning (its object is written anew under the same key). Entries are
// moved only once sealed (when AUDIT_SIGNING_KEY is set), fanned out, and never an organisation's
// last entry (its numbering and watermark continue from it).
//
// Retention (AUDIT_RETENTION_DAYS): entries received longer ago than that are removed in seq order,
// segments of the archive first (the object, then its index row), then rows still in D1; the number
// removed through is kept in audit_retention. The tree's hashes (audit_tiles) and the event ids stay.
import { and, asc, eq, gt, lte, sql } from "drizzle-orm";
import { now } from "../domain/clock";
import { runBatch } from "../db/client";
import { auditEntries, auditRetention, auditSegments, type AuditEntryRow } from "../db/schema";
import { config, type Env } from "../env";
import { logDatabases } from "../db/placement";
import { removedThrough, type LogStore } from "./entries";
import { encodeSegment, readSegment, segmentKey } from "./segments";

const DAY = 86_400_000;
/** Entries in one segment at most (about 2 MB of NDJSON, a few hundred KB gzipped). */
export const ARCHIVE_SEGMENT_ENTRIES = 2000;
/** Segments written per run at most, over every organisation. */
const SEGMENTS_PER_RUN = 10;
/** Entries removed from D1 per statement by retention. */
const RETENTION_CHUNK = 2000;

/** The steps of moving a segment, where tests inject failures. */
export type ArchiveStep = "read" | "copy" | "verify" | "commit";
export interface ArchiveOptions {
  /** Called before each step; a throw fails the move there. Tests only. */
  beforeStep?: (step: ArchiveStep, segment: { orgId: number; seqLo: number; seqHi: number; key: string }) => void | Promise<void>;
}

export interface Archived {
  orgId: number;
  seqLo: number;
  seqHi: number;
  entries: number;
}

interface LogState {
  /** The organisation's log where it lives (src/db/placement.ts). */
  store: LogStore;
  orgId: number;
  /** The organisation's highest seq (never archived). */
  last: number;
  /** Entries 1..done are archived or removed. */
  done: number;
  /** The latest checkpoint's size: entries past it are not archived while the log is being signed. */
  sealed: number;
}

/** Every organisation's log state, read in the database holding it. */
async function logStates(env: Env): Promise<LogState[]> {
  const states: LogState[] = [];
  for (const [db, orgIds] of await logDatabases(env)) {
    const store = { db, bucket: env.AUDIT_BUCKET };
    const rows = await db.all<{ org_id: number; last: number | null; archived: number | null; removed: number | null; sealed: number | null }>(sql`
      select o.value as org_id,
        (select max(seq) from audit_entries where org_id = o.value) as last,
        (select max(seq_hi) from audit_segments where org_id = o.value) as archived,
        (select removed_through from audit_retention where org_id = o.value) as removed,
        (select max(tree_size) from audit_checkpoints where org_id = o.value) as sealed
      from json_each(${JSON.stringify(orgIds)}) o`);
    for (const r of rows) {
      if (r.last !== null) states.push({ store, orgId: r.org_id, last: r.last, done: Math.max(r.archived ?? 0, r.removed ?? 0), sealed: r.sealed ?? 0 });
    }
  }
  return states;
}

const dayOf = (ms: number) => Math.floor(ms / DAY);

/** Moves what AUDIT_HOT_DAYS says is old to R2; one organisation's failure does not stop the others. */
export async function archiveLogs(env: Env, options: ArchiveOptions = {}): Promise<Archived[]> {
  const cfg = config(env);
  if (cfg.auditHotDays === null) return [];
  // Whole days of receipt, the last of them ended AUDIT_HOT_DAYS ago.
  const before = dayOf(now() - cfg.auditHotDays * DAY) * DAY;
  const signed = cfg.auditSigningKey !== null;
  const moved: Archived[] = [];
  for (const log of await logStates(env)) {
    try {
      while (moved.length < SEGMENTS_PER_RUN) {
        const limit = Math.min(log.last - 1, signed ? log.sealed : Infinity);
        const segment = await archiveNext(log.store, log, before, limit, options);
        if (!segment) break;
        moved.push(segment);
        log.done = segment.seqHi;
      }
    } catch (err) {
      console.error(`archiving the audit log of organisation ${log.orgId} failed: ${String(err)}`);
    }
  }
  return moved;
}

/** The next segment of one log: the entries after `done` received on one day before `before`, up to `limit`. */
async function archiveNext(store: LogStore, log: LogState, before: number, limit: number, options: ArchiveOptions): Promise<Archived | null> {
  if (log.done >= limit) return null;
  const step = (name: ArchiveStep, key: string, seqLo: number, seqHi: number) => options.beforeStep?.(name, { orgId: log.orgId, seqLo, seqHi, key });
  await step("read", "", log.done + 1, limit);
  const candidates = await store.db
    .select()
    .from(auditEntries)
    .where(and(eq(auditEntries.orgId, log.orgId), gt(auditEntries.seq, log.done), lte(auditEntries.seq, limit)))
    .orderBy(asc(auditEntries.seq))
    .limit(ARCHIVE_SEGMENT_ENTRIES);
  const rows: AuditEntryRow[] = [];
  for (const row of candidates) {
    // Gapless, fanned out, received before the cut, on the first entry's day of receipt.
    const expected = log.done + rows.length + 1;
    if (row.seq !== expected || !row.fannedOut || row.receivedAt >= before || (rows.length && dayOf(row.receivedAt) !== dayOf(rows[0].receivedAt))) break;
    rows.push(row);
  }
  if (!rows.length) return null;
  const seqLo = rows[0].seq;
  const seqHi = rows[rows.length - 1].seq;
  const key = segmentKey(log.orgId, seqLo, seqHi);

  await step("copy", key, seqLo, seqHi);
  const encoded = await encodeSegment(rows);
  await store.bucket.put(key, encoded.gzipped, {
    sha256: await crypto.subtle.digest("SHA-256", encoded.gzipped),
    httpMetadata: { contentType: "application/gzip" },
    customMetadata: { organisation: String(log.orgId), seq_lo: String(seqLo), seq_hi: String(seqHi), entries: String(rows.length), ndjson_sha256: encoded.ndjsonSha256 },
  });

  const index = {
    orgId: log.orgId,
    seqLo,
    seqHi,
    key,
    entries: rows.length,
    bytes: encoded.gzipped.length,
    sha256: encoded.ndjsonSha256,
    sortMin: rows.reduce((m, r) => (r.sortTime < m ? r.sortTime : m), rows[0].sortTime),
    sortMax: rows.reduce((m, r) => (r.sortTime > m ? r.sortTime : m), rows[0].sortTime),
    receivedMax: Math.max(...rows.map((r) => r.receivedAt)),
    createdAt: now(),
  };
  await step("verify", key, seqLo, seqHi);
  // Throws unless the stored object decompresses to exactly the NDJSON of these rows.
  await readSegment(store.bucket, index);

  await step("commit", key, seqLo, seqHi);
  // One transaction: the index row, and the entries gone from D1 only if this very segment is the
  // one indexed (a concurrent run that archived a different range leaves these entries alone).
  const [, deleted] = await runBatch(store.db, [
    store.db.insert(auditSegments).values(index).onConflictDoNothing(),
    sql`delete from audit_entries where org_id = ${log.orgId} and seq between ${seqLo} and ${seqHi}
        and exists (select 1 from audit_segments where org_id = ${log.orgId} and seq_lo = ${seqLo} and seq_hi = ${seqHi}) returning seq`,
  ]);
  return deleted.length ? { orgId: log.orgId, seqLo, seqHi, entries: rows.length } : null;
}

export interface Removed {
  orgId: number;
  removedThrough: number;
}

/** Applies AUDIT_RETENTION_DAYS to the archive and to D1. */
export async function applyRetention(env: Env): Promise<Removed[]> {
  const cfg = config(env);
  if (cfg.auditRetentionDays === null) return [];
  const cutoff = now() - cfg.auditRetentionDays * DAY;
  const removed: Removed[] = [];
  for (const log of await logStates(env)) {
    try {
      const through = await removeOld(log.store, log, cutoff);
      if (through !== null) removed.push({ orgId: log.orgId, removedThrough: through });
    } catch (err) {
      console.error(`retention of the audit log of organisation ${log.orgId} failed: ${String(err)}`);
    }
  }
  return removed;
}

async function removeOld(store: LogStore, log: LogState, cutoff: number): Promise<number | null> {
  const db = store.db;
  let through = await removedThrough(db, log.orgId);
  const start = through;
  const mark = (upTo: number, receivedMax: number) =>
    db
      .insert(auditRetention)
      .values({ orgId: log.orgId, removedThrough: upTo, receivedMax, updatedAt: now() })
      .onConflictDoUpdate({ target: auditRetention.orgId, set: { removedThrough: sql`max(removed_through, excluded.removed_through)`, receivedMax: sql`max(${auditRetention.receivedMax}, excluded.received_max)`, updatedAt: now() } });
  // Archived segments, oldest first, each wholly older than the cut: the object, then its row.
  const segments = await db.select().from(auditSegments).where(eq(auditSegments.orgId, log.orgId)).orderBy(asc(auditSegments.seqLo));
  for (const segment of segments) {
    if (segment.receivedMax >= cutoff || segment.seqLo > through + 1) break;
    await store.bucket.delete(segment.key);
    await runBatch(db, [
      db.delete(auditSegments).where(and(eq(auditSegments.orgId, log.orgId), eq(auditSegments.seqLo, segment.seqLo))),
      mark(segment.seqHi, segment.receivedMax),
    ]);
    through = segment.seqHi;
  }
  if (segments.some((s) => s.seqLo > through)) return through > start ? through : null;
  // Then rows still in D1, in seq order, never the organisation's last entry.
  for (;;) {
    const rows = await db
      .select({ seq: auditEntries.seq, receivedAt: auditEntries.receivedAt })
      .from(auditEntries)
      .where(and(eq(auditEntries.orgId, log.orgId), gt(auditEntries.seq, through), lte(auditEntries.seq, log.last - 1)))
      .orderBy(asc(auditEntries.seq))
      .limit(RETENTION_CHUNK);
    let upTo = through;
    let receivedMax = 0;
    for (const row of rows) {
      if (row.seq !== upTo + 1 || row.receivedAt >= cutoff) break;
      upTo = row.seq;
      receivedMax = Math.max(receivedMax, row.receivedAt);
    }
    if (upTo === through) break;
    await runBatch(db, [
      db.delete(auditEntries).where(and(eq(auditEntries.orgId, log.orgId), gt(auditEntries.seq, through), lte(auditEntries.seq, upTo))),
      mark(upTo, receivedMax),
    ]);
    through = upTo;
    if (rows.length < RETENTION_CHUNK) break;
  }
  return through > start ? through : null;
}
