// Verification: the entries stored in D1 recomputed against the latest signed checkpoint. Used by
// GET /api/v1/audit/verify (a window of the log per request) and by the scheduled handler (a
// rolling window per organisation, which records a system entry and an alert event on failure).
import { and, eq, gte, lte, sql } from "drizzle-orm";
import { parseCheckpoint } from "../domain/checkpoint";
import { timingSafeEqual, toBase64, utf8 } from "../domain/crypto";
import { auditLeaf, type LeafSource } from "../domain/leaf";
import { completeTreeHash, leafHash } from "../domain/merkle";
import { hashAt, tileWidth, TILE_WIDTH, type TileKey } from "../domain/tiles";
import type { Db } from "../db/client";
import { auditEntries } from "../db/schema";
import { laterCheckpointInR2, latestCheckpoint } from "./checkpoints";
import { removedThrough, type LogStore } from "./entries";
import { leafColumns, leafPages } from "./seal";
import { SegmentUnreadable } from "./segments";
import type { Signer } from "./signer";
import { MissingNode, TreeReader } from "./tree";

export interface Problem {
  /** The entry at fault, or null for the log as a whole (its checkpoint, its tree). */
  seq: number | null;
  problem: string;
}

export interface Verification {
  ok: boolean;
  tree_size: number;
  /** Entries whose content was checked (those retention removed have only their sealed hash left). */
  checked: number;
  /** Entries 1..removed_through were removed by retention: not problems, and not checkable. */
  removed_through: number;
  /** The window of entries checked (seq, inclusive), and where the next window starts. */
  from: number;
  to: number;
  next: number | null;
  problems: Problem[];
}

/** Problems listed at most; `ok` is false whenever there is one. */
const MAX_PROBLEMS = 1000;

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && timingSafeEqual(toBase64(a), toBase64(b));

/**
 * Checks entries from..from+limit-1 (capped at the checkpoint's size): the checkpoint's signature,
 * that R2 holds no later checkpoint than D1, that the stored tree hashes up to the signed root along
 * the window, and that every entry of the window is there and hashes to the leaf that was sealed.
 */
export async function verifyLog(
  db: Db,
  bucket: R2Bucket,
  signer: Signer,
  orgId: number,
  window: { from: number; limit: number },
): Promise<Verification> {
  const problems: Problem[] = [];
  const report = (seq: number | null, problem: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, problem });
  };
  const checkpoint = await latestCheckpoint(db, orgId);
  const laterSize = await laterCheckpointInR2(bucket, orgId, checkpoint?.treeSize ?? 0);
  if (laterSize !== null) report(null, `R2 keeps a checkpoint of ${laterSize} entries, more than the latest in D1: entries or checkpoints were removed`);
  const removed = await removedThrough(db, orgId);
  if (!checkpoint) return { ok: problems.length === 0, tree_size: 0, checked: 0, removed_through: removed, from: window.from, to: window.from - 1, next: null, problems };

  const size = checkpoint.treeSize;
  const parsed = parseCheckpoint(checkpoint.note);
  const signature = parsed?.signatures.find((s) => s.name === parsed.origin);
  if (!parsed || parsed.treeSize !== size || toBase64(parsed.rootHash) !== checkpoint.rootHash) {
    report(null, "the latest checkpoint's note does not match its tree size and root hash");
  } else if (!signature || !(await signer.verify(parsed.body, signature.signature))) {
    report(null, "the latest checkpoint's signature does not verify with this deployment's key");
  }

  const [{ last }] = await db.all<{ last: number | null }>(sql`select max(seq) as last from audit_entries where org_id = ${orgId}`);
  if ((last ?? 0) < size) report(null, `the log ends at entry ${last ?? 0} but the checkpoint covers ${size}: entries were cut off`);

  const from = Math.max(1, window.from);
  const to = Math.min(size, from + window.limit - 1);
  const tree = new TreeReader(db, orgId);
  let checked = 0;
  if (from <= to) {
    await checkTreeAlong(tree, size, checkpoint.rootHash, from - 1, to, report);
    checked = await checkLeaves({ db, bucket }, tree, orgId, Math.max(from, removed + 1), to, report);
  }
  return {
    ok: problems.length === 0,
    tree_size: size,
    checked,
    removed_through: removed,
    from,
    to,
    next: to < size ? to + 1 : null,
    problems,
  };
}

/**
 * The stored tree, from the tiles holding leaves [lo, hi) up to the root: each complete tile must
 * hash to its entry one level up, and the stored nodes must give the signed root.
 */
async function checkTreeAlong(tree: TreeReader, size: number, rootHash: string, lo: number, hi: number, report: (seq: number | null, p: string) => void) {
  let first = Math.floor(lo / TILE_WIDTH);
  let last = Math.floor((hi - 1) / TILE_WIDTH);
  for (let level = 0, width = size; width >= TILE_WIDTH; level++, width = Math.floor(width / TILE_WIDTH)) {
    const keys: TileKey[] = [];
    for (let index = first; index <= last; index++) keys.push({ level, index }, { level: level + 1, index: Math.floor(index / TILE_WIDTH) });
    await tree.load(keys);
    // Only tiles the tree of `size` leaves holds complete have an entry above them.
    for (let index = first; index <= Math.min(last, Math.floor(width / TILE_WIDTH) - 1); index++) {
      const tile = tree.tile({ level, index });
      const above = tree.tile({ level: level + 1, index: Math.floor(index / TILE_WIDTH) });
      const at = index % TILE_WIDTH;
      if (!tile || tileWidth(tile) < TILE_WIDTH || !above || tileWidth(above) <= at) {
        report(null, `the stored tree lacks tile ${level}/${index} or the hash above it`);
        return;
      }
      const hashes = Array.from({ length: TILE_WIDTH }, (_, i) => hashAt(tile, i));
      if (!equal(await completeTreeHash(hashes), hashAt(above, at))) {
        report(null, `the stored tree's tile ${level}/${index} does not hash to the node above it`);
        return;
      }
    }
    first = Math.floor(first / TILE_WIDTH);
    last = Math.floor(last / TILE_WIDTH);
  }
  try {
    if (toBase64(await tree.treeHash(size)) !== rootHash) report(null, "the stored tree does not hash to the signed root");
  } catch (err) {
    if (!(err instanceof MissingNode)) throw err;
    report(null, err.message);
  }
}

/**
 * Every entry seq from..to is there once (in D1 or the archive), and its leaf hashes to the leaf hash
 * sealed at its place. Answers how many entries were checked.
 */
async function checkLeaves(store: LogStore, tree: TreeReader, orgId: number, from: number, to: number, report: (seq: number | null, p: string) => void): Promise<number> {
  if (from > to) return 0;
  const rows: LeafSource[] = [];
  const unreadable = new Set<number>();
  try {
    for await (const page of leafPages(store, orgId, from - 1, to)) rows.push(...page);
  } catch (err) {
    if (!(err instanceof SegmentUnreadable)) throw err;
    // The D1 rows of the window still count; the segment's entries are reported as unreadable.
    report(null, err.message);
    for (let seq = err.segment.seqLo; seq <= err.segment.seqHi; seq++) unreadable.add(seq);
    rows.push(...(await store.db.select(leafColumns).from(auditEntries).where(and(eq(auditEntries.orgId, orgId), gte(auditEntries.seq, from), lte(auditEntries.seq, to)))));
  }
  await tree.load(Array.from({ length: Math.floor((to - 1) / TILE_WIDTH) - Math.floor((from - 1) / TILE_WIDTH) + 1 }, (_, i) => ({ level: 0, index: Math.floor((from - 1) / TILE_WIDTH) + i })));
  const bySeq = new Map<number, LeafSource[]>();
  let checked = 0;
  for (const row of rows) bySeq.set(row.seq, [...(bySeq.get(row.seq) ?? []), row]);
  for (let seq = from; seq <= to; seq++) {
    const found = bySeq.get(seq) ?? [];
    if (!found.length) {
      if (!unreadable.has(seq)) report(seq, "missing: the checkpoint covers this entry but neither D1 nor the archive holds it");
      continue;
    }
    checked++;
    if (found.length > 1) report(seq, `${found.length} rows claim this number`);
    const tile = tree.tile({ level: 0, index: Math.floor((seq - 1) / TILE_WIDTH) });
    const sealed = tile && tileWidth(tile) > (seq - 1) % TILE_WIDTH ? hashAt(tile, (seq - 1) % TILE_WIDTH) : null;
    if (!sealed) {
      report(seq, "the stored tree has no leaf hash for this entry");
      continue;
    }
    for (const row of found) {
      if (!equal(await leafHash(utf8(auditLeaf(row))), sealed)) report(seq, "changed: the entry does not hash to the leaf that was sealed");
    }
  }
  return checked;
}
