// The Hono app: middleware and route mounting only.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { auditRoutes } from "./api/audit";
import type { AppEnv } from "./api/context";
import { eventRoutes } from "./api/events";
import { historyRoutes } from "./api/history";
import { flagsmithInboundRoutes, inboundSourceRoutes } from "./api/inbound";
import { jsonBodyOnly, unsupportedMediaType } from "./api/json-body";
import { deliveryRoutes } from "./api/deliveries";
import { organisationRoutes } from "./api/organisations";
import { webhookRoutes } from "./api/webhooks";
import { ApiError } from "./domain/errors";
import { docsRoutes } from "./ui/docs";
import { uiRoutes } from "./ui/index";

export const MAX_BODY_BYTES = 256 * 1024;

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
app.use(
  "/api/*",
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    },
  }),
);
// JSON APIs take JSON bodies only, in valid UTF-8.
app.use("/api/*", jsonBodyOnly);

app.get("/healthz", (c) => c.json({ status: "ok" }));
app.route("/api/v1/organisations", organisationRoutes);
app.route("/api/v1/events", eventRoutes);
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
app.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "flaghook",
    version: "0.1.0",
    description: "Audit trail and signed-webhook relay for feature-flag changes, compatible with Flagsmith's webhooks.",
  },
});

app.notFound(() => {
  throw new ApiError(404, "not_found", "no such route");
});

app.onError((err, c) => {
  if (err instanceof ApiError) return c.json(err.toJSON(), err.status);
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
