// The admin pages under /ui: sign-in, then the audit log, webhooks and deliveries.
// Errors render as pages, not JSON; every POST passes the Origin check and carries the session's CSRF token.
import { Hono } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError } from "../domain/errors";
import { auditPages } from "./audit";
import { deliveryPages } from "./deliveries";
import { requirePerson } from "./access";
import { historyPages } from "./history";
import { inboundPages } from "./inbound";
import { Notice, pageHeaders, render } from "./layout";
import { readForm, requireSession, type UiEnv } from "./session";
import { signInRoutes } from "./sign-in";
import { webhookPages } from "./webhooks";

const TITLES: Partial<Record<number, string>> = {
  400: "That did not work",
  401: "Not signed in",
  403: "Refused",
  404: "Not found",
  409: "Not now",
  413: "Too large",
};

export const uiRoutes = new Hono<UiEnv>();

uiRoutes.use(pageHeaders);
uiRoutes.use(csrf());
// With Cloudflare Access configured, nothing under /ui answers (or has its form read) without a valid Access token.
uiRoutes.use(requirePerson);
// Signing in and out are the forms read without a session; every other form is read by
// requireSession once the session is known to be live.
uiRoutes.on("POST", ["/sign-in", "/sign-out"], async (c, next) => {
  await readForm(c);
  await next();
});
// Sign-in and sign-out answer without a session; they never call next(), so requireSession
// below guards everything registered after it.
uiRoutes.route("/", signInRoutes);
uiRoutes.use(requireSession);
uiRoutes.route("/", auditPages);
uiRoutes.route("/", historyPages);
uiRoutes.route("/", webhookPages);
uiRoutes.route("/", deliveryPages);
uiRoutes.route("/", inboundPages);
uiRoutes.all("*", () => {
  throw new HTTPException(404, { message: "There is no such page." });
});

uiRoutes.onError((err, c) => {
  let status: ContentfulStatusCode = 500;
  let message = "Something went wrong on our side.";
  let details: string[] = [];
  if (err instanceof ApiError) {
    status = err.status;
    message = err.message;
    details = err.details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).filter((d) => !message.includes(d));
  } else if (err instanceof HTTPException) {
    status = err.status as ContentfulStatusCode;
    message = err.message || (status === 403 ? "This form did not come from this site." : "The request could not be handled.");
  } else {
    console.error(err);
  }
  const title = TITLES[status] ?? "Error";
  message = message.charAt(0).toUpperCase() + message.slice(1);
  return render(
    c,
    title,
    <div class="card narrow" data-error-status={String(status)}>
      <h1>{title}</h1>
      <Notice kind="bad">{message}</Notice>
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li>{d}</li>
          ))}
        </ul>
      )}
      {c.get("session") && (
        <div class="actions">
          <a class="button secondary" href="/ui/audit">
            Audit log
          </a>
          <a class="button secondary" href="/ui/webhooks">
            Webhooks
          </a>
        </div>
      )}
    </div>,
    { status },
  );
});
