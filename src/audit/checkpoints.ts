// Checkpoints kept: rows in D1 (audit_checkpoints) and objects in R2 under
// checkpoints/<org>/<tree size, 20 digits>.note, a prefix an R2 bucket lock can protect.
import { and, desc, eq, lt } from "drizzle-orm";
import { isoTime } from "../domain/clock";
import type { Db } from "../db/client";
import { auditCheckpoints, type AuditCheckpointRow } from "../db/schema";

export const checkpointKey = (orgId: number, treeSize: number) => `checkpoints/${orgId}/${String(treeSize).padStart(20, "0")}.note`;

export function checkpointOut(row: AuditCheckpointRow) {
  return {
    tree_size: row.treeSize,
    root_hash: row.rootHash,
    note: row.note,
    origin: row.note.slice(0, row.note.indexOf("\n")),
    created_at: isoTime(row.createdAt),
  };
}

/** The checkpoint of the largest tree (the newest of those if it was sealed again). */
export async function latestCheckpoint(db: Db, orgId: number): Promise<AuditCheckpointRow | undefined> {
  const [row] = await db
    .select()
    .from(auditCheckpoints)
    .where(eq(auditCheckpoints.orgId, orgId))
    .orderBy(desc(auditCheckpoints.treeSize), desc(auditCheckpoints.id))
    .limit(1);
  return row;
}

/** Newest first, keyset pages on the row id. */
export async function listCheckpoints(db: Db, orgId: number, limit: number, before?: number) {
  const rows = await db
    .select()
    .from(auditCheckpoints)
    .where(and(eq(auditCheckpoints.orgId, orgId), before === undefined ? undefined : lt(auditCheckpoints.id, before)))
    .orderBy(desc(auditCheckpoints.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? page.at(-1)!.id : null };
}

/**
 * Keeps the note in R2 unless that tree size is there already (a daily re-seal signs the same
 * note again: Ed25519 signatures are deterministic). Never overwrites: a locked bucket refuses it.
 */
export async function storeCheckpoint(bucket: R2Bucket, orgId: number, treeSize: number, note: string, rootHash: string): Promise<void> {
  const key = checkpointKey(orgId, treeSize);
  if (await bucket.head(key)) return;
  await bucket.put(key, note, {
    httpMetadata: { contentType: "text/plain; charset=utf-8" },
    customMetadata: { tree_size: String(treeSize), root_hash: rootHash },
  });
}

/** A tree size beyond `treeSize` that R2 holds a checkpoint of, if any: D1 lost checkpoints (or entries). */
export async function laterCheckpointInR2(bucket: R2Bucket, orgId: number, treeSize: number): Promise<number | null> {
  const listed = await bucket.list({ prefix: `checkpoints/${orgId}/`, startAfter: checkpointKey(orgId, treeSize), limit: 1 });
  const later = listed.objects[0];
  return later ? Number(later.key.slice(later.key.lastIndexOf("/") + 1, -".note".length)) : null;
}
