// Admin page sessions. The cookie carries only a random session id, signed with a key derived from
// SECRETS_KEY; the session itself is a row of ui_sessions, read (with its organisation, its API key
// and whether its person may still enter) in one indexed D1 query a request. Signing out deletes the
// row, so a copied cookie stops working at once; revoking the key or the person's access ends it too.
import type { Context } from "hono";
import { deleteCookie, getCookie, getSignedCookie, setCookie, setSignedCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { createMiddleware } from "hono/factory";
import { and, eq, or, sql } from "drizzle-orm";
import { readBodyWithin } from "../api/json-body";
import { now } from "../domain/clock";
import { apiKeySubmitter, personSubmitter, type Submitter } from "../domain/provenance";
import { hmac, hmacKey, randomBytes, timingSafeEqual, toBase64Url, utf8 } from "../domain/crypto";
import { base32 } from "../domain/ids";
import { database } from "../db/client";
import { apiKeys, organisationAccess, organisations, uiSessions } from "../db/schema";
import { requireSecretsKey } from "../delivery/secrets";
import { config, type Env } from "../env";
import type { Person } from "./access";

export const SESSION_COOKIE = "flaghook_session";
/** Before sign-in there is no session to bind the sign-in form's CSRF token to; this cookie is it. */
export const SIGN_IN_COOKIE = "flaghook_sign_in";
export const CSRF_FIELD = "csrf";

export interface Session {
  id: string;
  orgId: number;
  orgName: string;
  /** Signed in with an organisation API key: the key. */
  keyId: string | null;
  keyName: string | null;
  /** Signed in through Cloudflare Access: the person's email. */
  email: string | null;
  expiresAt: number;
  csrf: string;
}

export interface UiEnv {
  Bindings: Env;
  Variables: { session: Session; person?: Person; secureHeadersNonce?: string };
}

/** Why a request has no session; each shows its own line on the sign-in page. */
export type SessionProblem = "missing" | "invalid" | "expired" | "revoked" | "ended" | "not-allowed" | "off";

/**
 * Who made an admin page's changes, for the audit log: the person Cloudflare Access signed in (their
 * entries name them as author), else the API key the session signed in with.
 */
export const sessionSubmitter = (session: Session): Submitter =>
  session.email ? personSubmitter(session.email) : apiKeySubmitter({ id: session.keyId!, name: session.keyName! });

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

/** Starts a session for an API key or a person, in D1 and in the cookie. */
export async function startSession(
  c: Context<UiEnv>,
  who: { orgId: number; keyId: string } | { orgId: number; email: string },
): Promise<{ id: string; expiresAt: number; csrf: string }> {
  const ttl = config(c.env).sessionTtlMs;
  const id = base32(randomBytes(16));
  const expiresAt = now() + ttl;
  const keyId = "keyId" in who ? who.keyId : null;
  const email = "email" in who ? who.email : null;
  await database(c.env.DB).insert(uiSessions).values({ id, orgId: who.orgId, keyId, email, createdAt: now(), expiresAt });
  await setSignedCookie(c, SESSION_COOKIE, `v2.${id}`, await sessionKey(c.env), cookieOptions(c, Math.floor(ttl / 1000)));
  return { id, expiresAt, csrf: await csrfFor(c.env, "session", id) };
}

/** Ends a session: its row goes (every copy of the cookie is dead from now on), and the cookie is cleared. */
export async function endSession(c: Context<UiEnv>, id?: string): Promise<void> {
  if (id) await database(c.env.DB).delete(uiSessions).where(eq(uiSessions.id, id));
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

/** The session id in the cookie, if the cookie is one this server signed. */
async function sessionIdOf(c: Context<UiEnv>): Promise<string | "missing" | "invalid"> {
  const raw = await getSignedCookie(c, await sessionKey(c.env), SESSION_COOKIE);
  if (raw === undefined) return "missing";
  if (raw === false) return "invalid";
  const m = /^v2\.([0-9a-z]{26})$/.exec(raw);
  return m ? m[1] : "invalid";
}

/** The signed-in session, or why there is none. One D1 read: the session, its organisation, key and access. */
export async function readSession(c: Context<UiEnv>): Promise<Session | SessionProblem> {
  const id = await sessionIdOf(c);
  if (id === "missing" || id === "invalid") return id;
  const [row] = await database(c.env.DB)
    .select({
      orgId: uiSessions.orgId,
      orgName: organisations.name,
      keyId: uiSessions.keyId,
      keyName: apiKeys.name,
      keyRevokedAt: apiKeys.revokedAt,
      email: uiSessions.email,
      expiresAt: uiSessions.expiresAt,
      // Whether the operator still lets the session's person into its organisation.
      allowed: sql<number>`exists (select 1 from ${organisationAccess} where ${organisationAccess.orgId} = ${uiSessions.orgId} and (
        (${organisationAccess.kind} = 'email' and ${organisationAccess.value} = ${uiSessions.email}) or
        (${organisationAccess.kind} = 'domain' and ${organisationAccess.value} = substr(${uiSessions.email}, instr(${uiSessions.email}, '@') + 1))))`,
    })
    .from(uiSessions)
    .innerJoin(organisations, eq(organisations.id, uiSessions.orgId))
    .leftJoin(apiKeys, eq(apiKeys.id, uiSessions.keyId))
    .where(eq(uiSessions.id, id))
    .limit(1);
  if (!row) return "ended";
  if (now() >= row.expiresAt) return "expired";
  const cfg = config(c.env);
  if (row.keyId !== null) {
    if (row.keyName === null || row.keyRevokedAt !== null) return "revoked";
    if (!cfg.uiApiKeySignIn) return "off";
  } else {
    // A person's session is only ever used beside a verified Access token (requireSession checks whose).
    if (!cfg.access) return "off";
    if (!row.allowed) return "not-allowed";
  }
  return {
    id,
    orgId: row.orgId,
    orgName: row.orgName,
    keyId: row.keyId,
    keyName: row.keyName,
    email: row.email,
    expiresAt: row.expiresAt,
    csrf: await csrfFor(c.env, "session", id),
  };
}

/** The organisations a person may enter, by their email or its domain, by name. */
export async function organisationsFor(env: Env, email: string): Promise<{ id: number; name: string }[]> {
  const domain = email.slice(email.lastIndexOf("@") + 1);
  return database(env.DB)
    .selectDistinct({ id: organisations.id, name: organisations.name })
    .from(organisationAccess)
    .innerJoin(organisations, eq(organisations.id, organisationAccess.orgId))
    .where(
      or(
        and(eq(organisationAccess.kind, "email"), eq(organisationAccess.value, email)),
        and(eq(organisationAccess.kind, "domain"), eq(organisationAccess.value, domain)),
      ),
    )
    .orderBy(organisations.name, organisations.id);
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

/** Forms are small: a larger body answers 413 (read to its end first, see src/api/json-body.ts). */
export const FORM_MAX_BYTES = 64 * 1024;
export const readForm = (c: Context) =>
  readBodyWithin(c.req, FORM_MAX_BYTES, () => new HTTPException(413, { message: "Forms are limited to 64 KiB." }));

async function formToken(c: Context<UiEnv>): Promise<string> {
  await readForm(c); // only once the session is known to be live
  const body = await c.req.parseBody();
  const token = body[CSRF_FIELD];
  return typeof token === "string" ? token : "";
}

/** Where the browser was going, for coming back after signing in or choosing an organisation. */
function nextParam(c: Context<UiEnv>, problem?: SessionProblem): URLSearchParams {
  const back = new URL(c.req.url);
  const to = new URLSearchParams({ next: back.pathname + back.search });
  if (problem && problem !== "missing") to.set("reason", problem);
  return to;
}

/**
 * A person Access signed in who has no session here: straight into their one organisation, or to the
 * page where they pick one; a 403 page when no organisation lets them in.
 */
async function enterAsPerson(c: Context<UiEnv>, person: Person): Promise<Session | Response> {
  const allowed = await organisationsFor(c.env, person.email);
  if (!allowed.length) throw notAllowedAnywhere(person);
  const reading = c.req.method === "GET" || c.req.method === "HEAD";
  if (allowed.length === 1 && reading) {
    const [org] = allowed;
    const started = await startSession(c, { orgId: org.id, email: person.email });
    return { ...started, orgId: org.id, orgName: org.name, keyId: null, keyName: null, email: person.email };
  }
  if (reading) return c.redirect(`/ui/choose-organisation?${nextParam(c)}`, 303);
  throw new HTTPException(401, { message: "You have no session in an organisation (it ended or expired). Reload the page and try again." });
}

export const notAllowedAnywhere = (person: Person) =>
  new HTTPException(403, {
    message: `You are signed in as ${person.email}, but no organisation lets this address into its admin pages. Ask your flaghook operator to add your email or its domain to your organisation.`,
  });

/**
 * Every page but sign-in needs a live session: pages send the browser to sign in, forms are refused.
 * With Access, the session must also be the person's whom this request's token names.
 * Every POST must also carry the session's CSRF token (besides the Origin check of `csrf()`).
 */
export const requireSession = createMiddleware<UiEnv>(async (c, next) => {
  const person = c.get("person");
  let session = await readSession(c);
  if (person && typeof session !== "string" && session.email !== person.email) {
    await endSession(c, session.id);
    session = "missing";
  }
  if (typeof session === "string") {
    if (session !== "missing") await endSession(c);
    if (person) {
      const entered = await enterAsPerson(c, person);
      if (entered instanceof Response) return entered;
      session = entered;
    } else if (c.req.method === "GET" || c.req.method === "HEAD") {
      return c.redirect(`/ui/sign-in?${nextParam(c, session)}`, 303);
    } else {
      throw new HTTPException(401, { message: `You are not signed in (${describeProblem(session)}). Sign in and try again.` });
    }
  } else if (c.req.method === "POST" && !timingSafeEqual(await formToken(c), session.csrf)) {
    throw csrfRefused();
  }
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
    case "ended":
      return "this session was signed out";
    case "not-allowed":
      return "your access to this organisation was removed";
    case "off":
      return "this way of signing in is switched off";
  }
}
