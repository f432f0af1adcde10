// Who is calling: the operator (Bearer ADMIN_TOKEN) or an organisation (Api-Key <key>).
import { eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { now } from "../domain/clock";
import { sha256Hex, timingSafeEqual } from "../domain/crypto";
import { ApiError } from "../domain/errors";
import { apiKeySubmitter, OPERATOR } from "../domain/provenance";
import { database } from "../db/client";
import { apiKeys, organisations } from "../db/schema";
import { config } from "../env";
import type { AppEnv } from "./context";

/** Keys look like fh_<prefix>_<secret>; the prefix finds the row, the hash of the whole key proves it. */
export const KEY_PATTERN = /^fh_([0-9a-z]{10})_([A-Za-z0-9_-]{43,})$/;

interface CachedKey {
  id: string;
  name: string;
  orgId: number;
  hash: string;
  revoked: boolean;
  loadedAt: number;
}

/** Per-isolate cache so ingest costs no D1 read; a revocation elsewhere takes effect within the TTL. */
const KEY_CACHE_TTL_MS = 30_000;
const keyCache = new Map<string, CachedKey>();

export function forgetKey(prefix: string): void {
  keyCache.delete(prefix);
}

export const unauthorized = (message = "missing or invalid API key") => new ApiError(401, "unauthorized", message);

/** Resolves an API key to its organisation, or null. Used by the API and by the admin pages' sign-in. */
export async function organisationForKey(
  db: D1Database,
  key: string,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<{ orgId: number; keyId: string; keyName: string } | null> {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const prefix = match[1];
  const at = now();
  let cached = keyCache.get(prefix);
  if (!cached || at - cached.loadedAt > KEY_CACHE_TTL_MS) {
    const [row] = await database(db).select().from(apiKeys).where(eq(apiKeys.prefix, prefix)).limit(1);
    if (!row) {
      keyCache.delete(prefix);
      return null;
    }
    cached = { id: row.id, name: row.name, orgId: row.orgId, hash: row.hash, revoked: row.revokedAt !== null, loadedAt: at };
    if (keyCache.size > 10_000) keyCache.clear();
    keyCache.set(prefix, cached);
    if (!cached.revoked && (row.lastUsedAt ?? 0) < at - 3_600_000) {
      waitUntil(database(db).update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, row.id)).run());
    }
  }
  if (cached.revoked || !timingSafeEqual(await sha256Hex(key), cached.hash)) return null;
  return { orgId: cached.orgId, keyId: cached.id, keyName: cached.name };
}

/**
 * An unrevoked API key by its id, with its organisation, read from D1 each time (no cache), so the
 * admin pages' sessions end as soon as their key is revoked.
 */
export async function activeKey(
  db: D1Database,
  keyId: string,
): Promise<{ orgId: number; orgName: string; keyName: string } | null> {
  const [row] = await database(db)
    .select({ orgId: apiKeys.orgId, orgName: organisations.name, keyName: apiKeys.name, revokedAt: apiKeys.revokedAt })
    .from(apiKeys)
    .innerJoin(organisations, eq(organisations.id, apiKeys.orgId))
    .where(eq(apiKeys.id, keyId))
    .limit(1);
  if (!row || row.revokedAt !== null) return null;
  return { orgId: row.orgId, orgName: row.orgName, keyName: row.keyName };
}

/** `Api-Key <key>` (Flagsmith's header); `Bearer <key>` is accepted too for generic clients. */
export const requireOrganisation = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const m = /^(?:Api-Key|Bearer)\s+(\S+)$/i.exec(header.trim());
  if (!m) throw unauthorized(header ? "Authorization must be 'Api-Key <key>'" : "missing Authorization: Api-Key <key>");
  const found = await organisationForKey(c.env.DB, m[1], (p) => c.executionCtx.waitUntil(p));
  if (!found) throw unauthorized("invalid or revoked API key");
  c.set("orgId", found.orgId);
  c.set("submitter", apiKeySubmitter({ id: found.keyId, name: found.keyName }));
  await next();
});

export const requireOperator = createMiddleware<AppEnv>(async (c, next) => {
  const token = config(c.env).adminToken;
  if (!token) throw new ApiError(503, "server_misconfigured", "ADMIN_TOKEN is not set on this deployment");
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization")?.trim() ?? "");
  if (!m || !timingSafeEqual(m[1], token)) throw new ApiError(401, "unauthorized", "operator endpoints need Authorization: Bearer <ADMIN_TOKEN>");
  c.set("submitter", OPERATOR);
  await next();
});
