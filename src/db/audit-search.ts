// Text search of the audit log through the FTS5 trigram index `audit_search` (migration
// issue16_audit_search): one row per entry, rowid (org_id << 32) | seq, so an organisation's entries
// are one rowid range that FTS5 walks newest number first and stops when it has enough.
//
// The list's order is (sort_time, seq), not seq: an entry may arrive after later ones (a backdated
// import, a late relay). Each entry stores its watermark, the latest sort time of the organisation's
// entries up to it in seq order (sort_wm, null when that is its own), so a walk down the seq order
// knows when no entry further down can still sort higher, and stops there. Entries above a cursor in
// seq that sort below it are all out of time order: a second, small query finds them through the
// index's `backdated` column.
import { and, desc, getTableColumns, sql, type SQL } from "drizzle-orm";
import { auditSearch } from "./derived";
import { auditEntries, type AuditEntryRow } from "./schema";
import type { Db } from "./client";

/** FTS5's trigram tokenizer matches substrings of 3 characters or more; shorter searches scan (db/audit-queries.ts). */
export const MIN_INDEXED_SEARCH = 3;
/** seq is the low 32 bits of a rowid. */
const SEQ_BITS = 32;
const SEQ_MAX = 2 ** SEQ_BITS - 1;
/** Qualifying entries one walk query reads at most; the first asks for one page and one more. */
const MAX_CHUNK = 1000;

/** Whether a search goes through the index: 3 characters or more, and no NUL (FTS5 query text ends at one; such a search scans). */
export const searchable = (search: string) => Array.from(search.toLowerCase()).length >= MIN_INDEXED_SEARCH && !search.includes("\u0000");

type Key = { sortTime: string; seq: number };
/** Newest first, as the list orders: sort_time, then seq, both descending. */
export const newestFirst = (a: Key, b: Key) => (a.sortTime === b.sortTime ? b.seq - a.seq : a.sortTime < b.sortTime ? 1 : -1);

/**
 * The `limit` newest entries (then one more, if any) among those whose log contains `search`, that
 * `where` admits (the organisation, the other filters, the cursor), newest first. `since` ends the
 * walk early: below it nothing can match.
 */
export async function searchEntries(
  db: Db,
  orgId: number,
  search: string,
  where: SQL,
  limit: number,
  bounds: { afterSeq?: number; since?: string },
): Promise<AuditEntryRow[]> {
  const term = search.toLowerCase();
  const phrase = `"${term.replace(/"/g, '""')}"`;
  const want = limit + 1;
  // instr() confirms each candidate: the answer is exactly the substring search, whatever trigrams match.
  const matches = and(where, sql`instr(${auditEntries.searchText}, ${term}) > 0`)!;
  const rowid = (seq: number) => sql`(${orgId} << ${SEQ_BITS}) | ${seq}`;
  /** The ids of the first `n` entries `where` and the search admit, walking `query`'s matches from `toSeq` down. */
  const walk = (query: string, fromSeq: number, toSeq: number, n: number) =>
    db
      .select({ id: auditEntries.id })
      .from(auditSearch)
      .innerJoin(auditEntries, sql`${auditEntries.orgId} = ${orgId} and ${auditEntries.seq} = ${auditSearch.rowid} & ${SEQ_MAX}`)
      .where(and(sql`${auditSearch} match ${query}`, sql`${auditSearch.rowid} between ${rowid(fromSeq)} and ${rowid(toSeq)}`, matches))
      .orderBy(desc(auditSearch.rowid))
      .limit(n);
  // One query a round: the walk's next chunk and, in the first round after a cursor, the entries
  // numbered after the cursor's but sorting below it: all out of time order, and flagged so.
  const read = (parts: SQL[]) =>
    db
      .select()
      .from(auditEntries)
      .where(sql`${auditEntries.id} in (${sql.join(parts.map((p) => sql`select * from (${p})`), sql` union all `)})`);

  const found: AuditEntryRow[] = [];
  const { afterSeq, since } = bounds;
  let top = afterSeq ?? SEQ_MAX;
  for (let n = want, round = 0; top >= 1; n = Math.min(n * 4, MAX_CHUNK), round++) {
    const parts = [walk(`log : ${phrase}`, 1, top, n).getSQL()];
    if (round === 0 && afterSeq !== undefined && afterSeq < SEQ_MAX) parts.push(walk(`log : ${phrase} AND backdated : "yes"`, afterSeq + 1, SEQ_MAX, SEQ_MAX).getSQL());
    const rows = await read(parts);
    const walked = rows.filter((r) => r.seq <= top).sort((a, b) => b.seq - a.seq);
    found.push(...rows);
    found.sort(newestFirst);
    found.length = Math.min(found.length, want);
    if (walked.length < n) break; // the walk reached the first entry
    const last = walked[walked.length - 1];
    // Every entry below `last` in seq sorts at or below its watermark, and below it on a tie.
    const watermark = last.sortWatermark ?? last.sortTime;
    if (found.length === want && watermark <= found[want - 1].sortTime) break;
    if (since !== undefined && watermark < since) break;
    top = last.seq - 1;
  }
  return found;
}
