// Cloudflare Access sign-in for the admin pages, end to end in the Workers runtime: the team's keys
// are a JWKS served by the real local receiver (a mailbox answering GET), tokens are RS256 JWTs
// signed by keys this test generates, and the Worker runs with Access configured in its env.
import { env } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { advanceClock, now, resetClock } from "../src/domain/clock";
import type { Env } from "../src/env";
import { ADMIN, call, countRows, createOrganisation, eventually, mailbox, receiverUrl, scriptMailbox } from "./helpers";
import { Browser, fetchPage } from "./ui-client";

const TEAM = "flaghook-test.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const HEADER = "cf-access-jwt-assertion";

/** This test's person: a fresh address each test, as tests share one database. */
let ada = "";
let people = 0;
beforeEach(() => {
  ada = `ada-${++people}-${Date.now()}@acme.test`;
});
afterEach(() => resetClock());

interface TeamKey {
  kid: string;
  privateJwk: JsonWebKey;
  publicJwk: JsonWebKey & { kid: string };
}

async function teamKey(kid: string): Promise<TeamKey> {
  const pair = (await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const privateJwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const { kty, n, e } = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  return { kid, privateJwk, publicJwk: { kid, kty, n, e, alg: "RS256", use: "sig" } as JsonWebKey & { kid: string } };
}

let teams = 0;

/** A team: its JWKS at a fresh receiver mailbox (a fresh URL, so no key cache is shared), and an env using it. */
async function accessTeam(keys: TeamKey[]) {
  const name = `jwks-${++teams}-${Date.now()}`;
  const team = {
    name,
    env: { ...env, ACCESS_TEAM_DOMAIN: TEAM, ACCESS_AUD: AUD, ACCESS_JWKS_URL: `${receiverUrl()}/certs/${name}` } as Env,
    async publish(published: TeamKey[]) {
      // Access's certs document: the keys as JWKs (public_cert(s) in PEM are left out; flaghook reads `keys`).
      await scriptMailbox(name, {
        default: { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ keys: published.map((k) => k.publicJwk) }) },
      });
    },
    fetches: async () => (await mailbox(name)).count,
  };
  await team.publish(keys);
  return team;
}

/** An Access application token as Cloudflare issues it, with any claim overridden (undefined drops it). */
async function accessToken(key: TeamKey, claims: Record<string, unknown> = {}) {
  const at = Math.floor(now() / 1000);
  const payload: Record<string, unknown> = {
    aud: [AUD],
    email: ada,
    exp: at + 3600,
    iat: at,
    nbf: at,
    iss: `https://${TEAM}`,
    type: "app",
    identity_nonce: "6ei69kawdKzMIAPF",
    sub: "7335d417-61da-459d-899c-0a01c76a2c94",
    country: "GB",
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return sign(payload, { ...key.privateJwk, alg: "RS256", kid: key.kid } as JsonWebKey & { alg: "RS256"; kid: string }, "RS256");
}

async function organisationFor(name: string, access: { access_emails?: string[]; access_domains?: string[] }) {
  const org = await createOrganisation(name);
  const res = await call(`/api/v1/organisations/${org.orgId}`, { method: "PATCH", headers: ADMIN, json: access });
  expect(res.status).toBe(200);
  return org;
}

/** The CSRF token of the choose-organisation forms (the page's header also has the session's sign-out form). */
async function chooseToken(browser: Browser): Promise<string> {
  const html = await (await browser.get("/ui/choose-organisation")).text();
  return /action="\/ui\/choose-organisation"><input type="hidden" name="csrf" value="([^"]+)"/.exec(html)![1];
}

/** A 403 page (HTML, not JSON, no session set) that says `reason`. */
async function expectRefusedPage(res: Response, reason: RegExp) {
  expect(res.status).toBe(403);
  expect(res.headers.get("content-type")).toContain("text/html");
  expect(res.headers.getSetCookie().some((c) => c.startsWith("flaghook_session=v"))).toBe(false);
  expect(await res.text()).toMatch(reason);
}

describe("Access sign-in", () => {
  it("signs a person in from the Cf-Access-Jwt-Assertion header straight into their one organisation", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const org = await organisationFor("Acme Access", { access_emails: [ada.toUpperCase()] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key) } });
    const page = await browser.get("/ui/audit");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Acme Access");
    expect(html).toContain(ada);
    const [row] = (await env.DB.prepare("select org_id, key_id, email from ui_sessions where org_id = ?").bind(org.orgId).all()).results;
    expect(row).toEqual({ org_id: org.orgId, key_id: null, email: ada });
    // The keys were fetched once, then cached.
    for (let i = 0; i < 3; i++) expect((await browser.get("/ui/webhooks")).status).toBe(200);
    expect(await team.fetches()).toBe(1);
  });

  it("lets in every address of an allowed domain", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    await organisationFor("Domain Co", { access_domains: ["domain-co.test"] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key, { email: "grace@domain-co.test" }) } });
    const page = await browser.get("/ui/webhooks");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Domain Co");
  });

  it("refuses, with a plain 403 page and no session, every token that does not check out", async () => {
    const key = await teamKey("k1");
    const stranger = await teamKey("k1"); // same kid, another key: a forged signature
    const team = await accessTeam([key]);
    const orgId = (await organisationFor("Strict Co", { access_emails: [ada] })).orgId;
    const at = Math.floor(now() / 1000);
    const valid = await accessToken(key);
    const [h, p, sig] = valid.split(".");
    const otherPayload = btoa(JSON.stringify({ ...JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/"))), email: "mallory@acme.test" }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    const flipped = sig.slice(0, 10) + (sig[10] === "A" ? "B" : "A") + sig.slice(11);
    const cases: [string, string | undefined, RegExp][] = [
      ["no header", undefined, /did not come through it/],
      ["not a JWT", "not-a-token", /not a valid RS256 token/],
      ["expired", await accessToken(key, { exp: at - 1, iat: at - 3600, nbf: at - 3600 }), /has expired/],
      ["no exp", await accessToken(key, { exp: undefined }), /has no expiry/],
      ["not valid yet", await accessToken(key, { nbf: at + 600 }), /not valid yet/],
      ["wrong audience", await accessToken(key, { aud: ["another-application-aud-tag"] }), /for another application/],
      ["no audience", await accessToken(key, { aud: undefined }), /for another application/],
      ["wrong issuer", await accessToken(key, { iss: "https://evil.cloudflareaccess.com" }), /issued by another team/],
      ["tampered payload", `${h}.${otherPayload}.${sig}`, /signature is not valid/],
      ["tampered signature", `${h}.${p}.${flipped}`, /signature is not valid/],
      ["signed by another key", await accessToken(stranger), /signature is not valid/],
      ["HS256 with the public key as secret", await sign({ email: ada, aud: [AUD], iss: `https://${TEAM}`, exp: at + 60 }, key.publicJwk.n!, "HS256"), /not a valid RS256 token/],
      ["a service token (no email)", await accessToken(key, { email: undefined, common_name: "ci.access" }), /names no person/],
    ];
    for (const [what, token, reason] of cases) {
      for (const path of ["/ui/audit", "/ui/sign-in", "/ui/choose-organisation"]) {
        const res = await fetchPage(path, { headers: token ? { [HEADER]: token } : {} }, team.env);
        await expectRefusedPage(res, reason).catch((err) => {
          throw new Error(`${what} at ${path}: ${String(err)}`);
        });
      }
    }
    expect(await countRows("ui_sessions", "org_id = ?", orgId)).toBe(0);
  });

  it("never falls back to API-key sign-in or an existing session cookie while Access is configured", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const org = await organisationFor("No Fallback", { access_emails: [ada] });
    // A session cookie made with an API key (Access off), then Access is configured.
    const plain = new Browser();
    const token = /name="csrf" value="([^"]+)"/.exec(await (await plain.get("/ui/sign-in")).text())![1];
    expect((await plain.post("/ui/sign-in", { csrf: token, key: org.key, next: "/ui/webhooks" })).status).toBe(303);
    const cookie = plain.cookieHeader;
    await expectRefusedPage(await fetchPage("/ui/webhooks", { headers: { cookie } }, team.env), /did not come through it/);
    const signIn = await fetchPage(
      "/ui/sign-in",
      {
        method: "POST",
        body: new URLSearchParams({ csrf: token, key: org.key }),
        headers: { cookie, origin: "http://flaghook.test", "content-type": "application/x-www-form-urlencoded", [HEADER]: await accessToken(key) },
      },
      team.env,
    );
    expect(signIn.status).toBe(403);
    expect(await signIn.text()).toContain("API keys cannot sign in here");
    // With a valid token the API-key session is not used either: the person gets their own session.
    const res = await fetchPage("/ui/webhooks", { headers: { cookie, [HEADER]: await accessToken(key) } }, team.env);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("flaghook_session=v2"))).toBe(true);
    expect(await res.text()).toContain(ada);
  });

  it("fetches the keys again for an unknown kid (at most every 30 s), so rotated keys work", async () => {
    const old = await teamKey("2024-old");
    const rotated = await teamKey("2025-new");
    const team = await accessTeam([old]);
    await organisationFor("Rotating Co", { access_emails: [ada] });
    expect((await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(old) } }, team.env)).status).toBe(200);
    expect(await team.fetches()).toBe(1);

    // A token from a key the team does not publish: refused, after one refetch.
    advanceClock(31_000);
    const early = await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(rotated) } }, team.env);
    await expectRefusedPage(early, /a key this team does not publish/);
    expect(await team.fetches()).toBe(2);
    // Made-up kids within 30 s do not make the Worker fetch again.
    for (let i = 0; i < 5; i++) {
      await expectRefusedPage(await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(await teamKey(`junk-${i}`)) } }, team.env), /does not publish/);
    }
    expect(await team.fetches()).toBe(2);

    // The team rotates: the new key is published beside the old one.
    await team.publish([rotated, old]);
    advanceClock(31_000);
    expect((await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(rotated) } }, team.env)).status).toBe(200);
    expect((await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(old) } }, team.env)).status).toBe(200);
    expect(await team.fetches()).toBe(3);

    // The old key is withdrawn: after the hour the keys are kept, its tokens are refused.
    await team.publish([rotated]);
    advanceClock(3_600_000);
    expect((await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(rotated) } }, team.env)).status).toBe(200);
    await expectRefusedPage(await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(old) } }, team.env), /does not publish/);
  });

  it("refuses every token while the team's keys cannot be fetched, and asks again after 30 s", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    await scriptMailbox(team.name, { default: { status: 503, body: "down" } });
    await organisationFor("Unreachable Co", { access_emails: [ada] });
    await expectRefusedPage(await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(key) } }, team.env), /could not be fetched/);
    // A down endpoint is not asked again at every request, only after 30 s; then it works again.
    await expectRefusedPage(await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(key) } }, team.env), /could not be fetched/);
    expect(await team.fetches()).toBe(1);
    await team.publish([key]);
    advanceClock(31_000);
    expect((await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(key) } }, team.env)).status).toBe(200);
    expect(await team.fetches()).toBe(2);
  });
});

describe("Access: which organisation a person sees", () => {
  it("answers a person allowed into no organisation with a 403 page that says so", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    await organisationFor("Elsewhere", { access_emails: ["someone-else@acme.test"] });
    const res = await fetchPage("/ui/audit", { headers: { [HEADER]: await accessToken(key, { email: "nobody@nowhere.test" }) } }, team.env);
    await expectRefusedPage(res, /signed in as nobody@nowhere\.test, but no organisation lets this address in/);
  });

  it("lets a person allowed into several organisations pick one, and switch", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const email = `multi-${Date.now()}@acme.test`;
    const first = await organisationFor("Multi A", { access_emails: [email] });
    const second = await organisationFor("Multi B", { access_emails: [email] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key, { email }) } });
    const page = await browser.get("/ui/webhooks");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/ui/choose-organisation?next=%2Fui%2Fwebhooks");
    const choose = await browser.get("/ui/choose-organisation?next=%2Fui%2Fwebhooks");
    const html = await choose.text();
    expect(html).toContain("Multi A");
    expect(html).toContain("Multi B");
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1];
    const chosen = await browser.post("/ui/choose-organisation", { csrf, org: String(second.orgId), next: "/ui/webhooks" });
    expect(chosen.status).toBe(303);
    expect(chosen.headers.get("location")).toBe("/ui/webhooks");
    expect(await (await browser.get("/ui/webhooks")).text()).toContain(`Multi B <span class="muted">(organisation ${second.orgId}, ${email})`);

    // Switching: the old session ends, the new one is in the other organisation.
    const before = browser.cookies.get("flaghook_session")!;
    const again = await browser.post("/ui/choose-organisation", { csrf: await chooseToken(browser), org: String(first.orgId) });
    expect(again.status).toBe(303);
    expect(await (await browser.get("/ui/audit")).text()).toContain(`(organisation ${first.orgId}, ${email})`);
    expect(await countRows("ui_sessions", "email = ?", email)).toBe(1);
    expect(browser.cookies.get("flaghook_session")).not.toBe(before);
  });

  it("keeps a person to their own organisations: another's pages answer 404, and it cannot be chosen", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const victim = await organisationFor("Victim Co", { access_emails: ["victim@victim.test"] });
    const hook = (await (
      await call(`/api/v1/organisations/${victim.orgId}/webhooks`, { method: "POST", headers: victim.auth, json: { url: `${receiverUrl()}/hooks/victim-access` } })
    ).json()) as { id: string };
    await organisationFor("Intruder Co", { access_emails: [ada] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key) } });
    expect(await (await browser.get("/ui/webhooks")).text()).not.toContain(hook.id);
    for (const path of [`/ui/webhooks/${hook.id}/edit`, `/ui/webhooks/${hook.id}/deliveries`]) expect((await browser.get(path)).status, path).toBe(404);
    const res = await browser.post("/ui/choose-organisation", { csrf: await chooseToken(browser), org: String(victim.orgId) });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("may not enter that organisation");
    expect((await browser.post(`/ui/webhooks/${hook.id}/disable`, { csrf: await browser.token() })).status).toBe(404);
    const [row] = (await env.DB.prepare("select enabled from webhooks where id = ?").bind(hook.id).all()).results;
    expect(row).toEqual({ enabled: 1 });
  });

  it("does not let a person use another person's session cookie", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const adaOrg = await organisationFor("Ada Co", { access_emails: [ada] });
    await organisationFor("Bob Co", { access_emails: ["bob@bob.test"] });
    const adaBrowser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key) } });
    expect((await adaBrowser.get("/ui/audit")).status).toBe(200);
    // Bob, signed in to Access as himself, presents Ada's cookie: he gets his own organisation, not hers.
    const res = await fetchPage("/ui/audit", { headers: { cookie: adaBrowser.cookieHeader, [HEADER]: await accessToken(key, { email: "bob@bob.test" }) } }, team.env);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Bob Co");
    expect(html).not.toContain("Ada Co");
    expect(await countRows("ui_sessions", "org_id = ?", adaOrg.orgId)).toBe(0);
  });

  it("ends a person's session at their next request once the operator removes their access", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const org = await organisationFor("Leaving Co", { access_emails: ["leaver@acme.test", "stays@acme.test"] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key, { email: "leaver@acme.test" }) } });
    const token = await browser.token();
    const removed = await call(`/api/v1/organisations/${org.orgId}`, { method: "PATCH", headers: ADMIN, json: { access_emails: ["stays@acme.test"] } });
    expect(removed.status).toBe(200);
    await expectRefusedPage(await browser.get("/ui/webhooks"), /no organisation lets this address in/);
    const post = await browser.post("/ui/webhooks/new", { csrf: token, scope: "organisation", url: `${receiverUrl()}/hooks/leaver` });
    expect(post.status).toBe(403);
    expect(await countRows("webhooks", "org_id = ?", org.orgId)).toBe(0);
  });

  it("signs out on the server: the cookie is dead without Access's token, and the page offers Access's sign-out", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const org = await organisationFor("Sign-out Co", { access_emails: [ada] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key) } });
    const csrf = await browser.token();
    const copied = browser.cookieHeader;
    const out = await browser.post("/ui/sign-out", { csrf });
    expect(out.status).toBe(200);
    expect(await out.text()).toContain('href="/cdn-cgi/access/logout"');
    expect(await countRows("ui_sessions", "org_id = ?", org.orgId)).toBe(0);
    const replay = await fetchPage(
      "/ui/webhooks/new",
      {
        method: "POST",
        body: new URLSearchParams({ csrf, scope: "organisation", url: `${receiverUrl()}/hooks/copied` }),
        headers: { cookie: copied, origin: "http://flaghook.test", "content-type": "application/x-www-form-urlencoded", [HEADER]: await accessToken(key) },
      },
      team.env,
    );
    expect(replay.status).toBe(401);
    expect(await countRows("webhooks", "org_id = ?", org.orgId)).toBe(0);
  });
});

describe("Access: admin-page changes are audited with the person as author", () => {
  it("names the person (email) as the author of every webhook change made in the pages, not the system", async () => {
    const key = await teamKey("k1");
    const team = await accessTeam([key]);
    const org = await organisationFor("Audited Co", { access_emails: [ada] });
    const browser = new Browser({ env: team.env, headers: { [HEADER]: await accessToken(key) } });
    const csrf = await browser.token();
    const created = await browser.post("/ui/webhooks/new", {
      csrf,
      scope: "organisation",
      url: `${receiverUrl()}/hooks/audited-${Date.now()}`,
      name: "Audited",
      event_types: "AUDIT_LOG_CREATED",
      enabled: "true",
    });
    expect(created.status).toBe(201);
    const id = /\/ui\/webhooks\/(whk_[0-9a-z]+)\/deliveries/.exec(await created.text())![1];
    expect((await browser.post(`/ui/webhooks/${id}/disable`, { csrf })).status).toBe(303);
    expect((await browser.post(`/ui/webhooks/${id}/enable`, { csrf })).status).toBe(303);
    expect((await browser.post(`/ui/webhooks/${id}/rotate-secret`, { csrf })).status).toBe(200);
    expect((await browser.post(`/ui/webhooks/${id}/delete`, { csrf })).status).toBe(303);
    // The same change through the API (an API key, no person) stays a system event.
    await call(`/api/v1/organisations/${org.orgId}/webhooks`, { method: "POST", headers: org.auth, json: { url: `${receiverUrl()}/hooks/api-made`, name: "API made" } });

    const entries = await eventually(async () => {
      const body = (await (await call("/api/v1/audit/?related_object_type=WEBHOOK&page_size=50", { headers: org.auth })).json()) as {
        results: { log: string; author: unknown; is_system_event: boolean }[];
      };
      return body.results.length === 6 && body.results;
    });
    const byLog = (start: string) => entries.find((e) => e.log.startsWith(start))!;
    const person = { id: null, email: ada, first_name: "", last_name: "" };
    for (const log of ["Webhook created: Audited", "Webhook updated (disabled)", "Webhook updated (enabled)", "Webhook secret rotated", "Webhook deleted"]) {
      expect(byLog(log), log).toMatchObject({ author: person, is_system_event: false });
    }
    expect(byLog("Webhook created: API made")).toMatchObject({ author: null, is_system_event: true });
    const byAuthor = (await (await call(`/api/v1/audit/?author=${encodeURIComponent(ada)}`, { headers: org.auth })).json()) as { results: unknown[] };
    expect(byAuthor.results).toHaveLength(5);
  });
});
