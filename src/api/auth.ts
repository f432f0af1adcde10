// Who is calling: the operator (Bearer ADMIN_TOKEN) or an organisation (Api-Key <key>).
import { eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { now } from "../domain/clock";
import { sha256Hex, timingSafeEqual } from "../domain/crypto";
import { ApiError } from "../domain/errors";
import { apiKeySubmitter, OPERATOR } from "../domain/provenance";
import { database } from "../db/client";
import { apiKeys } from "../db/schema";
import { config } from "../env";
import type { AppEnv } from "./context";
import { clientOf, countFailure, refuseBlockedClient } from "./operator-guard";

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

/**
 * Per-isolate cache so ingest costs at most one indexed D1 read per key and isolate every
 * KEY_CACHE_TTL_MS: a key revoked through another isolate stops working here within that time.
 */
export const KEY_CACHE_TTL_MS = 5_000;
const keyCache = new Map<string, CachedKey>();
/** Reads in flight, so requests arriving together after the TTL share one. */
const keyReads = new Map<string, Promise<CachedKey | null>>();

export function forgetKey(prefix: string): void {
  keyCache.delete(prefix);
}

export const unauthorized = (message = "missing or invalid API key") => new ApiError(401, "unauthorized", message);

async function loadKey(db: D1Database, prefix: string, waitUntil: (p: Promise<unknown>) => void): Promise<CachedKey | null> {
  const at = now();
  const [row] = await database(db).select().from(apiKeys).where(eq(apiKeys.prefix, prefix)).limit(1);
  if (!row) {
    keyCache.delete(prefix);
    return null;
  }
  const loaded = { id: row.id, name: row.name, orgId: row.orgId, hash: row.hash, revoked: row.revokedAt !== null, loadedAt: at };
  if (keyCache.size > 10_000) keyCache.clear();
  keyCache.set(prefix, loaded);
  if (!loaded.revoked && (row.lastUsedAt ?? 0) < at - 3_600_000) {
    waitUntil(database(db).update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, row.id)).run());
  }
  return loaded;
}

/** Resolves an API key to its organisation, or null. Used by the API and by the admin pages' sign-in. */
export async function organisationForKey(
  db: D1Database,
  key: string,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<{ orgId: number; keyId: string; keyName: string } | null> {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const prefix = match[1];
  let cached: CachedKey | null | undefined = keyCache.get(prefix);
  if (!cached || now() - cached.loadedAt > KEY_CACHE_TTL_MS) {
    let read = keyReads.get(prefix);
    if (!read) {
      read = loadKey(db, prefix, waitUntil).finally(() => keyReads.delete(prefix));
      keyReads.set(prefix, read);
    }
    cached = await read;
    if (!cached) return null;
  }
  if (cached.revoked || !timingSafeEqual(await sha256Hex(key), cached.hash)) return null;
  return { orgId: cached.orgId, keyId: cached.id, keyName: cached.name };
}

/** `Api-Key <key>` (Flagsmith's header); `Bearer <key>` is accepted too for generic clients. */
export const requireOrganisation = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const m = /^(?:Api-Key|Bearer)\s+(\S+)$/i.exec(header.trim());
  if (!m && c.req.header("x-flagsmith-signature") !== undefined) {
    // Flagsmith itself, pointed at the API: its webhooks belong at an inbound source's URL.
    throw unauthorized(
      "this request carries X-Flagsmith-Signature: Flagsmith's webhooks go to an inbound source's URL, not to the API. Create one with POST /api/v1/organisations/{org}/inbound-sources/ and paste its URL and secret into Flagsmith",
    );
  }
  if (!m) throw unauthorized(header ? "Authorization must be 'Api-Key <key>'" : "missing Authorization: Api-Key <key>");
  const found = await organisationForKey(c.env.DB, m[1], (p) => c.executionCtx.waitUntil(p));
  if (!found) {
    // Said from the token's shape only: comparing it with ADMIN_TOKEN here would let this route
    // tell guesses of the operator token apart.
    if (!KEY_PATTERN.test(m[1])) {
      throw unauthorized(
        "that is not an organisation API key (they look like fh_...): this route takes Authorization: Api-Key <key>. The operator token works only on the operator routes; create a key with POST /api/v1/organisations/{org}/api-keys",
      );
    }
    throw unauthorized("invalid or revoked API key");
  }
  c.set("orgId", found.orgId);
  c.set("submitter", apiKeySubmitter({ id: found.keyId, name: found.keyName }));
  await next();
});

/** The operator's Bearer token; wrong ones are logged and counted per client (src/api/operator-guard.ts). */
export const requireOperator = createMiddleware<AppEnv>(async (c, next) => {
  const cfg = config(c.env);
  const token = cfg.adminToken;
  if (!token) throw new ApiError(503, "server_misconfigured", "ADMIN_TOKEN is not set on this deployment");
  const client = clientOf(c.req.raw);
  refuseBlockedClient(client);
  const header = c.req.header("authorization")?.trim() ?? "";
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m || !timingSafeEqual(m[1], token)) {
    if (m) await countFailure(client, `${c.req.method} ${new URL(c.req.url).pathname}`, cfg.operatorAuthFailuresPerMinute, c.env.OPERATOR_AUTH_LIMITER);
    const sent = /^(?:Bearer|Api-Key)\s+(\S+)$/i.exec(header)?.[1];
    throw new ApiError(
      401,
      "unauthorized",
      sent && KEY_PATTERN.test(sent)
        ? "this is an operator route: it needs Authorization: Bearer <ADMIN_TOKEN>, and an organisation API key cannot use it. API keys work on their organisation's own routes (events, audit log, webhooks, deliveries, inbound sources) as Authorization: Api-Key <key>"
        : "operator endpoints need Authorization: Bearer <ADMIN_TOKEN>",
    );
  }
  c.set("submitter", OPERATOR);
  await next();
});
