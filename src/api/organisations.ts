// Operator endpoints: organisations and their API keys.
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { isoTime, now } from "../domain/clock";
import { randomBytes, sha256Hex, toBase64Url } from "../domain/crypto";
import { notFound } from "../domain/errors";
import { base32, newId } from "../domain/ids";
import { database } from "../db/client";
import { apiKeys, organisations } from "../db/schema";
import { recordSystemEvent } from "../ingest/system-events";
import { forgetKey, requireOperator } from "./auth";
import { resource } from "./context";
import { decodeCursor, encodeCursor, errorResponses, json, jsonBody, numericId, page, pageSize } from "./schemas";

const Organisation = z
  .object({ id: z.number().int(), name: z.string(), created_at: z.string() })
  .openapi("Organisation");
const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");
const NewApiKey = ApiKey.extend({ key: z.string().openapi({ description: "Shown once; only its SHA-256 is stored." }) }).openapi(
  "NewApiKey",
);
const NameBody = z.strictObject({ name: z.string().trim().min(1).max(200) });

const orgOut = (o: typeof organisations.$inferSelect) => ({ id: o.id, name: o.name, created_at: isoTime(o.createdAt) });
const keyOut = (k: typeof apiKeys.$inferSelect) => ({
  id: k.id,
  name: k.name,
  prefix: `fh_${k.prefix}`,
  created_at: isoTime(k.createdAt),
  last_used_at: isoTime(k.lastUsedAt),
  revoked_at: isoTime(k.revokedAt),
});

const security = [{ operator: [] }];
const orgParam = z.object({ org: numericId("org") });

export const organisationRoutes = resource();
// Only these paths: /{org}/webhooks, mounted beside, belongs to the organisation's API key.
for (const path of ["/", "/:org/api-keys", "/:org/api-keys/*"]) organisationRoutes.use(path, requireOperator);

async function findOrganisation(d1: D1Database, id: number) {
  const [org] = await database(d1).select().from(organisations).where(eq(organisations.id, id));
  if (!org) throw notFound("organisation");
  return org;
}

organisationRoutes.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags: ["Organisations"],
    security,
    request: { body: jsonBody(NameBody) },
    responses: { 201: json(Organisation, "Created"), ...errorResponses },
  }),
  async (c) => {
    const { name } = c.req.valid("json");
    const [org] = await database(c.env.DB).insert(organisations).values({ name, createdAt: now() }).returning();
    return c.json(orgOut(org), 201);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["Organisations"],
    security,
    request: { query: z.strictObject({ cursor: z.string().optional(), page_size: pageSize }) },
    responses: { 200: json(page(Organisation), "Organisations, newest first"), ...errorResponses },
  }),
  async (c) => {
    const { cursor, page_size } = c.req.valid("query");
    const before = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : null;
    const rows = await database(c.env.DB)
      .select()
      .from(organisations)
      .where(before === null ? undefined : lt(organisations.id, before))
      .orderBy(desc(organisations.id))
      .limit(page_size + 1);
    const more = rows.length > page_size;
    const results = rows.slice(0, page_size);
    return c.json({ results: results.map(orgOut), next: more ? encodeCursor([results.at(-1)!.id]) : null }, 200);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{org}/api-keys",
    tags: ["Organisations"],
    security,
    request: { params: orgParam, body: jsonBody(NameBody) },
    responses: { 201: json(NewApiKey, "Created; the key is shown only in this answer"), ...errorResponses },
  }),
  async (c) => {
    const { org } = c.req.valid("param");
    const { name } = c.req.valid("json");
    await findOrganisation(c.env.DB, org);
    const prefix = base32(randomBytes(7)).slice(0, 10);
    const key = `fh_${prefix}_${toBase64Url(randomBytes(32))}`;
    const [row] = await database(c.env.DB)
      .insert(apiKeys)
      .values({ id: newId("key"), orgId: org, name, prefix, hash: await sha256Hex(key), createdAt: now() })
      .returning();
    await recordSystemEvent(c.env, org, { log: `API key created: ${name}`, relatedType: "API_KEY", relatedUuid: row.id }, c.get("submitter"));
    return c.json({ ...keyOut(row), key }, 201);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{org}/api-keys",
    tags: ["Organisations"],
    security,
    request: { params: orgParam },
    responses: { 200: json(page(ApiKey), "The organisation's keys, never the keys themselves"), ...errorResponses },
  }),
  async (c) => {
    const { org } = c.req.valid("param");
    await findOrganisation(c.env.DB, org);
    const rows = await database(c.env.DB).select().from(apiKeys).where(eq(apiKeys.orgId, org)).orderBy(desc(apiKeys.createdAt));
    return c.json({ results: rows.map(keyOut), next: null }, 200);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/{org}/api-keys/{id}",
    tags: ["Organisations"],
    security,
    request: { params: orgParam.extend({ id: z.string().max(64) }) },
    responses: { 200: json(ApiKey, "Revoked"), ...errorResponses },
  }),
  async (c) => {
    const { org, id } = c.req.valid("param");
    const db = database(c.env.DB);
    const [row] = await db
      .update(apiKeys)
      .set({ revokedAt: now() })
      .where(and(eq(apiKeys.orgId, org), eq(apiKeys.id, id)))
      .returning();
    if (!row) throw notFound("API key");
    forgetKey(row.prefix);
    await recordSystemEvent(c.env, org, { log: `API key revoked: ${row.name}`, relatedType: "API_KEY", relatedUuid: row.id }, c.get("submitter"));
    return c.json(keyOut(row), 200);
  },
);
