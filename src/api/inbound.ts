// Relaying a real Flagsmith: inbound sources of an organisation (Api-Key), and the public URL that
// takes Flagsmith's own webhooks verbatim (its token and X-Flagsmith-Signature are the credentials).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { now } from "../domain/clock";
import { ApiError, notFound } from "../domain/errors";
import { config } from "../env";
import {
  flagsmithSignatureValid,
  flagsmithWebhook,
  flagsmithTimestamp,
  MAX_NESTING,
  nestingDepth,
  outsideReplayWindow,
  parseFlagsmithWebhook,
  relayedChangeEvent,
  relayKey,
} from "../domain/flagsmith";
import { isFlagsmithTestSample } from "../domain/flagsmith-samples";
import { inboundSourceSubmitter } from "../domain/provenance";
import { acceptEvents } from "../ingest/accept";
import {
  createSource,
  findSource,
  listSources,
  markReceived,
  markTestReceived,
  revokeSource,
  sourceForToken,
  sourceOut,
} from "../manage/inbound-sources";
import { requireOrganisation } from "./auth";
import { acceptJsonBody, INBOUND_MAX_BODY_BYTES, jsonBodyOnly } from "./json-body";
import { resource, type AppEnv } from "./context";
import { errorResponses, json, jsonBody, page } from "./schemas";

const InboundSource = z
  .object({
    id: z.string().openapi({ example: "src_0v3..." }),
    name: z.string(),
    token_prefix: z.string().openapi({ description: "The start of the URL's token, to tell sources apart" }),
    signed: z.boolean().openapi({ description: "false: an unsigned source, created so explicitly; it checks no signature, so anyone with its URL can post to it" }),
    created_at: z.string(),
    last_received_at: z.string().nullable().openapi({ description: "Last verified webhook, to the minute" }),
    last_test_received_at: z.string().nullable().openapi({ description: "Last of Flagsmith's \"Test webhook\" samples received (not recorded, not relayed)" }),
    revoked_at: z.string().nullable(),
  })
  .openapi("InboundSource");

const NewInboundSource = InboundSource.extend({
  url: z.string().openapi({ description: "Paste into Flagsmith's webhook URL field; shown only in this answer" }),
  secret: z.string().nullable().openapi({ description: "Paste into Flagsmith's webhook secret field; shown only in this answer. null for an unsigned source: leave Flagsmith's secret blank" }),
}).openapi("NewInboundSource");

const InboundSourceCreate = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    // Flagsmith takes any webhook secret and stores it in 255 characters.
    secret: z.string().max(255).optional().openapi({ description: "Default: whsec_ + base64 of 32 random bytes. Any length Flagsmith takes; blank only with unsigned" }),
    unsigned: z.boolean().optional().openapi({ description: "true: a source for a Flagsmith webhook whose secret is blank, which sends no signature; it checks none" }),
  })
  .openapi("InboundSourceCreate");

/** NEW_VERSION_PUBLISHED names no environment: the URL pasted into an environment's webhook says which. */
const InboundQuery = z.strictObject({
  environment: z
    .string()
    .regex(/^\d{1,15}$/, "must be the numeric id of the Flagsmith environment whose webhook this URL is")
    .transform(Number)
    .optional(),
});

const security = [{ apiKey: [] }];
const tags = ["Inbound sources"];
const idParam = z.object({ id: z.string().max(64) });

/** The organisation in the path must be the key's own; any other answers 404. */
function ownOrganisation(c: Context<AppEnv>): number {
  const orgId = c.get("orgId");
  if (c.req.param("org") !== String(orgId)) throw notFound("organisation");
  return orgId;
}

export const inboundSourceRoutes = resource();
inboundSourceRoutes.use("*", requireOrganisation, jsonBodyOnly);

inboundSourceRoutes.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags,
    security,
    summary: "Create a URL and secret for Flagsmith's audit log webhook and environment web hooks",
    request: { body: { required: false, content: { "application/json": { schema: InboundSourceCreate } } } },
    responses: { 201: json(NewInboundSource, "Created; the URL and the secret are shown once"), ...errorResponses },
  }),
  async (c) => {
    const orgId = ownOrganisation(c);
    const input = (c.req.valid("json") ?? {}) as z.output<typeof InboundSourceCreate>;
    return c.json(await createSource(c.env, orgId, input, new URL(c.req.url).origin, c.get("submitter")), 201);
  },
);

inboundSourceRoutes.openapi(
  createRoute({ method: "get", path: "/", tags, security, responses: { 200: json(page(InboundSource), "Sources, newest first"), ...errorResponses } }),
  async (c) => c.json({ results: await listSources(c.env, ownOrganisation(c)), next: null }, 200),
);

inboundSourceRoutes.openapi(
  createRoute({ method: "get", path: "/{id}", tags, security, request: { params: idParam }, responses: { 200: json(InboundSource, "The source"), ...errorResponses } }),
  async (c) => c.json(sourceOut(await findSource(c.env, ownOrganisation(c), c.req.valid("param").id)), 200),
);

inboundSourceRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/{id}",
    tags,
    security,
    summary: "Revoke: the URL answers 410 from now on",
    request: { params: idParam },
    responses: { 200: json(InboundSource, "Revoked"), ...errorResponses },
  }),
  async (c) => c.json(await revokeSource(c.env, ownOrganisation(c), c.req.valid("param").id, c.get("submitter")), 200),
);

export const flagsmithInboundRoutes = resource();

// Documented here, validated in the handler: the signature covers the raw bytes, so the body is
// read as bytes and checked before it is parsed.
flagsmithInboundRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/{token}",
  tags,
  summary: "Receive one of Flagsmith's own webhooks (AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED, NEW_VERSION_PUBLISHED)",
  description:
    "Verifies X-Flagsmith-Signature over the raw body (unless the source is unsigned), records the change durably and relays it, with retries, to the organisation's webhooks. The same body sent again is accepted again and changes nothing. Flagsmith's \"Test webhook\" samples answer 200 and are neither recorded nor relayed. Bodies may be up to 2,000,000 bytes, as long as their stored form fits D1's 2 MB values.",
  request: {
    params: z.object({ token: z.string().openapi({ param: { name: "token", in: "path" } }) }),
    query: InboundQuery,
    headers: z.object({ "x-flagsmith-signature": z.string().optional().openapi({ description: "hex HMAC-SHA256 of the raw body, keyed by the source's secret; required unless the source is unsigned" }) }),
    body: { required: true, content: { "application/json": { schema: flagsmithWebhook } } },
  },
  responses: {
    200: json(
      z.object({ status: z.literal("test_received"), event_type: z.string(), last_test_received_at: z.string(), message: z.string() }),
      "One of Flagsmith's \"Test webhook\" samples: URL and secret work; nothing recorded or relayed",
    ),
    202: json(z.object({ event_id: z.string(), status: z.literal("accepted") }), "Accepted: durable, recorded and relayed even if the worker dies now"),
    ...errorResponses,
    410: json(z.object({ error: z.object({ code: z.string(), message: z.string() }) }), "The source was revoked"),
    413: json(z.object({ error: z.object({ code: z.string(), message: z.string() }) }), "Too large to store (nothing is stored)"),
  },
});

function queryOf(url: string): z.output<typeof InboundQuery> {
  const parsed = InboundQuery.safeParse(Object.fromEntries(new URL(url).searchParams));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue.path.join(".") || undefined;
  throw new ApiError(400, "validation_failed", `inbound URL query: ${field ?? "query"}: ${issue.message}`, [{ field, message: issue.message }]);
}

flagsmithInboundRoutes.post("/:token", async (c) => {
  const { source, secret } = await sourceForToken(c.env, c.req.param("token"));
  const query = queryOf(c.req.url);
  // Only once the URL's token is known to be a live source's is the body read.
  await acceptJsonBody(c, INBOUND_MAX_BODY_BYTES, "Flagsmith webhook bodies");
  const raw = new Uint8Array(await c.req.arrayBuffer());
  // An unsigned source checks nothing: Flagsmith sends no signature when its secret is blank.
  if (secret !== null) {
    const signature = c.req.header("x-flagsmith-signature")?.trim();
    if (!signature) throw new ApiError(401, "missing_signature", "X-Flagsmith-Signature is required: set the secret in Flagsmith's webhook settings");
    if (!(await flagsmithSignatureValid(secret, raw, signature))) {
      throw new ApiError(401, "invalid_signature", "X-Flagsmith-Signature does not match the body and this source's secret");
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new ApiError(400, "malformed_json", "request body is not UTF-8 JSON");
  }
  if (nestingDepth(text) > MAX_NESTING) {
    throw new ApiError(400, "validation_failed", `not a Flagsmith webhook body: nested more than ${MAX_NESTING} levels deep`);
  }
  const parsed = parseFlagsmithWebhook(text);
  if (!parsed.success) {
    if (parsed.error instanceof SyntaxError) throw new ApiError(400, "malformed_json", "request body is not valid JSON");
    const issues = parsed.error.issues;
    throw new ApiError(
      400,
      "validation_failed",
      `not a Flagsmith webhook body: ${issues[0].path.join(".") || "body"}: ${issues[0].message}`,
      issues.map((i) => ({ field: i.path.join(".") || undefined, message: i.message })),
    );
  }
  const { webhook } = parsed;
  if (isFlagsmithTestSample(webhook.event_type, webhook.data)) {
    // Flagsmith's "Test webhook" button reports success on 200 only (api/webhooks/views.py).
    const at = await markTestReceived(c.env, source);
    return c.json(
      { status: "test_received", event_type: webhook.event_type, last_test_received_at: at, message: "Flagsmith's test sample arrived: this URL and secret work. Nothing was recorded or relayed." },
      200,
    );
  }
  // Flag events are remembered DELIVERY_RETENTION_DAYS, audit log entries AUDIT_RETENTION_DAYS (if set).
  // A body without a time of its own (a published version, an empty timestamp) is kept by its entry.
  const cfg = config(c.env);
  const kept = webhook.event_type === "FLAG_UPDATED" || webhook.event_type === "FLAG_DELETED" ? cfg.deliveryRetentionDays : cfg.auditRetentionDays;
  const own = flagsmithTimestamp(webhook);
  const outside = own && outsideReplayWindow(own.ms, now(), kept === null ? null : kept * 86_400_000);
  if (own && outside) throw new ApiError(400, "timestamp_out_of_range", `${own.field} ${outside}`, [{ field: own.field, message: outside }]);
  const [accepted] = await acceptEvents(
    c.env,
    source.orgId,
    [{ event: relayedChangeEvent(source.id, webhook, query.environment ?? null), clientId: await relayKey(webhook) }],
    inboundSourceSubmitter(source),
  );
  c.executionCtx.waitUntil(markReceived(c.env, source).catch((err) => console.warn(`last_received_at not updated: ${String(err)}`)));
  return c.json(accepted, 202);
});
