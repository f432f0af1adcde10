// Inbound sources: the unguessable URL and the secret a Flagsmith instance posts its own webhooks
// with. The token in the URL finds the source (only its SHA-256 is stored); the secret proves the body.
import { and, desc, eq } from "drizzle-orm";
import type { Submitter } from "../domain/provenance";
import { isoTime, now } from "../domain/clock";
import { randomBytes, sha256Hex } from "../domain/crypto";
import { ApiError, notFound } from "../domain/errors";
import { base32, newId } from "../domain/ids";
import { database } from "../db/client";
import { inboundSources, type InboundSourceRow } from "../db/schema";
import { decryptSecret, encryptSecret, generateSecret, requireSecretsKey } from "../delivery/secrets";
import { config, type Env } from "../env";
import { recordSystemEvent } from "../ingest/system-events";

export const INBOUND_PATH = "/api/v1/inbound/flagsmith";
const TOKEN_PATTERN = /^fhi_[0-9a-hjkmnp-tv-z]{52}$/;
/** last_received_at is a hint for "is Flagsmith reaching us?", refreshed at most this often. */
const RECEIPT_RESOLUTION_MS = 60_000;

export function sourceOut(s: InboundSourceRow) {
  return {
    id: s.id,
    name: s.name,
    token_prefix: `fhi_${s.tokenPrefix}`,
    signed: s.signed,
    created_at: isoTime(s.createdAt),
    last_received_at: isoTime(s.lastReceivedAt),
    last_test_received_at: isoTime(s.lastTestReceivedAt),
    revoked_at: isoTime(s.revokedAt),
  };
}

export interface SourceInput {
  name?: string;
  /** Any string Flagsmith takes (it takes any); "" only with `unsigned`. */
  secret?: string;
  /** Flagsmith sends no X-Flagsmith-Signature when its webhook secret is blank: such a source checks none. */
  unsigned?: boolean;
}

/** Creates a source; its URL (carrying the token) and its secret are in this answer only. */
export async function createSource(env: Env, orgId: number, input: SourceInput, origin: string, by: Submitter) {
  const secretsKey = requireSecretsKey(config(env).secretsKey);
  if (input.unsigned && input.secret) {
    throw new ApiError(400, "validation_failed", "an unsigned source has no secret: leave secret out, or leave unsigned out", [
      { field: "secret", message: "must be left out for an unsigned source" },
    ]);
  }
  if (!input.unsigned && input.secret === "") {
    throw new ApiError(
      400,
      "validation_failed",
      'a blank secret means Flagsmith signs nothing: to accept unsigned webhooks, create the source with "unsigned": true',
      [{ field: "secret", message: 'blank; set "unsigned": true for a source that checks no signature' }],
    );
  }
  const token = `fhi_${base32(randomBytes(32))}`;
  const secret = input.unsigned ? "" : (input.secret ?? generateSecret());
  const [row] = await database(env.DB)
    .insert(inboundSources)
    .values({
      id: newId("src"),
      orgId,
      name: input.name ?? "Flagsmith",
      tokenHash: await sha256Hex(token),
      tokenPrefix: token.slice(4, 12),
      secret: input.unsigned ? "" : await encryptSecret(secretsKey, secret),
      signed: !input.unsigned,
      createdAt: now(),
    })
    .returning();
  const what = row.signed ? "Inbound source created" : "Unsigned inbound source created (checks no signature)";
  await recordSystemEvent(env, orgId, { log: `${what}: ${row.name}`, relatedType: "INBOUND_SOURCE", relatedUuid: row.id }, by);
  return { ...sourceOut(row), url: `${origin}${INBOUND_PATH}/${token}`, secret: row.signed ? secret : null };
}

export async function listSources(env: Env, orgId: number) {
  const rows = await database(env.DB)
    .select()
    .from(inboundSources)
    .where(eq(inboundSources.orgId, orgId))
    .orderBy(desc(inboundSources.createdAt));
  return rows.map(sourceOut);
}

export async function findSource(env: Env, orgId: number, id: string): Promise<InboundSourceRow> {
  const [row] = await database(env.DB)
    .select()
    .from(inboundSources)
    .where(and(eq(inboundSources.orgId, orgId), eq(inboundSources.id, id)));
  if (!row) throw notFound("inbound source");
  return row;
}

/** Revoking is final: the URL answers 410 from then on. Revoking again changes nothing. */
export async function revokeSource(env: Env, orgId: number, id: string, by: Submitter) {
  const row = await findSource(env, orgId, id);
  if (row.revokedAt !== null) return sourceOut(row);
  const [revoked] = await database(env.DB)
    .update(inboundSources)
    .set({ revokedAt: now() })
    .where(eq(inboundSources.id, row.id))
    .returning();
  await recordSystemEvent(env, orgId, { log: `Inbound source revoked: ${row.name}`, relatedType: "INBOUND_SOURCE", relatedUuid: row.id }, by);
  return sourceOut(revoked);
}

/** The live source a URL token names, with its secret (null when unsigned): 404 when unknown, 410 when revoked. */
export async function sourceForToken(env: Env, token: string): Promise<{ source: InboundSourceRow; secret: string | null }> {
  const unknown = new ApiError(404, "not_found", "no inbound source has this URL");
  if (!TOKEN_PATTERN.test(token)) throw unknown;
  const [source] = await database(env.DB)
    .select()
    .from(inboundSources)
    .where(eq(inboundSources.tokenHash, await sha256Hex(token)));
  if (!source) throw unknown;
  if (source.revokedAt !== null) throw new ApiError(410, "source_revoked", "this inbound source was revoked; create a new one");
  if (!source.signed) return { source, secret: null };
  return { source, secret: await decryptSecret(requireSecretsKey(config(env).secretsKey), source.secret) };
}

/** A "Test webhook" sample arrived: shown on the source so the person setting it up sees URL and secret work. */
export async function markTestReceived(env: Env, source: InboundSourceRow): Promise<string> {
  const at = now();
  await database(env.DB).update(inboundSources).set({ lastTestReceivedAt: at }).where(eq(inboundSources.id, source.id));
  return isoTime(at);
}

export async function markReceived(env: Env, source: InboundSourceRow): Promise<void> {
  const at = now();
  if ((source.lastReceivedAt ?? 0) > at - RECEIPT_RESOLUTION_MS) return;
  await database(env.DB).update(inboundSources).set({ lastReceivedAt: at }).where(eq(inboundSources.id, source.id));
}
