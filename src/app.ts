// The Hono app: middleware and route mounting only.
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { auditRoutes } from "./api/audit";
import { auditLogRoutes } from "./api/audit-log";
import type { AppEnv } from "./api/context";
import { eventRoutes } from "./api/events";
import { historyRoutes } from "./api/history";
import { flagsmithInboundRoutes, inboundSourceRoutes } from "./api/inbound";
import { MAX_BODY_BYTES, unsupportedMediaType } from "./api/json-body";
import { deliveryRoutes } from "./api/deliveries";
import { organisationRoutes } from "./api/organisations";
import { webhookRoutes } from "./api/webhooks";
import { ApiError } from "./domain/errors";
import { docsRoutes } from "./ui/docs";
import { uiRoutes } from "./ui/index";

/** Every path answers with and without a trailing slash (Flagsmith's clients use the slash). */
const getPath = (req: Request) => {
  const url = req.url;
  const start = url.indexOf("/", url.indexOf("://") + 3);
  const end = url.indexOf("?", start);
  const path = url.slice(start, end === -1 ? undefined : end);
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
};

export const app = new OpenAPIHono<AppEnv>({ getPath });

app.use(secureHeaders());
// Request bodies are read by each resource after its authentication (src/api/json-body.ts).

app.get("/healthz", (c) => c.json({ status: "ok" }));
// The root: a browser goes to the admin pages; anything else is told where things are.
app.get("/", (c) => {
  if (/\btext\/html\b/.test(c.req.header("accept") ?? "")) return c.redirect("/ui", 303);
  return c.json({ name: "flaghook", admin_pages: "/ui", api_docs: "/docs", openapi: "/openapi.json", health: "/healthz" });
});
app.route("/api/v1/organisations", organisationRoutes);
app.route("/api/v1/events", eventRoutes);
// The signed log's paths first: /api/v1/audit/{id} would otherwise take /verify and /consistency.
app.route("/api/v1/audit", auditLogRoutes);
app.route("/api/v1/audit", auditRoutes);
app.route("/api/v1/organisations/:org/webhooks", webhookRoutes("organisation"));
app.route("/api/v1/environments/:env/webhooks", webhookRoutes("environment"));
app.route("/api/v1/environments/:env", historyRoutes);
app.route("/api/v1/deliveries", deliveryRoutes);
app.route("/api/v1/organisations/:org/inbound-sources", inboundSourceRoutes);
app.route("/api/v1/inbound/flagsmith", flagsmithInboundRoutes);
// Admin pages and API docs: HTML with their own strict CSP (src/ui/layout.tsx), errors as pages.
app.route("/ui", uiRoutes);
app.route("/docs", docsRoutes(app));

app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
  type: "apiKey",
  in: "header",
  name: "Authorization",
  description: "Api-Key <key>",
});
app.openAPIRegistry.registerComponent("securitySchemes", "operator", { type: "http", scheme: "bearer" });
const openApiConfig = {
  openapi: "3.1.0",
  info: {
    title: "flaghook",
    version: "0.1.0",
    description: "Audit trail and signed-webhook relay for feature-flag changes, compatible with Flagsmith's webhooks.",
  },
};
const errorDoc = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
const bodyErrorResponsesDoc = {
  413: errorDoc(`The body is over ${MAX_BODY_BYTES / 1024} KiB`),
  415: errorDoc("The body is not Content-Type: application/json"),
};
const internalErrorDoc = { 500: errorDoc("Something went wrong on flaghook's side") };
// Every status a route can answer is in the document: the routes' own, plus what the /api middleware
// answers for any body (413, 415) and the 500 any route may answer.
app.get("/openapi.json", (c) => {
  const doc = app.getOpenAPI31Document(openApiConfig);
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item ?? {}) as [string, { responses?: Record<string, unknown> }][]) {
      if (!op || typeof op !== "object" || !op.responses) continue;
      if (path.startsWith("/api/") && ["post", "put", "patch"].includes(method)) Object.assign(op.responses, bodyErrorResponsesDoc);
      Object.assign(op.responses, internalErrorDoc);
    }
  }
  return c.json(doc);
});

app.notFound(() => {
  throw new ApiError(404, "not_found", "no such route");
});

app.onError((err, c) => {
  if (err instanceof ApiError) return c.json(err.toJSON(), err.status, err.headers);
  if (err instanceof HTTPException) {
    const status = err.status;
    // 415: a content type the route's validator refuses though jsonBodyOnly let it by.
    if (status === 415) return c.json(unsupportedMediaType().toJSON(), 415);
    const code = status === 400 ? "malformed_request" : status === 413 ? "payload_too_large" : "http_error";
    const message = /json/i.test(err.message) ? "request body is not valid JSON" : err.message || "bad request";
    return c.json(new ApiError(status as 400, code === "malformed_request" && /json/i.test(err.message) ? "malformed_json" : code, message).toJSON(), status as 400);
  }
  console.error(err);
  return c.json(new ApiError(500, "internal_error", "something went wrong on our side").toJSON(), 500);
});
