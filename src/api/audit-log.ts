// The signed audit log of the caller's organisation: checkpoints, the public key that signs them,
// inclusion and consistency proofs (RFC 6962), and verification of what D1 holds.
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError, notFound } from "../domain/errors";
import { logOrigin } from "../domain/checkpoint";
import { toBase64 } from "../domain/crypto";
import { auditLeaf } from "../domain/leaf";
import { auditPath, consistencyProof } from "../domain/merkle";
import type { Db } from "../db/client";
import { logDatabase } from "../db/placement";
import { config } from "../env";
import { checkpointOut, latestCheckpoint, listCheckpoints } from "../audit/checkpoints";
import { requireSigner } from "../audit/signer";
import { TreeReader } from "../audit/tree";
import { verifyLog } from "../audit/verify";
import { findEntry, logStore } from "../audit/entries";
import { ArchiveRead } from "./audit";
import { requireOrganisation } from "./auth";
import { resource } from "./context";
import { decodeCursor, encodeCursor, errorResponses, json, numericId, page, pageSize } from "./schemas";

const security = [{ apiKey: [] }];
const tags = ["Audit log verification"];
const treeSize = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const base64Hashes = z.array(z.string()).openapi({ description: "base64 SHA-256 hashes, in RFC 6962 order" });

const Checkpoint = z
  .object({
    tree_size: z.number().int(),
    root_hash: z.string().openapi({ description: "base64 of the RFC 6962 Merkle Tree Hash of entries 1..tree_size" }),
    note: z.string().openapi({ description: "The C2SP tlog-checkpoint signed note, whole" }),
    origin: z.string(),
    created_at: z.string(),
  })
  .openapi("AuditCheckpoint");

const Verification = z
  .object({
    ok: z.boolean(),
    tree_size: z.number().int(),
    checked: z.number().int().openapi({ description: "Entries of the window whose content was checked against its sealed leaf" }),
    removed_through: z
      .number()
      .int()
      .openapi({ description: "Entries 1..removed_through were removed by retention (AUDIT_RETENTION_DAYS): only their sealed leaf hashes remain, so the tree still verifies but their content cannot be checked" }),
    from: z.number().int(),
    to: z.number().int(),
    next: z.number().int().nullable().openapi({ description: "The seq to pass as `from` to check the next window" }),
    problems: z.array(z.object({ seq: z.number().int().nullable(), problem: z.string() })),
  })
  .openapi("AuditVerification");

export const auditLogRoutes = resource();
// Only these paths: the rest of /api/v1/audit (src/api/audit.ts) has its own authentication.
for (const path of ["/checkpoints", "/checkpoints/*", "/public-key", "/consistency", "/verify", "/:id/proof"]) {
  auditLogRoutes.use(path, requireOrganisation);
}

/** The latest checkpoint's tree size, or 409 while the log has none. */
async function sealedSize(db: Db, orgId: number): Promise<number> {
  const latest = await latestCheckpoint(db, orgId);
  if (!latest) throw new ApiError(409, "not_sealed", "the audit log has no checkpoint yet: the scheduled handler seals it every minute");
  return latest.treeSize;
}

function withinSealed(size: number, sealed: number, field: string) {
  if (size > sealed) {
    throw new ApiError(400, "validation_failed", `${field} ${size} is beyond the latest checkpoint (${sealed} entries)`, [
      { field, message: `at most ${sealed}` },
    ]);
  }
}

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/checkpoints/latest",
    tags,
    summary: "The latest signed checkpoint of the organisation's log",
    security,
    responses: { 200: json(Checkpoint, "The checkpoint"), ...errorResponses },
  }),
  async (c) => {
    const row = await latestCheckpoint(await logDatabase(c.env, c.get("orgId")), c.get("orgId"));
    if (!row) throw notFound("checkpoint");
    return c.json(checkpointOut(row), 200);
  },
);

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/checkpoints",
    tags,
    summary: "Every checkpoint, newest first",
    security,
    request: { query: z.strictObject({ page_size: pageSize, cursor: z.string().max(512).optional() }) },
    responses: { 200: json(page(Checkpoint), "A page of checkpoints"), ...errorResponses },
  }),
  async (c) => {
    const { page_size, cursor } = c.req.valid("query");
    const before = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : undefined;
    const { rows, next } = await listCheckpoints(await logDatabase(c.env, c.get("orgId")), c.get("orgId"), page_size, before);
    return c.json({ results: rows.map(checkpointOut), next: next === null ? null : encodeCursor([next]) }, 200);
  },
);

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/public-key",
    tags,
    summary: "The signed-note verifier key that checks this organisation's checkpoints",
    security,
    responses: {
      200: json(z.object({ vkey: z.string().openapi({ example: "flaghook.example.com/org/1+3f2a9c1e+Ab3d..." }) }), "The vkey"),
      ...errorResponses,
    },
  }),
  async (c) => {
    const signer = await requireSigner(config(c.env).auditSigningKey);
    return c.json({ vkey: await signer.vkey(logOrigin(config(c.env).auditLogOrigin, c.get("orgId"))) }, 200);
  },
);

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/proof",
    tags,
    summary: "The inclusion proof (RFC 6962 audit path) of an entry",
    security,
    request: {
      params: z.object({ id: numericId("id") }),
      query: z.strictObject({ tree_size: treeSize.optional().openapi({ description: "Default: the latest checkpoint's" }) }),
    },
    responses: {
      200: json(
        z.object({
          seq: z.number().int(),
          leaf_index: z.number().int(),
          tree_size: z.number().int(),
          leaf: z.string().nullable().openapi({ description: "The entry's leaf (RFC 8785 JSON); null once retention removed the entry" }),
          leaf_hash: z.string().openapi({ description: "base64 of SHA-256(0x00 || leaf), as sealed in the tree" }),
          removed: z.boolean().optional().openapi({ description: "true: retention removed the entry; only its sealed leaf hash is left, which the proof still places in the tree" }),
          archive: ArchiveRead.optional(),
          proof: base64Hashes,
        }),
        "The entry's leaf and its audit path",
      ),
      ...errorResponses,
    },
  }),
  async (c) => {
    const orgId = c.get("orgId");
    const store = await logStore(c.env, orgId);
    const db = store.db;
    const seq = c.req.valid("param").id;
    // From D1, the archive, or (removed by retention) the tree alone: the audit path never needs the entry.
    const found = await findEntry(store, orgId, seq);
    if (!found) throw notFound("audit entry");
    const sealed = await sealedSize(db, orgId);
    const size = c.req.valid("query").tree_size ?? sealed;
    withinSealed(size, sealed, "tree_size");
    if (seq > size) throw new ApiError(400, "validation_failed", `entry ${seq} is not in a tree of ${size} entries`, [{ field: "tree_size", message: `at least ${seq}` }]);
    const tree = new TreeReader(db, orgId);
    const [leafHash] = await tree.nodes([{ level: 0, index: seq - 1 }]);
    return c.json(
      {
        seq,
        leaf_index: seq - 1,
        tree_size: size,
        leaf: found.removed ? null : auditLeaf(found.row),
        leaf_hash: toBase64(leafHash),
        ...(found.removed ? { removed: true } : {}),
        ...(found.archived ? { archive: { segments_read: 1, partial: false } } : {}),
        proof: (await tree.rangeHashes(auditPath(seq - 1, size))).map(toBase64),
      },
      200,
    );
  },
);

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/consistency",
    tags,
    summary: "The consistency proof (RFC 6962) between two tree sizes",
    security,
    request: { query: z.strictObject({ from: treeSize, to: treeSize.optional().openapi({ description: "Default: the latest checkpoint's" }) }) },
    responses: { 200: json(z.object({ from: z.number().int(), to: z.number().int(), proof: base64Hashes }), "The proof"), ...errorResponses },
  }),
  async (c) => {
    const orgId = c.get("orgId");
    const db = await logDatabase(c.env, orgId);
    const sealed = await sealedSize(db, orgId);
    const { from } = c.req.valid("query");
    const to = c.req.valid("query").to ?? sealed;
    withinSealed(to, sealed, "to");
    if (from > to) throw new ApiError(400, "validation_failed", "from must not be larger than to", [{ field: "from", message: `at most ${to}` }]);
    const proof = await new TreeReader(db, orgId).rangeHashes(consistencyProof(from, to));
    return c.json({ from, to, proof: proof.map(toBase64) }, 200);
  },
);

const VERIFY_MAX = 10_000;

auditLogRoutes.openapi(
  createRoute({
    method: "get",
    path: "/verify",
    tags,
    summary: "Recomputes the stored entries against the latest checkpoint",
    description: `Checks the checkpoint's signature, the stored tree up to its root, and entries from..from+limit-1 (at most ${VERIFY_MAX} a request; \`next\` says where to go on).`,
    security,
    request: {
      query: z.strictObject({
        from: treeSize.default(1).openapi({ description: "The first seq to check" }),
        limit: z.coerce.number().int().min(1).max(VERIFY_MAX).default(VERIFY_MAX),
      }),
    },
    responses: { 200: json(Verification, "What was checked and what is wrong"), ...errorResponses },
  }),
  async (c) => {
    const signer = await requireSigner(config(c.env).auditSigningKey);
    const { from, limit } = c.req.valid("query");
    return c.json(await verifyLog(await logDatabase(c.env, c.get("orgId")), c.env.AUDIT_BUCKET, signer, c.get("orgId"), { from, limit }), 200);
  },
);
