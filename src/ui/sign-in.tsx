// Signing in with an organisation API key, and signing out.
import { Hono } from "hono";
import { deleteCookie } from "hono/cookie";
import { organisationForKey } from "../api/auth";
import { timingSafeEqual } from "../domain/crypto";
import { ApiError } from "../domain/errors";
import { Csrf, Notice, render } from "./layout";
import {
  CSRF_FIELD,
  SIGN_IN_COOKIE,
  checkSignInToken,
  csrfRefused,
  endSession,
  readSession,
  signInToken,
  startSession,
  type UiEnv,
} from "./session";

/**
 * Only our own pages are places to go back to after signing in (no open redirect). A `next` that
 * could not even be a Location header (control characters such as CR LF, non-ASCII) is refused.
 */
export function safeNext(next: unknown): string {
  if (typeof next === "string" && !/^[\x20-\x7e]*$/.test(next)) {
    throw new ApiError(400, "validation_failed", "next must be a path of this site", [{ field: "next", message: "only printable ASCII is allowed" }]);
  }
  return typeof next === "string" && /^\/ui\/[^/\\]/.test(next) && !next.includes("//") ? next : "/ui/audit";
}

const REASONS: Record<string, string> = {
  expired: "Your session expired. Sign in again.",
  revoked: "The API key of your session was revoked. Sign in with another key.",
  invalid: "Your session cookie was not valid. Sign in again.",
  "signed-out": "You are signed out.",
};

function SignInForm(props: { token: string; next: string; error?: string; reason?: string }) {
  const reason = props.reason && REASONS[props.reason] ? REASONS[props.reason] : props.next !== "/ui/audit" && !props.error ? "Sign in to see that page." : null;
  return (
    <div class="card narrow">
      <h1>Sign in</h1>
      {reason && <Notice kind="info">{reason}</Notice>}
      {props.error && <Notice kind="bad">{props.error}</Notice>}
      <p class="muted small">
        Use one of your organisation's API keys (<code>fh_…</code>). It is checked once here and never stored in your
        browser; the session ends when you sign out, when it expires, or when the key is revoked.
      </p>
      <form method="post" action="/ui/sign-in">
        <Csrf token={props.token} />
        <input type="hidden" name="next" value={props.next} />
        <label for="key">Organisation API key</label>
        <input id="key" type="password" name="key" autocomplete="off" required maxlength={200} autofocus />
        <div class="actions">
          <button type="submit">Sign in</button>
        </div>
      </form>
    </div>
  );
}

export const signInRoutes = new Hono<UiEnv>();

signInRoutes.get("/", (c) => c.redirect("/ui/audit", 303));

signInRoutes.get("/sign-in", async (c) => {
  const next = safeNext(c.req.query("next"));
  if (typeof (await readSession(c)) !== "string") return c.redirect(next, 303);
  const token = await signInToken(c);
  return render(c, "Sign in", <SignInForm token={token} next={next} reason={c.req.query("reason")} />, { section: "sign-in" });
});

signInRoutes.post("/sign-in", async (c) => {
  const body = await c.req.parseBody();
  await checkSignInToken(c, String(body[CSRF_FIELD] ?? ""));
  const next = safeNext(body.next);
  const key = String(body.key ?? "").trim();
  const found = key ? await organisationForKey(c.env.DB, key, (p) => c.executionCtx.waitUntil(p)) : null;
  if (!found) {
    const token = await signInToken(c);
    const error = "That API key is not valid, or it has been revoked.";
    return render(c, "Sign in", <SignInForm token={token} next={next} error={error} />, { status: 401, section: "sign-in" });
  }
  await startSession(c, found.orgId, found.keyId);
  deleteCookie(c, SIGN_IN_COOKIE, { path: "/ui" });
  return c.redirect(next, 303);
});

/** Signing out always clears the cookie; with a live session the form must carry its token. */
signInRoutes.post("/sign-out", async (c) => {
  const session = await readSession(c);
  if (typeof session !== "string") {
    const body = await c.req.parseBody();
    if (!timingSafeEqual(String(body[CSRF_FIELD] ?? ""), session.csrf)) throw csrfRefused();
  }
  endSession(c);
  return c.redirect("/ui/sign-in?reason=signed-out", 303);
});
