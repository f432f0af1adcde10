// Sealing, run by the scheduled handler: for each organisation whose log grew (and at least daily
// for every organisation, so a truncated log shows), the new leaves are hashed into the stored tree,
// and a checkpoint is signed, kept in R2 and D1, and delivered as AUDIT_CHECKPOINT.
import { asc, and, eq, gt, lte, sql } from "drizzle-orm";
import { checkpointBody, logOrigin, signedNote } from "../domain/checkpoint";
import { isoTime, now } from "../domain/clock";
import { toBase64, utf8 } from "../domain/crypto";
import { auditLeaf, type LeafSource } from "../domain/leaf";
import { leafHash } from "../domain/merkle";
import { grownTiles, TILE_WIDTH } from "../domain/tiles";
import { database, runBatch, type Db } from "../db/client";
import { auditCheckpoints, auditEntries } from "../db/schema";
import { config, type Env } from "../env";
import { enqueueDeliveries } from "../queues";
import { storeCheckpoint } from "./checkpoints";
import { ArchiveReader, entriesBetween, type LogStore } from "./entries";
import { logDatabases } from "../db/placement";
import { logEventDeliveries } from "./events";
import { loadSigner, type Signer } from "./signer";
import { TreeReader, writeTiles } from "./tree";

const DAY = 86_400_000;
/** Leaves one organisation's seal takes at most per run; a longer backlog is sealed over several runs. */
export const SEAL_MAX_LEAVES = 50_000;
/** Organisations sealed per run at most; the rest wait for the next minute. */
const SEAL_MAX_LOGS = 50;
/** Leaves read per query. */
const READ_PAGE = 2_000;

/** The columns a leaf is made of (domain/leaf.ts). */
export const leafColumns = {
  seq: auditEntries.seq,
  orgId: auditEntries.orgId,
  eventId: auditEntries.eventId,
  type: auditEntries.type,
  createdDate: auditEntries.createdDate,
  receivedAt: auditEntries.receivedAt,
  log: auditEntries.log,
  author: auditEntries.author,
  apiKeyName: auditEntries.apiKeyName,
  submitterType: auditEntries.submitterType,
  submitterId: auditEntries.submitterId,
  submitterName: auditEntries.submitterName,
  projectId: auditEntries.projectId,
  projectName: auditEntries.projectName,
  environmentId: auditEntries.environmentId,
  environmentName: auditEntries.environmentName,
  relatedObjectType: auditEntries.relatedObjectType,
  relatedObjectId: auditEntries.relatedObjectId,
  relatedObjectUuid: auditEntries.relatedObjectUuid,
  isSystemEvent: auditEntries.isSystemEvent,
  event: auditEntries.event,
};

/**
 * The entries seq (from, to], in order, as leaf sources, a page at a time (memory stays flat): from
 * D1, and from the archive for numbers D1 no longer holds.
 */
export async function* leafPages(store: LogStore, orgId: number, from: number, to: number, reader = new ArchiveReader(store, orgId)) {
  for (let after = from; after < to; after += READ_PAGE) {
    const last = Math.min(to, after + READ_PAGE);
    const rows: LeafSource[] = await store.db
      .select(leafColumns)
      .from(auditEntries)
      .where(and(eq(auditEntries.orgId, orgId), gt(auditEntries.seq, after), lte(auditEntries.seq, last)))
      .orderBy(asc(auditEntries.seq));
    if (rows.length < last - after && (await reader.segments()).some((s) => s.seqLo <= last && s.seqHi > after)) {
      yield await entriesBetween(store, orgId, after + 1, last, reader);
    } else {
      yield rows;
    }
  }
}

export interface LogHead {
  /** The database holding the organisation's log (src/db/placement.ts). */
  db: Db;
  orgId: number;
  /** The highest seq recorded. */
  size: number;
  /** The latest checkpoint's tree size, and when it was signed. */
  sealed: number;
  sealedAt: number | null;
}

/** Every organisation's log head, read in the database holding it. */
export async function logHeads(env: Env): Promise<LogHead[]> {
  const heads: LogHead[] = [];
  for (const [db, orgIds] of await logDatabases(env)) {
    const rows = await db.all<{ org_id: number; size: number | null; sealed: number | null; sealed_at: number | null }>(sql`
      select o.value as org_id,
        (select max(seq) from audit_entries where org_id = o.value) as size,
        (select tree_size from audit_checkpoints where org_id = o.value order by tree_size desc, id desc limit 1) as sealed,
        (select created_at from audit_checkpoints where org_id = o.value order by id desc limit 1) as sealed_at
      from json_each(${JSON.stringify(orgIds)}) o`);
    heads.push(...rows.map((r) => ({ db, orgId: r.org_id, size: r.size ?? 0, sealed: r.sealed ?? 0, sealedAt: r.sealed_at })));
  }
  return heads;
}

export interface Sealed {
  orgId: number;
  treeSize: number;
  leaves: number;
}

let warned = false;

/** Seals every log that needs it; one organisation's failure does not stop the others. */
export async function sealLogs(env: Env): Promise<Sealed[]> {
  const cfg = config(env);
  const signing = loadSigner(cfg.auditSigningKey);
  if (!signing) {
    if (!warned) console.warn("AUDIT_SIGNING_KEY is not set: the audit log is not sealed");
    warned = true;
    return [];
  }
  const signer = await signing;
  const at = now();
  const due = (await logHeads(env)).filter((h) => h.size > 0 && (h.size > h.sealed || h.sealedAt === null || at - h.sealedAt >= DAY));
  const sealed: Sealed[] = [];
  for (const head of due.slice(0, SEAL_MAX_LOGS)) {
    try {
      const result = await sealLog(env, signer, head);
      if (result) sealed.push(result);
    } catch (err) {
      console.error(`sealing the audit log of organisation ${head.orgId} failed: ${String(err)}`);
    }
  }
  return sealed;
}

async function sealLog(env: Env, signer: Signer, head: LogHead): Promise<Sealed | null> {
  if (head.size < head.sealed) {
    // Entries the last checkpoint covers are gone; verification reports it, sealing must not paper over it.
    console.error(`audit log of organisation ${head.orgId} ends at ${head.size} but its checkpoint covers ${head.sealed}: not sealing`);
    return null;
  }
  const db = head.db;
  const tree = new TreeReader(db, head.orgId);
  let size = head.sealed;
  const target = Math.min(head.size, head.sealed + SEAL_MAX_LEAVES);
  if (target > size) {
    // Only the leaf hashes are kept, and hashing stops at the first missing number: a gap is never sealed over.
    const hashes: Uint8Array[] = [];
    for await (const page of leafPages({ db, bucket: env.AUDIT_BUCKET }, head.orgId, size, target)) {
      const next = size + hashes.length + 1;
      let k = 0;
      while (k < page.length && page[k].seq === next + k) k++;
      hashes.push(...(await Promise.all(page.slice(0, k).map((row) => leafHash(utf8(auditLeaf(row)))))));
      if (k < Math.min(READ_PAGE, target - next + 1)) break;
    }
    if (hashes.length < target - size) console.error(`audit log of organisation ${head.orgId} has no entry ${size + hashes.length + 1}: sealing up to it`);
    const newSize = size + hashes.length;
    if (newSize > size) {
      await tree.load(partialTiles(size));
      const tiles = await grownTiles(size, newSize, hashes, (k) => tree.tile(k));
      await runBatch(db, writeTiles(head.orgId, tiles));
      tree.remember(tiles);
      size = newSize;
    }
  }
  if (size === 0 || (size === head.sealed && head.sealedAt !== null && now() - head.sealedAt < DAY)) return null;
  await signCheckpoint(env, db, signer, tree, size);
  return { orgId: head.orgId, treeSize: size, leaves: size - head.sealed };
}

/** The one partial tile per level a tree of `size` leaves has, which growing it extends. */
function partialTiles(size: number) {
  const keys = [];
  for (let level = 0, n = size; n > 0; level++, n = Math.floor(n / TILE_WIDTH)) {
    if (n % TILE_WIDTH) keys.push({ level, index: Math.floor(n / TILE_WIDTH) });
  }
  return keys;
}

async function signCheckpoint(env: Env, db: Db, signer: Signer, tree: TreeReader, treeSize: number): Promise<void> {
  const orgId = tree.orgId;
  const origin = logOrigin(config(env).auditLogOrigin, orgId);
  const root = await tree.treeHash(treeSize);
  const body = checkpointBody(origin, treeSize, root);
  const note = await signedNote(body, origin, signer.publicKey, await signer.sign(body));
  const rootHash = toBase64(root);
  const at = now();
  // R2 first: a checkpoint in D1 (and delivered) always has its copy where a bucket lock keeps it.
  await storeCheckpoint(env.AUDIT_BUCKET, orgId, treeSize, note, rootHash);
  const primary = database(env.DB);
  const deliveries = await logEventDeliveries(
    primary,
    orgId,
    "AUDIT_CHECKPOINT",
    { organisation: orgId, origin, tree_size: treeSize, root_hash: rootHash, note, created_at: isoTime(at) },
    `checkpoint:${orgId}:${treeSize}:${at}`,
    at,
  );
  const checkpoint = db.insert(auditCheckpoints).values({ orgId, treeSize, rootHash, note, createdAt: at });
  if (db === primary) await runBatch(db, [checkpoint, ...deliveries.writes]);
  else {
    // A log in another database: the deliveries (in DB) first, so a crash between the two repeats a
    // seal (and its delivery) rather than losing one; the checkpoint already has its copy in R2.
    await runBatch(primary, deliveries.writes);
    await runBatch(db, [checkpoint]);
  }
  await enqueueDeliveries(env, deliveries.queued);
}
