// Signing in (with an organisation API key, or as a person Cloudflare Access signed in who picks an
// organisation), and signing out.
import { Hono } from "hono";
import { deleteCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { organisationForKey } from "../api/auth";
import { timingSafeEqual } from "../domain/crypto";
import { ApiError } from "../domain/errors";
import { config } from "../env";
import { Csrf, Notice, render } from "./layout";
import {
  CSRF_FIELD,
  SIGN_IN_COOKIE,
  checkSignInToken,
  csrfRefused,
  endSession,
  notAllowedAnywhere,
  organisationsFor,
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
  ended: "That session was signed out. Sign in again.",
  off: "Your session used a way of signing in that is now switched off.",
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

/** Neither Access nor API keys: nobody can sign in, and the page says why and what to set. */
const signInOff = () =>
  new HTTPException(403, {
    message:
      "Signing in with an API key is switched off on this deployment (UI_API_KEY_SIGN_IN=false) and Cloudflare Access is not configured (ACCESS_TEAM_DOMAIN, ACCESS_AUD).",
  });

export const signInRoutes = new Hono<UiEnv>();

signInRoutes.get("/", (c) => c.redirect("/ui/audit", 303));

signInRoutes.get("/sign-in", async (c) => {
  const next = safeNext(c.req.query("next"));
  // With Access there is nothing to fill in: the pages sign the person in.
  if (c.get("person")) return c.redirect(next, 303);
  if (!config(c.env).uiApiKeySignIn) throw signInOff();
  if (typeof (await readSession(c)) !== "string") return c.redirect(next, 303);
  const token = await signInToken(c);
  return render(c, "Sign in", <SignInForm token={token} next={next} reason={c.req.query("reason")} />, { section: "sign-in" });
});

signInRoutes.post("/sign-in", async (c) => {
  if (c.get("person")) throw new HTTPException(403, { message: "This deployment signs people in through Cloudflare Access; API keys cannot sign in here." });
  if (!config(c.env).uiApiKeySignIn) throw signInOff();
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
  await startSession(c, { orgId: found.orgId, keyId: found.keyId });
  deleteCookie(c, SIGN_IN_COOKIE, { path: "/ui" });
  return c.redirect(next, 303);
});

function ChooseOrganisation(props: { email: string; token: string; next: string; organisations: { id: number; name: string }[]; current?: number }) {
  return (
    <div class="card narrow">
      <h1>Choose an organisation</h1>
      <p class="muted small">
        You are signed in through Cloudflare Access as <strong>{props.email}</strong>, and these organisations let you in.
      </p>
      <ul class="choices">
        {props.organisations.map((o) => (
          <li>
            <form method="post" action="/ui/choose-organisation">
              <Csrf token={props.token} />
              <input type="hidden" name="next" value={props.next} />
              <input type="hidden" name="org" value={String(o.id)} />
              <button type="submit" class={o.id === props.current ? "secondary" : undefined}>
                {o.name} <span class="small">(organisation {o.id})</span>
              </button>
            </form>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Access only: a person allowed into several organisations picks one (and may switch later). */
signInRoutes.get("/choose-organisation", async (c) => {
  const person = c.get("person");
  if (!person) throw new HTTPException(404, { message: "There is no such page." });
  const allowed = await organisationsFor(c.env, person.email);
  if (!allowed.length) throw notAllowedAnywhere(person);
  const session = await readSession(c);
  const current = typeof session === "string" || session.email !== person.email ? undefined : session;
  if (current) c.set("session", current);
  const next = safeNext(c.req.query("next"));
  return render(
    c,
    "Choose an organisation",
    <ChooseOrganisation email={person.email} token={await signInToken(c)} next={next} organisations={allowed} current={current?.orgId} />,
    { section: "sign-in" },
  );
});

signInRoutes.post("/choose-organisation", async (c) => {
  const person = c.get("person");
  if (!person) throw new HTTPException(404, { message: "There is no such page." });
  const body = await c.req.parseBody();
  await checkSignInToken(c, String(body[CSRF_FIELD] ?? ""));
  const chosen = (await organisationsFor(c.env, person.email)).find((o) => String(o.id) === body.org);
  if (!chosen) throw new HTTPException(403, { message: `${person.email} may not enter that organisation.` });
  const before = await readSession(c);
  if (typeof before !== "string") await endSession(c, before.id);
  await startSession(c, { orgId: chosen.id, email: person.email });
  deleteCookie(c, SIGN_IN_COOKIE, { path: "/ui" });
  return c.redirect(safeNext(body.next), 303);
});

/** Signing out ends the session on the server and clears the cookie; with a live session the form must carry its token. */
signInRoutes.post("/sign-out", async (c) => {
  const session = await readSession(c);
  if (typeof session !== "string") {
    const body = await c.req.parseBody();
    if (!timingSafeEqual(String(body[CSRF_FIELD] ?? ""), session.csrf)) throw csrfRefused();
  }
  await endSession(c, typeof session === "string" ? undefined : session.id);
  if (!c.get("person")) return c.redirect("/ui/sign-in?reason=signed-out", 303);
  // Access keeps the person signed in to the team until they leave it too.
  return render(
    c,
    "Signed out",
    <div class="card narrow">
      <h1>Signed out</h1>
      <Notice kind="info">Your flaghook session has ended. You are still signed in to Cloudflare Access.</Notice>
      <div class="actions">
        <a class="button" href="/cdn-cgi/access/logout">
          Sign out of Cloudflare Access
        </a>
        <a class="button secondary" href="/ui/audit">
          Back to the admin pages
        </a>
      </div>
    </div>,
    { section: "sign-in" },
  );
});
