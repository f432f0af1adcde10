// Operator endpoints: organisations and their API keys.
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, desc, eq, inArray, lt } from "drizzle-orm";
import { isoTime, now } from "../domain/clock";
import { randomBytes, sha256Hex, toBase64Url } from "../domain/crypto";
import { notFound } from "../domain/errors";
import { base32, newId } from "../domain/ids";
import { chunk } from "../domain/collections";
import { database, runBatch, type Db, type Statement } from "../db/client";
import { DATABASE_BINDING, PRIMARY, placementFor } from "../db/placement";
import { apiKeys, organisationAccess, organisations } from "../db/schema";
import { recordSystemEvent } from "../ingest/system-events";
import { forgetKey, requireOperator } from "./auth";
import { jsonBodyOnly } from "./json-body";
import { resource } from "./context";
import { decodeCursor, encodeCursor, errorResponses, json, jsonBody, numericId, operatorUnsetResponse, page, pageSize } from "./schemas";

const Organisation = z
  .object({
    id: z.number().int(),
    name: z.string(),
    created_at: z.string(),
    access_emails: z.array(z.string()).openapi({ description: "People Cloudflare Access signs in who may enter this organisation's admin pages" }),
    access_domains: z.array(z.string()).openapi({ description: "Every address of these domains may enter too" }),
    database: z.string().openapi({ description: "The D1 binding holding the organisation's audit log (README, \"Past one database\")", example: "DB" }),
  })
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
const MAX_ACCESS_ENTRIES = 500;
const accessEmails = z
  .array(z.string().trim().toLowerCase().pipe(z.email({ message: "must be an email address" }).max(320)))
  .max(MAX_ACCESS_ENTRIES)
  .openapi({ description: "Replaces the list; compared case-insensitively with the email Access signs in" });
const accessDomains = z
  .array(
    z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, "must be a domain name such as example.com"),
  )
  .max(MAX_ACCESS_ENTRIES)
  .openapi({ description: "Replaces the list; every address @domain may enter" });
const OrganisationFields = z.strictObject({
  name: z.string().trim().min(1).max(200),
  access_emails: accessEmails.optional(),
  access_domains: accessDomains.optional(),
});
/** Where the log lives is chosen once, at creation (src/db/placement.ts): PATCH refuses `database`. */
const OrganisationBody = OrganisationFields.extend({
  database: z
    .string()
    .regex(DATABASE_BINDING, "must name a D1 binding: DB, or DB_ and a suffix such as DB_2")
    .optional()
    .openapi({ description: "The D1 binding to keep the organisation's audit log in; default DB. Set once." }),
});
const OrganisationPatch = OrganisationFields.partial().refine((b) => Object.keys(b).length > 0, "give at least one of name, access_emails, access_domains");

type Access = { emails: string[]; domains: string[] };
const noAccess = (): Access => ({ emails: [], domains: [] });

const orgOut = (o: typeof organisations.$inferSelect, access: Access = noAccess()) => ({
  id: o.id,
  name: o.name,
  created_at: isoTime(o.createdAt),
  access_emails: access.emails,
  access_domains: access.domains,
  database: o.database ?? PRIMARY,
});
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
for (const path of ["/", "/:org", "/:org/api-keys", "/:org/api-keys/*"]) organisationRoutes.use(path, requireOperator, jsonBodyOnly);

async function findOrganisation(d1: D1Database, id: number) {
  const [org] = await database(d1).select().from(organisations).where(eq(organisations.id, id));
  if (!org) throw notFound("organisation");
  return org;
}

/** Who may enter each of these organisations through Access, sorted. */
async function accessOf(d1: D1Database, orgIds: number[]): Promise<Map<number, Access>> {
  const byOrg = new Map(orgIds.map((id) => [id, noAccess()]));
  if (!orgIds.length) return byOrg;
  const rows = await database(d1)
    .select()
    .from(organisationAccess)
    .where(inArray(organisationAccess.orgId, orgIds))
    .orderBy(asc(organisationAccess.value));
  for (const row of rows) byOrg.get(row.orgId)?.[row.kind === "email" ? "emails" : "domains"].push(row.value);
  return byOrg;
}

/** The statements that replace an organisation's access lists with these (deduplicated). */
function replaceAccess(db: Db, orgId: number, change: { emails?: string[]; domains?: string[] }): Statement[] {
  const writes: Statement[] = [];
  for (const [kind, values] of [["email", change.emails], ["domain", change.domains]] as const) {
    if (!values) continue;
    writes.push(db.delete(organisationAccess).where(and(eq(organisationAccess.orgId, orgId), eq(organisationAccess.kind, kind))));
    for (const part of chunk([...new Set(values)], 30)) {
      writes.push(db.insert(organisationAccess).values(part.map((value) => ({ orgId, kind, value }))));
    }
  }
  return writes;
}

/** "emails +a@x.com -b@x.com; domains +x.com" for the audit log. */
function describeAccessChange(before: Access, after: Access): string {
  const diff = (label: string, old: string[], now: string[]) => {
    const added = now.filter((v) => !old.includes(v)).map((v) => `+${v}`);
    const removed = old.filter((v) => !now.includes(v)).map((v) => `-${v}`);
    return added.length || removed.length ? `${label} ${[...added, ...removed].join(" ")}` : null;
  };
  return [diff("emails", before.emails, after.emails), diff("domains", before.domains, after.domains)].filter(Boolean).join("; ");
}

organisationRoutes.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags: ["Organisations"],
    security,
    request: { body: jsonBody(OrganisationBody) },
    responses: { 201: json(Organisation, "Created"), ...errorResponses, ...operatorUnsetResponse },
  }),
  async (c) => {
    const { name, access_emails, access_domains, database: requested } = c.req.valid("json");
    const placed = placementFor(c.env, requested); // before any write: a refused body leaves nothing
    const db = database(c.env.DB);
    const [org] = await db.insert(organisations).values({ name, createdAt: now(), database: placed }).returning();
    const writes = replaceAccess(db, org.id, { emails: access_emails, domains: access_domains });
    if (writes.length) await runBatch(db, writes);
    return c.json(orgOut(org, (await accessOf(c.env.DB, [org.id])).get(org.id)), 201);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{org}",
    tags: ["Organisations"],
    security,
    request: { params: orgParam },
    responses: { 200: json(Organisation, "The organisation, with who may enter its admin pages through Access"), ...errorResponses, ...operatorUnsetResponse },
  }),
  async (c) => {
    const { org } = c.req.valid("param");
    const row = await findOrganisation(c.env.DB, org);
    return c.json(orgOut(row, (await accessOf(c.env.DB, [org])).get(org)), 200);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "patch",
    path: "/{org}",
    tags: ["Organisations"],
    summary: "Rename, or set who may enter the admin pages through Cloudflare Access (each list given replaces the old one)",
    security,
    request: { params: orgParam, body: jsonBody(OrganisationPatch) },
    responses: { 200: json(Organisation, "Updated"), ...errorResponses, ...operatorUnsetResponse },
  }),
  async (c) => {
    const { org } = c.req.valid("param");
    const patch = c.req.valid("json");
    const db = database(c.env.DB);
    const row = await findOrganisation(c.env.DB, org);
    const before = (await accessOf(c.env.DB, [org])).get(org)!;
    const writes = replaceAccess(db, org, { emails: patch.access_emails, domains: patch.access_domains });
    const renamed = patch.name !== undefined && patch.name !== row.name;
    if (renamed) writes.push(db.update(organisations).set({ name: patch.name }).where(eq(organisations.id, org)));
    if (writes.length) await runBatch(db, writes);
    const after = (await accessOf(c.env.DB, [org])).get(org)!;
    const changes = [renamed ? `renamed from “${row.name}” to “${patch.name}”` : null, describeAccessChange(before, after) || null].filter(Boolean);
    if (changes.length) {
      await recordSystemEvent(c.env, org, { log: `Organisation updated: ${changes.join("; ")}`, relatedType: "ORGANISATION" }, c.get("submitter"));
    }
    return c.json(orgOut({ ...row, name: patch.name ?? row.name }, after), 200);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["Organisations"],
    security,
    request: { query: z.strictObject({ cursor: z.string().optional(), page_size: pageSize }) },
    responses: { 200: json(page(Organisation), "Organisations, newest first"), ...errorResponses, ...operatorUnsetResponse },
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
    const access = await accessOf(c.env.DB, results.map((o) => o.id));
    return c.json({ results: results.map((o) => orgOut(o, access.get(o.id))), next: more ? encodeCursor([results.at(-1)!.id]) : null }, 200);
  },
);

organisationRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{org}/api-keys",
    tags: ["Organisations"],
    security,
    request: { params: orgParam, body: jsonBody(NameBody) },
    responses: { 201: json(NewApiKey, "Created; the key is shown only in this answer"), ...errorResponses, ...operatorUnsetResponse },
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
    responses: { 200: json(page(ApiKey), "The organisation's keys, never the keys themselves"), ...errorResponses, ...operatorUnsetResponse },
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
    responses: { 200: json(ApiKey, "Revoked"), ...errorResponses, ...operatorUnsetResponse },
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
