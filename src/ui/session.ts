// Admin page sessions: a cookie signed with a key derived from SECRETS_KEY that carries the
// organisation, the API key that signed in, an expiry and a session id. Stateless: every request
// re-checks the key in D1, so revoking the key ends its sessions at once.
import type { Context } from "hono";
import { deleteCookie, getCookie, getSignedCookie, setCookie, setSignedCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { createMiddleware } from "hono/factory";
import { activeKey } from "../api/auth";
import { now } from "../domain/clock";
import { apiKeySubmitter, type Submitter } from "../domain/provenance";
import { hmac, hmacKey, randomBytes, timingSafeEqual, toBase64Url, utf8 } from "../domain/crypto";
import { base32 } from "../domain/ids";
import { requireSecretsKey } from "../delivery/secrets";
import { config, type Env } from "../env";

export const SESSION_COOKIE = "flaghook_session";
/** Before sign-in there is no session to bind the sign-in form's CSRF token to; this cookie is it. */
export const SIGN_IN_COOKIE = "flaghook_sign_in";
export const CSRF_FIELD = "csrf";

export interface Session {
  id: string;
  orgId: number;
  orgName: string;
  keyId: string;
  keyName: string;
  expiresAt: number;
  csrf: string;
}

export interface UiEnv {
  Bindings: Env;
  Variables: { session: Session; secureHeadersNonce?: string };
}

/** Why a request has no session; each shows its own line on the sign-in page. */
export type SessionProblem = "missing" | "invalid" | "expired" | "revoked";

const keys = new Map<string, Promise<Uint8Array>>();

/** The cookie-signing key: HMAC(SECRETS_KEY, purpose), so it is never the key that seals webhook secrets. */
function sessionKey(env: Env): Promise<Uint8Array> {
  const secretsKey = requireSecretsKey(config(env).secretsKey);
  let key = keys.get(secretsKey);
  if (!key) {
    key = (async () => hmac(await hmacKey(utf8(secretsKey)), "flaghook admin session cookie v1"))();
    keys.set(secretsKey, key);
  }
  return key;
}

/** The token every form of a session carries: HMAC of the session id, so a forged form cannot know it. */
async function csrfFor(env: Env, purpose: "session" | "sign-in", id: string): Promise<string> {
  return toBase64Url(await hmac(await hmacKey(await sessionKey(env)), `csrf.${purpose}.${id}`));
}

const cookieOptions = (c: Context, maxAgeSeconds?: number) => ({
  path: "/ui",
  httpOnly: true,
  sameSite: "Strict" as const,
  secure: new URL(c.req.url).protocol === "https:",
  ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
});

export async function startSession(c: Context<UiEnv>, orgId: number, keyId: string): Promise<void> {
  const ttl = config(c.env).sessionTtlMs;
  const value = ["v1", orgId, keyId, now() + ttl, base32(randomBytes(16))].join(".");
  await setSignedCookie(c, SESSION_COOKIE, value, await sessionKey(c.env), cookieOptions(c, Math.floor(ttl / 1000)));
}

/**
 * Who made an admin page's changes, for the audit log: the API key the session signed in with.
 * (A person signed in through Cloudflare Access would be a `person` submitter.)
 */
export const sessionSubmitter = (session: Session): Submitter => apiKeySubmitter({ id: session.keyId, name: session.keyName });

export function endSession(c: Context<UiEnv>): void {
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

/** The signed-in session, or why there is none. */
export async function readSession(c: Context<UiEnv>): Promise<Session | SessionProblem> {
  const raw = await getSignedCookie(c, await sessionKey(c.env), SESSION_COOKIE);
  if (raw === undefined) return "missing";
  if (raw === false) return "invalid";
  const m = /^v1\.(\d{1,15})\.(key_[0-9a-z]{1,64})\.(\d{1,16})\.([0-9a-z]{16,64})$/.exec(raw);
  if (!m) return "invalid";
  const [, org, keyId, expires, id] = m;
  const expiresAt = Number(expires);
  if (now() >= expiresAt) return "expired";
  const key = await activeKey(c.env.DB, keyId);
  if (!key || key.orgId !== Number(org)) return "revoked";
  return { id, orgId: key.orgId, orgName: key.orgName, keyId, keyName: key.keyName, expiresAt, csrf: await csrfFor(c.env, "session", id) };
}

/** The sign-in form's token, bound to a random id in a short-lived cookie set with the form. */
export async function signInToken(c: Context<UiEnv>): Promise<string> {
  let id = getCookie(c, SIGN_IN_COOKIE);
  if (!id || !/^[0-9a-z]{26}$/.test(id)) {
    id = base32(randomBytes(16));
    setCookie(c, SIGN_IN_COOKIE, id, cookieOptions(c, 3600));
  }
  return csrfFor(c.env, "sign-in", id);
}

export async function checkSignInToken(c: Context<UiEnv>, token: string): Promise<void> {
  const id = getCookie(c, SIGN_IN_COOKIE);
  if (!id || !timingSafeEqual(token, await csrfFor(c.env, "sign-in", id))) throw csrfRefused();
}

export const csrfRefused = () =>
  new HTTPException(403, { message: "This form has expired or did not come from this site. Reload the page and try again." });

async function formToken(c: Context<UiEnv>): Promise<string> {
  const body = await c.req.parseBody();
  const token = body[CSRF_FIELD];
  return typeof token === "string" ? token : "";
}

/**
 * Every page but sign-in needs a live session: pages send the browser to sign in, forms are refused.
 * Every POST must also carry the session's CSRF token (besides the Origin check of `csrf()`).
 */
export const requireSession = createMiddleware<UiEnv>(async (c, next) => {
  const session = await readSession(c);
  if (typeof session === "string") {
    if (session !== "missing") endSession(c);
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      const back = new URL(c.req.url);
      const to = new URLSearchParams({ next: back.pathname + back.search });
      if (session !== "missing") to.set("reason", session);
      return c.redirect(`/ui/sign-in?${to}`, 303);
    }
    throw new HTTPException(401, { message: `You are not signed in (${describeProblem(session)}). Sign in and try again.` });
  }
  if (c.req.method === "POST" && !timingSafeEqual(await formToken(c), session.csrf)) throw csrfRefused();
  c.set("session", session);
  await next();
});

export function describeProblem(problem: SessionProblem): string {
  switch (problem) {
    case "missing":
      return "no session";
    case "invalid":
      return "the session cookie was not issued by this server";
    case "expired":
      return "your session expired";
    case "revoked":
      return "the API key of this session was revoked";
  }
}
