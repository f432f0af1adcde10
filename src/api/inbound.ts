// Relaying a real Flagsmith: inbound sources of an organisation (Api-Key), and the public URL that
// takes Flagsmith's own webhooks verbatim (its token and X-Flagsmith-Signature are the credentials).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError, notFound } from "../domain/errors";
import { flagsmithSignatureValid, flagsmithWebhook, parseFlagsmithWebhook, relayedChangeEvent, relayKey } from "../domain/flagsmith";
import { inboundSourceSubmitter } from "../domain/provenance";
import { acceptEvents } from "../ingest/accept";
import { createSource, listSources, markReceived, revokeSource, findSource, sourceForToken, sourceOut } from "../manage/inbound-sources";
import { requireOrganisation } from "./auth";
import { resource, type AppEnv } from "./context";
import { errorResponses, json, jsonBody, page } from "./schemas";

const InboundSource = z
  .object({
    id: z.string().openapi({ example: "src_0v3..." }),
    name: z.string(),
    token_prefix: z.string().openapi({ description: "The start of the URL's token, to tell sources apart" }),
    created_at: z.string(),
    last_received_at: z.string().nullable().openapi({ description: "Last verified webhook, to the minute" }),
    revoked_at: z.string().nullable(),
  })
  .openapi("InboundSource");

const NewInboundSource = InboundSource.extend({
  url: z.string().openapi({ description: "Paste into Flagsmith's webhook URL field; shown only in this answer" }),
  secret: z.string().openapi({ description: "Paste into Flagsmith's webhook secret field; shown only in this answer" }),
}).openapi("NewInboundSource");

const InboundSourceCreate = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    // Flagsmith stores webhook secrets in 255 characters.
    secret: z.string().min(8).max(255).optional().openapi({ description: "Default: whsec_ + base64 of 32 random bytes" }),
  })
  .openapi("InboundSourceCreate");

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
inboundSourceRoutes.use("*", requireOrganisation);

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
  summary: "Receive one of Flagsmith's own webhooks (AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED)",
  description:
    "Verifies X-Flagsmith-Signature over the raw body, records the change durably and relays it, with retries, to the organisation's webhooks. The same body sent again is accepted again and changes nothing.",
  request: {
    params: z.object({ token: z.string().openapi({ param: { name: "token", in: "path" } }) }),
    headers: z.object({ "x-flagsmith-signature": z.string().openapi({ description: "hex HMAC-SHA256 of the raw body, keyed by the source's secret" }) }),
    body: { required: true, content: { "application/json": { schema: flagsmithWebhook } } },
  },
  responses: {
    202: json(z.object({ event_id: z.string(), status: z.literal("accepted") }), "Accepted: durable, recorded and relayed even if the worker dies now"),
    ...errorResponses,
    410: json(z.object({ error: z.object({ code: z.string(), message: z.string() }) }), "The source was revoked"),
  },
});

flagsmithInboundRoutes.post("/:token", async (c) => {
  const { source, secret } = await sourceForToken(c.env, c.req.param("token"));
  const raw = new Uint8Array(await c.req.arrayBuffer());
  const signature = c.req.header("x-flagsmith-signature")?.trim();
  if (!signature) throw new ApiError(401, "missing_signature", "X-Flagsmith-Signature is required: set the secret in Flagsmith's webhook settings");
  if (!(await flagsmithSignatureValid(secret, raw, signature))) {
    throw new ApiError(401, "invalid_signature", "X-Flagsmith-Signature does not match the body and this source's secret");
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new ApiError(400, "malformed_json", "request body is not UTF-8 JSON");
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
  const [accepted] = await acceptEvents(
    c.env,
    source.orgId,
    [{ event: relayedChangeEvent(source.id, webhook), clientId: await relayKey(webhook) }],
    inboundSourceSubmitter(source),
  );
  c.executionCtx.waitUntil(markReceived(c.env, source).catch((err) => console.warn(`last_received_at not updated: ${String(err)}`)));
  return c.json(accepted, 202);
});
