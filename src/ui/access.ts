// Cloudflare Access in front of the admin pages: the person is whoever the `Cf-Access-Jwt-Assertion`
// header says, once its RS256 signature (the team's keys), audience, issuer and times check out.
// Hono's JWT helpers do the decoding and the signature; the keys are cached here per JWKS URL.
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { decode, verify } from "hono/jwt";
import { now } from "../domain/clock";
import { config, type AccessConfig } from "../env";
import type { UiEnv } from "./session";

export const ACCESS_HEADER = "cf-access-jwt-assertion";

/** Someone Access signed in. */
export interface Person {
  email: string;
}

/** Why a token was refused; the admin pages show `message` on a plain 403 page. */
export class AccessRefused extends Error {}

/** Keys are kept this long; Access rotates them every 6 weeks and keeps the old one valid for 7 days. */
const KEYS_TTL_MS = 3_600_000;
/** A token with an unknown `kid` refetches the keys, at most this often (made-up kids cannot flood the team's endpoint). */
const REFETCH_MIN_MS = 30_000;

interface KeySet {
  keys: Map<string, CryptoKey>;
  fetchedAt: number;
}

const keySets = new Map<string, KeySet>();
const fetching = new Map<string, Promise<KeySet>>();

async function fetchKeys(url: string): Promise<KeySet> {
  let pending = fetching.get(url);
  if (!pending) {
    pending = (async () => {
      const res = await fetch(url, { headers: { accept: "application/json" } });
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      const body = (await res.json()) as { keys?: unknown };
      if (!Array.isArray(body.keys)) throw new Error(`${url} has no "keys" array`);
      const keys = new Map<string, CryptoKey>();
      for (const jwk of body.keys as JsonWebKey[] & { kid?: unknown }[]) {
        const kid = (jwk as { kid?: unknown }).kid;
        if (typeof kid !== "string" || jwk.kty !== "RSA" || (jwk.alg !== undefined && jwk.alg !== "RS256")) continue;
        const { kty, n, e } = jwk;
        keys.set(kid, await crypto.subtle.importKey("jwk", { kty, n, e }, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]));
      }
      const set = { keys, fetchedAt: now() };
      keySets.set(url, set);
      return set;
    })().finally(() => fetching.delete(url));
    fetching.set(url, pending);
  }
  return pending;
}

const lastAttempt = new Map<string, number>();

/**
 * The team's key with this id: cached, fetched again when the keys are an hour old or the id is new
 * to us, but at most every REFETCH_MIN_MS (made-up ids, or a team endpoint that is down, do not make
 * every request fetch). While a fetch is in flight, requests wait for it.
 */
async function keyFor(url: string, kid: string): Promise<CryptoKey | undefined> {
  let set = keySets.get(url);
  const at = now();
  const due = !set || at - set.fetchedAt > KEYS_TTL_MS || !set.keys.has(kid);
  if (due && (fetching.has(url) || at - (lastAttempt.get(url) ?? -Infinity) >= REFETCH_MIN_MS)) {
    lastAttempt.set(url, at);
    try {
      set = await fetchKeys(url);
    } catch {
      // An older set still serves the keys it has while the endpoint is unreachable.
    }
  }
  if (!set) throw new AccessRefused("the Access signing keys could not be fetched; try again in a minute");
  return set.keys.get(kid);
}

/** Verifies an Access token and answers the person it names; throws AccessRefused for any failure. */
export async function personFromToken(access: AccessConfig, token: string | undefined): Promise<Person> {
  if (!token) throw new AccessRefused("this deployment signs people in through Cloudflare Access, and this request did not come through it");
  let kid: unknown;
  try {
    const { header } = decode(token);
    if (header.alg !== "RS256") throw new Error();
    kid = (header as { kid?: unknown }).kid;
  } catch {
    throw new AccessRefused("the Access token is not a valid RS256 token");
  }
  if (typeof kid !== "string") throw new AccessRefused("the Access token names no signing key");
  const key = await keyFor(access.jwksUrl, kid);
  if (!key) throw new AccessRefused("the Access token was signed by a key this team does not publish");
  let payload: Record<string, unknown>;
  try {
    // Times are checked below against flaghook's one clock; Hono checks the signature, iss and aud.
    payload = await verify(token, key, { alg: "RS256", iss: access.issuer, aud: access.audience, exp: false, nbf: false, iat: false });
  } catch (err) {
    const name = err instanceof Error ? err.name : "";
    if (name === "JwtTokenIssuer") throw new AccessRefused("the Access token was issued by another team");
    if (name === "JwtTokenAudience" || name === "JwtPayloadRequiresAud") throw new AccessRefused("the Access token is for another application");
    throw new AccessRefused("the Access token's signature is not valid");
  }
  const seconds = now() / 1000;
  if (typeof payload.exp !== "number") throw new AccessRefused("the Access token has no expiry");
  if (payload.exp <= seconds) throw new AccessRefused("the Access token has expired; reload the page to sign in again");
  if (payload.nbf !== undefined && (typeof payload.nbf !== "number" || payload.nbf > seconds)) {
    throw new AccessRefused("the Access token is not valid yet");
  }
  const email = payload.email;
  if (typeof email !== "string" || !/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 320) {
    throw new AccessRefused("the Access token names no person (a service token cannot use the admin pages)");
  }
  return { email: email.toLowerCase() };
}

/**
 * With Access configured, every admin page request must carry a valid token: the person it names is
 * put on the context; anything else is a plain 403 page, never a fallback to another way in.
 */
export const requirePerson = createMiddleware<UiEnv>(async (c, next) => {
  const access = config(c.env).access;
  if (access) {
    try {
      c.set("person", await personFromToken(access, c.req.header(ACCESS_HEADER)));
    } catch (err) {
      if (!(err instanceof AccessRefused)) throw err;
      throw new HTTPException(403, { message: `${err.message}.` });
    }
  }
  await next();
});
