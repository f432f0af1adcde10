// What a newcomer meets first: the root URL, errors that say what to do instead, an API reference
// that lists every status a route can answer, and the operator's organisation settings.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { config } from "../src/env";
import seedAuditLog from "./fixtures/seed-audit-log.json";
import seedFlagUpdated from "./fixtures/seed-flag-updated.json";
import { ADMIN, call, countRows, createOrganisation, eventually, expectError } from "./helpers";
import { Browser, fetchPage } from "./ui-client";

async function errorMessage(res: Response): Promise<string> {
  return ((await res.json()) as { error: { message: string } }).error.message;
}

describe("the root URL", () => {
  it("sends a browser to the admin pages", async () => {
    const res = await call("/", { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" }, redirect: "manual" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui");
  });

  it("tells anything else where the admin pages, the docs and the OpenAPI document are", async () => {
    const res = await call("/");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "flaghook", admin_pages: "/ui", api_docs: "/docs", openapi: "/openapi.json", health: "/healthz" });
  });
});

describe("errors that say what to do instead", () => {
  it("refuses an organisation API key on operator routes, saying what the key is for", async () => {
    const org = await createOrganisation("Key Holder");
    for (const authorization of [`Bearer ${org.key}`, `Api-Key ${org.key}`]) {
      const res = await call("/api/v1/organisations", { method: "POST", headers: { authorization }, json: { name: "x" } });
      const copy = res.clone();
      await expectError(res, 401, "unauthorized");
      const message = await errorMessage(copy);
      expect(message).toContain("operator route");
      expect(message).toContain("Authorization: Bearer <ADMIN_TOKEN>");
      expect(message).toContain("Authorization: Api-Key <key>");
    }
    // Any other wrong token gets the plain answer (nothing hints at what a key looks like).
    expect(await errorMessage(await call("/api/v1/organisations", { headers: { authorization: "Bearer nope" } }))).toBe(
      "operator endpoints need Authorization: Bearer <ADMIN_TOKEN>",
    );
  });

  it("refuses the operator token on organisation routes, saying how to make an API key", async () => {
    const res = await call("/api/v1/audit/", { headers: ADMIN });
    const copy = res.clone();
    await expectError(res, 401, "unauthorized");
    const message = await errorMessage(copy);
    expect(message).toContain("POST /api/v1/organisations/{org}/api-keys");
    // The same words for any token that is not shaped like a key: the route is no oracle for ADMIN_TOKEN.
    expect(await errorMessage(await call("/api/v1/audit/", { headers: { Authorization: "Bearer not-the-operator-token" } }))).toBe(message);
    expect(await errorMessage(await call("/api/v1/audit/", { headers: { Authorization: `Api-Key fh_0123456789_${"x".repeat(43)}` } }))).toBe("invalid or revoked API key");
  });

  it("answers a Flagsmith webhook body posted to /api/v1/events by pointing at inbound sources, storing nothing", async () => {
    const org = await createOrganisation("Flagsmith Fan");
    // The seed's two samples: the audit log object bare (as Flagsmith's docs show it) and wrapped, and a FLAG_UPDATED.
    const bodies = [seedAuditLog, { data: seedAuditLog, event_type: "AUDIT_LOG_CREATED" }, seedFlagUpdated];
    for (const body of bodies) {
      for (const path of ["/api/v1/events", "/api/v1/events/"]) {
        const res = await call(path, { method: "POST", headers: org.auth, json: body });
        const copy = res.clone();
        await expectError(res, 400, "flagsmith_webhook_body");
        expect(await errorMessage(copy)).toContain("inbound source");
      }
    }
    // Flagsmith itself pointed at the API sends no Authorization, but signs its body.
    const signed = await call("/api/v1/events", { method: "POST", headers: { "x-flagsmith-signature": "ab".repeat(32) }, json: seedFlagUpdated });
    const copy = signed.clone();
    await expectError(signed, 401, "unauthorized");
    expect(await errorMessage(copy)).toContain("POST /api/v1/organisations/{org}/inbound-sources/");
    // A change event that is merely invalid still gets the field-by-field answer.
    await expectError(await call("/api/v1/events", { method: "POST", headers: org.auth, json: { type: "NOPE" } }), 400, "validation_failed", "type");
    // Only the "API key created" entry was ever recorded (it goes through the ingest queue like everything else).
    await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(1);
  });
});

interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
}

describe("the API reference lists every status a route can answer", () => {
  it("gives every route that takes a body 413 and 415, and every route 500", async () => {
    const doc = (await (await call("/openapi.json")).json()) as OpenApi;
    const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
    expect(ops.length).toBeGreaterThan(20);
    for (const { path, method, op } of ops) {
      const statuses = Object.keys(op.responses);
      expect(statuses, `${method} ${path}`).toContain("500");
      if (["post", "patch", "put"].includes(method) && path.startsWith("/api/")) {
        expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(["413", "415"]));
      }
    }
    const statusesOf = (path: string, method: string) => Object.keys(doc.paths[path][method].responses);
    expect(statusesOf("/api/v1/deliveries/{id}/redeliver", "post")).toContain("409");
    expect(statusesOf("/api/v1/organisations/{org}/webhooks/{id}/recover", "post")).toContain("409");
    expect(statusesOf("/api/v1/inbound/flagsmith/{token}", "post")).toContain("410");
    expect(statusesOf("/api/v1/events", "post")).toContain("503");
    expect(statusesOf("/api/v1/organisations/{org}", "patch")).toContain("503");
  });

  it("answers, on every route that takes a body, only statuses the document lists for it", async () => {
    const doc = (await (await call("/openapi.json")).json()) as OpenApi;
    const org = await createOrganisation("Status Check");
    const ids: Record<string, string> = { org: String(org.orgId), env: "1", id: "whk_0000000000000000000000000", token: "fhi_x", event_id: "evt_x" };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!["post", "patch", "put"].includes(method)) continue;
        const url = path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? "1");
        const listed = Object.keys(op.responses);
        const auth = path.startsWith("/api/v1/organisations") && !/webhooks|inbound-sources/.test(path) ? ADMIN : org.auth;
        for (const [what, init] of [
          ["text/plain", { body: "{}", headers: { ...auth, "content-type": "text/plain" } }],
          ["over 256 KiB", { body: JSON.stringify({ name: "x".repeat(300_000) }), headers: { ...auth, "content-type": "application/json" } }],
        ] as const) {
          const res = await call(url, { method: method.toUpperCase(), ...init });
          expect(listed, `${method.toUpperCase()} ${url} with ${what} answered ${res.status}`).toContain(String(res.status));
        }
      }
    }
  });

  it("shows those statuses on /docs", async () => {
    const html = await (await call("/docs")).text();
    expect(html).toContain("<strong>413</strong>");
    expect(html).toContain("<strong>415</strong>");
    expect(html).toContain("<strong>409</strong>");
  });
});

describe("organisation settings (operator)", () => {
  it("sets who may enter the admin pages through Access, shown in GET and the list, and audits the change", async () => {
    const org = await createOrganisation("Settings Co");
    const base = `/api/v1/organisations/${org.orgId}`;
    const fresh = (await (await call(base, { headers: ADMIN })).json()) as Record<string, unknown>;
    expect(fresh).toEqual({ id: org.orgId, name: "Settings Co", created_at: expect.any(String), access_emails: [], access_domains: [], database: "DB" });

    const patched = await call(base, {
      method: "PATCH",
      headers: ADMIN,
      json: { access_emails: [" Ada@Example.COM ", "bob@example.com", "ada@example.com"], access_domains: ["Example.org"] },
    });
    expect(patched.status).toBe(200);
    const expected = { id: org.orgId, name: "Settings Co", created_at: fresh.created_at, access_emails: ["ada@example.com", "bob@example.com"], access_domains: ["example.org"], database: "DB" };
    expect(await patched.json()).toEqual(expected);
    expect(await (await call(base, { headers: ADMIN })).json()).toEqual(expected);
    const listed = (await (await call("/api/v1/organisations?page_size=200", { headers: ADMIN })).json()) as { results: { id: number }[] };
    expect(listed.results.find((o) => o.id === org.orgId)).toEqual(expected);

    // Renaming leaves the lists; one list given replaces that list only.
    const renamed = await call(base, { method: "PATCH", headers: ADMIN, json: { name: "Settings Ltd", access_emails: ["carol@example.com"] } });
    expect(await renamed.json()).toEqual({ ...expected, name: "Settings Ltd", access_emails: ["carol@example.com"] });

    const logs = await eventually(async () => {
      const body = (await (await call("/api/v1/audit/?related_object_type=ORGANISATION", { headers: org.auth })).json()) as {
        results: { log: string; is_system_event: boolean }[];
      };
      return body.results.length === 2 && body.results.map((r) => r.log);
    });
    expect(logs).toEqual([
      "Organisation updated: renamed from “Settings Co” to “Settings Ltd”; emails +carol@example.com -ada@example.com -bob@example.com",
      "Organisation updated: emails +ada@example.com +bob@example.com; domains +example.org",
    ]);
    // The same lists again change nothing and audit nothing.
    await call(base, { method: "PATCH", headers: ADMIN, json: { access_domains: ["example.org"] } });
    expect(await countRows("audit_entries", "org_id = ? and related_object_type = 'ORGANISATION'", org.orgId)).toBe(2);
  });

  it("takes the lists when the organisation is created", async () => {
    const res = await call("/api/v1/organisations", { method: "POST", headers: ADMIN, json: { name: "Born Co", access_domains: ["born.test"] } });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ name: "Born Co", access_emails: [], access_domains: ["born.test"] });
  });
});

describe("UI_API_KEY_SIGN_IN=false", () => {
  const off = () => ({ ...env, UI_API_KEY_SIGN_IN: "false" }) as typeof env;

  it("switches API-key sign-in off: the page says so, the form is refused, earlier API-key sessions end", async () => {
    const org = await createOrganisation("Keys Off");
    const browser = new Browser();
    const page = await browser.get("/ui/sign-in");
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1];
    expect((await browser.post("/ui/sign-in", { csrf, key: org.key, next: "/ui/webhooks" })).status).toBe(303);
    expect((await browser.get("/ui/webhooks")).status).toBe(200);

    const signInPage = await fetchPage("/ui/sign-in", {}, off());
    expect(signInPage.status).toBe(403);
    expect(await signInPage.text()).toContain("UI_API_KEY_SIGN_IN=false");
    const form = await fetchPage(
      "/ui/sign-in",
      {
        method: "POST",
        body: new URLSearchParams({ csrf, key: org.key }),
        headers: { cookie: browser.cookieHeader, origin: "http://flaghook.test", "content-type": "application/x-www-form-urlencoded" },
      },
      off(),
    );
    expect(form.status).toBe(403);
    expect(form.headers.getSetCookie().some((c) => c.startsWith("flaghook_session=v"))).toBe(false);
    const before = await fetchPage("/ui/webhooks", { headers: { cookie: browser.cookieHeader } }, off());
    expect(before.status).toBe(303);
    expect(before.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Fwebhooks&reason=off");
  });
});

describe("configuration", () => {
  it("refuses ACCESS_TEAM_DOMAIN without ACCESS_AUD (or the reverse) rather than running without Access", () => {
    expect(() => config({ ...env, ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com" })).toThrow("ACCESS_TEAM_DOMAIN and ACCESS_AUD must be set together");
    expect(() => config({ ...env, ACCESS_AUD: "aud" })).toThrow("ACCESS_TEAM_DOMAIN and ACCESS_AUD must be set together");
    expect(() => config({ ...env, ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com/x?y", ACCESS_AUD: "aud" })).toThrow("must be a host name");
    expect(config({ ...env, ACCESS_TEAM_DOMAIN: "https://Acme.cloudflareaccess.com/", ACCESS_AUD: "aud" }).access).toEqual({
      issuer: "https://acme.cloudflareaccess.com",
      audience: "aud",
      jwksUrl: "https://acme.cloudflareaccess.com/cdn-cgi/access/certs",
    });
    expect(config({ ...env, ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com", ACCESS_AUD: "aud", UI_API_KEY_SIGN_IN: "true" }).uiApiKeySignIn).toBe(false);
    expect(config({ ...env }).uiApiKeySignIn).toBe(true);
  });
});
