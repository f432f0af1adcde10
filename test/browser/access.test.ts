/// <reference types="node" />
// Signing in through Cloudflare Access in real Chromium: a flaghook of its own under `wrangler dev`
// with ACCESS_TEAM_DOMAIN / ACCESS_AUD set and the team's keys (a JWKS) served by a local HTTP
// server; the browser sends the Cf-Access-Jwt-Assertion header that Access adds in front of the
// Worker, with a token signed by a key this test generates. Screenshots go to test-output/browser/.
// Contexts stay open until the browser closes (closing @sparticuz/chromium's last context ends it).
import { createServer, type Server } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { sign } from "hono/jwt";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "./chromium";
import { startFlaghook } from "./setup";

const TEAM = "browser-test.cloudflareaccess.com";
const AUD = "b1a5e0f4c3d2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6";
const ADMIN_TOKEN = "access-browser-test-admin-token";
const PERSON = "ada@access-browser.test";
const SHOTS = join(process.cwd(), "test-output", "browser");
const receiver = inject("receiverUrl");

let jwks: Server;
let flaghook: Awaited<ReturnType<typeof startFlaghook>>;
let browser: Browser;
let privateJwk: JsonWebKey;
let orgId: number;

async function token(email = PERSON) {
  const at = Math.floor(Date.now() / 1000);
  return sign(
    { aud: [AUD], email, exp: at + 3600, iat: at, nbf: at, iss: `https://${TEAM}`, type: "app", sub: "0b6b1c8e-5d3c-4c1e-9c55-2f1d8b1f7a10" },
    { ...privateJwk, alg: "RS256", kid: "browser-test-key" } as JsonWebKey & { alg: "RS256"; kid: string },
    "RS256",
  );
}

async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const res = await fetch(`${flaghook.baseUrl}${path}`, {
    ...init,
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers as Record<string, string>) },
    body: init.json === undefined ? init.body : JSON.stringify(init.json),
  });
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const pair = (await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  privateJwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const { kty, n, e } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  const certs = JSON.stringify({ keys: [{ kid: "browser-test-key", kty, n, e, alg: "RS256", use: "sig" }] });
  jwks = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(certs));
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const { port } = jwks.address() as { port: number };

  flaghook = await startFlaghook({
    ADMIN_TOKEN,
    SECRETS_KEY: "access-browser-test-secrets-key",
    ALLOW_PRIVATE_WEBHOOK_URLS: "true",
    ACCESS_TEAM_DOMAIN: TEAM,
    ACCESS_AUD: AUD,
    ACCESS_JWKS_URL: `http://127.0.0.1:${port}/cdn-cgi/access/certs`,
  });
  orgId = (await api<{ id: number }>("/api/v1/organisations", { method: "POST", json: { name: "Access Co", access_emails: [PERSON] } })).id;
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await flaghook?.stop();
  await new Promise((resolve) => jwks?.close(resolve));
});

describe("admin pages behind Cloudflare Access, in Chromium", () => {
  it("signs the person in from Access's header, audits their change with their email, and signs out on the server", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, extraHTTPHeaders: { "cf-access-jwt-assertion": await token() } });
    const page = await context.newPage();
    await page.goto(`${flaghook.baseUrl}/ui/webhooks`);
    expect(new URL(page.url()).pathname).toBe("/ui/webhooks");
    await expect(page.locator("header .who").textContent()).resolves.toContain(`Access Co (organisation ${orgId}, ${PERSON})`);
    await page.screenshot({ path: join(SHOTS, "20-access-signed-in.png"), fullPage: true });

    await page.click("text=Add organisation webhook");
    await page.fill("#w-url", `${receiver}/hooks/access-browser`);
    await page.fill("#w-name", "Made by Ada");
    await page.click("text=Create webhook");
    await expect(page.locator("h1").textContent()).resolves.toContain("Made by Ada");

    const entries = await api<{ results: { log: string; author: unknown; is_system_event: boolean }[] }>(
      `/api/v1/organisations/${orgId}/api-keys`,
      { method: "POST", json: { name: "reader" } },
    ).then(async (key) => {
      const auth = { authorization: `Api-Key ${(key as unknown as { key: string }).key}` };
      for (let i = 0; i < 100; i++) {
        const page = await api<{ results: { log: string; author: unknown; is_system_event: boolean }[] }>("/api/v1/audit/?related_object_type=WEBHOOK", { headers: auth });
        if (page.results.length) return page;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error("the webhook's audit entry was not recorded");
    });
    expect(entries.results[0]).toMatchObject({
      log: expect.stringContaining("Webhook created: Made by Ada"),
      author: { id: null, email: PERSON, first_name: "", last_name: "" },
      is_system_event: false,
    });

    const [cookie] = (await context.cookies()).filter((c) => c.name === "flaghook_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/ui" });
    await page.click("header >> text=Sign out");
    await expect(page.locator("h1").textContent()).resolves.toBe("Signed out");
    await expect(page.locator("a:has-text('Sign out of Cloudflare Access')").getAttribute("href")).resolves.toBe("/cdn-cgi/access/logout");
    await page.screenshot({ path: join(SHOTS, "21-access-signed-out.png"), fullPage: true });
    // The cookie from before signing out no longer opens a session, even with a valid Access token.
    const copied = await fetch(`${flaghook.baseUrl}/ui/webhooks/new`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: `flaghook_session=${cookie.value}`,
        origin: flaghook.baseUrl,
        "content-type": "application/x-www-form-urlencoded",
        "cf-access-jwt-assertion": await token(),
      },
      body: new URLSearchParams({ csrf: "x", scope: "organisation", url: `${receiver}/hooks/copied` }),
    });
    expect(copied.status).toBe(401);
  });

  it("shows a plain 403 page without Access's header, and to a person no organisation lets in", async () => {
    const bare = await browser.newContext();
    const page = await bare.newPage();
    const res = await page.goto(`${flaghook.baseUrl}/ui/audit`);
    expect(res!.status()).toBe(403);
    await expect(page.locator(".notice.bad").textContent()).resolves.toContain("did not come through it");
    await expect(page.locator("#key").count()).resolves.toBe(0); // no API-key form to fall back to
    await page.screenshot({ path: join(SHOTS, "22-access-refused.png"), fullPage: true });

    const stranger = await browser.newContext({ extraHTTPHeaders: { "cf-access-jwt-assertion": await token("mallory@elsewhere.test") } });
    const strangerPage = await stranger.newPage();
    const refused = await strangerPage.goto(`${flaghook.baseUrl}/ui/audit`);
    expect(refused!.status()).toBe(403);
    await expect(strangerPage.locator(".notice.bad").textContent()).resolves.toContain("no organisation lets this address in");
  });
});
