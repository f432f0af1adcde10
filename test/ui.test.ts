// The admin pages in the Workers runtime: sessions, CSRF, tenancy and every page's behaviour.
// Requests go through the Worker's own fetch with a tiny cookie jar, as a browser would send them.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import { createSource, flagsmithBody, postAsFlagsmith } from "./flagsmith";
import { ADMIN, call, countRows, createOrganisation, eventually, mailbox, receiverUrl, recorded, scriptMailbox } from "./helpers";
import { Browser, ORIGIN, fetchPage } from "./ui-client";

let box = 0;

afterEach(() => resetClock());

async function signIn(key: string) {
  const browser = new Browser();
  const page = await browser.get("/ui/sign-in");
  const token = /name="csrf" value="([^"]+)"/.exec(await page.text())![1];
  const res = await browser.post("/ui/sign-in", { csrf: token, key, next: "/ui/webhooks" });
  return { browser, res };
}

async function signedIn(name = "Acme") {
  const org = await createOrganisation(name);
  const { browser, res } = await signIn(org.key);
  expect(res.status).toBe(303);
  return { ...org, browser };
}

async function ingest(auth: Record<string, string>, event: Record<string, unknown>) {
  const res = await call("/api/v1/events", { method: "POST", headers: auth, json: event });
  expect(res.status).toBe(202);
  const { event_id } = (await res.json()) as { event_id: string };
  return recorded(auth, event_id);
}

const flagChange = (over: Record<string, unknown> = {}) => ({
  type: "FLAG_STATE_UPDATED",
  occurred_at: "2024-03-05T10:00:00.000000Z",
  author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Website" },
  environment: { id: 23, name: "Development" },
  feature: { id: 7168, name: "butter_bar", type: "CONFIG" },
  previous_state: { enabled: false, feature_state_value: "old text" },
  new_state: { enabled: true, feature_state_value: "new text" },
  ...over,
});

async function createHookThroughForm(browser: Browser, fields: Record<string, string | string[]> = {}) {
  const mailboxName = `ui-${++box}-${Date.now()}`;
  const token = await browser.token();
  const res = await browser.post("/ui/webhooks/new", {
    csrf: token,
    scope: "organisation",
    url: `${receiverUrl()}/hooks/${mailboxName}`,
    name: "Audit to Slack",
    event_types: "AUDIT_LOG_CREATED",
    enabled: "true",
    ...fields,
  });
  const html = await res.text();
  const id = /data-webhook="(whk_[0-9a-z]+)"|\/ui\/webhooks\/(whk_[0-9a-z]+)\/deliveries/.exec(html);
  return { res, html, mailboxName, token, id: id?.[1] ?? id?.[2] ?? "" };
}

describe("signing in", () => {
  it("sends a browser without a session to the sign-in page, remembering where it was going", async () => {
    const res = await fetchPage("/ui/audit?project=12");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Faudit%3Fproject%3D12");
  });

  it("signs in with an organisation API key into an HttpOnly, SameSite=Strict session cookie", async () => {
    const org = await createOrganisation("Cookie Corp");
    const { browser, res } = await signIn(org.key);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/webhooks");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("flaghook_session="))!;
    expect(cookie).toMatch(/; Max-Age=43200; Path=\/ui; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(org.key);
    const page = await browser.get("/ui/webhooks");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(page.headers.get("cache-control")).toBe("no-store");
    expect(await page.text()).toContain("Cookie Corp");
  });

  it("answers a wrong key with the sign-in page and a 401, setting no session", async () => {
    const { res } = await signIn("fh_0123456789_" + "x".repeat(43));
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("That API key is not valid, or it has been revoked.");
    expect(res.headers.getSetCookie().some((c) => c.startsWith("flaghook_session="))).toBe(false);
  });

  it("only goes back to admin pages after signing in (no open redirect)", async () => {
    const org = await createOrganisation();
    const browser = new Browser();
    const token = /name="csrf" value="([^"]+)"/.exec(await (await browser.get("/ui/sign-in")).text())![1];
    const res = await browser.post("/ui/sign-in", { csrf: token, key: org.key, next: "https://evil.example/ui/x" });
    expect(res.headers.get("location")).toBe("/ui/audit");
  });

  it("serves pages under a strict CSP: no script, nothing external, the one stylesheet allowed by its nonce", async () => {
    const { browser } = await signedIn();
    for (const path of ["/ui/audit", "/ui/webhooks", "/ui/sign-in?x=1", "/docs"]) {
      const res = path.startsWith("/ui/sign-in") || path === "/docs" ? await fetchPage(path) : await browser.get(path);
      const csp = res.headers.get("content-security-policy")!;
      const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
      expect(csp).toBe(`default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
      const html = await res.text();
      expect(html).toContain(`<style nonce="${nonce}">`);
      expect(html).not.toMatch(/<script|<link|\ssrc=|style="|https?:\/\/(?!flaghook\.test)[a-z]/i);
    }
  });
});

describe("CSRF", () => {
  it("refuses a form without the session's CSRF token, and changes nothing", async () => {
    const { browser, orgId } = await signedIn();
    const res = await browser.post("/ui/webhooks/new", { scope: "organisation", url: `${receiverUrl()}/hooks/csrf`, event_types: "AUDIT_LOG_CREATED" });
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("This form has expired or did not come from this site.");
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(0);
  });

  it("refuses a wrong token, and the token of another session", async () => {
    const a = await signedIn();
    const b = await signedIn();
    const fields = { scope: "organisation", url: `${receiverUrl()}/hooks/csrf`, event_types: "AUDIT_LOG_CREATED" };
    expect((await a.browser.post("/ui/webhooks/new", { ...fields, csrf: "not-the-token" })).status).toBe(403);
    expect((await a.browser.post("/ui/webhooks/new", { ...fields, csrf: await b.browser.token() })).status).toBe(403);
    expect(await countRows("webhooks", "org_id in (?, ?)", a.orgId, b.orgId)).toBe(0);
  });

  it("refuses a form posted from another origin even with the right token", async () => {
    const { browser, orgId } = await signedIn();
    const token = await browser.token();
    const res = await browser.post(
      "/ui/webhooks/new",
      { csrf: token, scope: "organisation", url: `${receiverUrl()}/hooks/csrf`, event_types: "AUDIT_LOG_CREATED" },
      { origin: "https://evil.example" },
    );
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("<h1>Refused</h1>");
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(0);
  });

  it("refuses a sign-in form without its token", async () => {
    const org = await createOrganisation();
    const res = await new Browser().post("/ui/sign-in", { key: org.key });
    expect(res.status).toBe(403);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("flaghook_session="))).toBe(false);
  });
});

describe("sessions", () => {
  it("refuses a forged cookie: an edited organisation, an unsigned value, a value signed with another key", async () => {
    const a = await signedIn();
    const b = await createOrganisation("Victim");
    const real = decodeURIComponent(a.browser.cookies.get("flaghook_session")!);
    const [value, signature] = [real.slice(0, real.lastIndexOf(".")), real.slice(real.lastIndexOf(".") + 1)];
    expect(value).toMatch(/^v2\.[0-9a-z]{26}$/); // only a session id: the session itself lives in D1
    const edited = value.replace(/^v2\.[0-9a-z]/, (m) => (m.endsWith("a") ? "v2.b" : "v2.a"));
    const otherKey = await crypto.subtle.importKey("raw", new TextEncoder().encode("not the server's key"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const forgedSig = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.sign("HMAC", otherKey, new TextEncoder().encode(edited)))));
    for (const forged of [`${edited}.${signature}`, edited, `${edited}.${forgedSig}`]) {
      const res = await fetchPage("/ui/webhooks", { headers: { cookie: `flaghook_session=${encodeURIComponent(forged)}` } });
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toMatch(/^\/ui\/sign-in\?next=%2Fui%2Fwebhooks(&reason=invalid)?$/);
      const post = await fetchPage("/ui/webhooks/new", {
        method: "POST",
        body: new URLSearchParams({ scope: "organisation", url: `${receiverUrl()}/hooks/forged`, csrf: "x" }),
        headers: { cookie: `flaghook_session=${encodeURIComponent(forged)}`, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
      });
      expect(post.status).toBe(401);
    }
    expect(await countRows("webhooks", "org_id = ?", b.orgId)).toBe(0);
  });

  it("shows a session of another organisation none of this organisation's entries, webhooks or deliveries", async () => {
    const victim = await createOrganisation("Victim");
    const entry = await ingest(victim.auth, flagChange({ feature: { id: 1, name: "victim_secret_flag" } }));
    const hook = (await (
      await call(`/api/v1/organisations/${victim.orgId}/webhooks`, { method: "POST", headers: victim.auth, json: { url: `${receiverUrl()}/hooks/victim` } })
    ).json()) as { id: string };
    const test = (await (await call(`/api/v1/organisations/${victim.orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: victim.auth })).json()) as {
      delivery_id: string;
    };

    const { browser } = await signedIn("Intruder");
    const token = await browser.token();
    expect(await (await browser.get("/ui/audit")).text()).not.toContain("victim_secret_flag");
    expect(await (await browser.get("/ui/webhooks")).text()).not.toContain(hook.id);
    for (const path of [`/ui/audit/${entry.audit_entry_id}`, `/ui/webhooks/${hook.id}/deliveries`, `/ui/webhooks/${hook.id}/edit`, `/ui/deliveries/${test.delivery_id}`]) {
      const res = await browser.get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toContain("text/html");
    }
    for (const path of [`/ui/webhooks/${hook.id}/delete`, `/ui/webhooks/${hook.id}/disable`, `/ui/webhooks/${hook.id}/rotate-secret`, `/ui/deliveries/${test.delivery_id}/redeliver`]) {
      expect((await browser.post(path, { csrf: token })).status, path).toBe(404);
    }
    const [row] = (await env.DB.prepare("select enabled, previous_secret from webhooks where id = ?").bind(hook.id).all()).results;
    expect(row).toEqual({ enabled: 1, previous_secret: null });
    expect(await countRows("attempts", "delivery_id = ?", test.delivery_id)).toBe(1);
  });

  it("expires: after the session's lifetime pages send the browser to sign in and forms are refused", async () => {
    const { browser, orgId } = await signedIn();
    const token = await browser.token();
    advanceClock(12 * 3_600_000 + 1_000);
    const page = await browser.get("/ui/webhooks");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Fwebhooks&reason=expired");
    browser.cookies.clear();
    const { browser: again } = await signedIn();
    const cookieBefore = again.cookies.get("flaghook_session")!;
    advanceClock(12 * 3_600_000 + 1_000);
    const res = await fetchPage("/ui/webhooks/new", {
      method: "POST",
      body: new URLSearchParams({ csrf: token, scope: "organisation", url: `${receiverUrl()}/hooks/x` }),
      headers: { cookie: `flaghook_session=${cookieBefore}`, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("your session expired");
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(0);
  });

  it("ends every session of an API key when the key is revoked", async () => {
    const { browser, orgId, keyId } = await signedIn();
    expect((await call(`/api/v1/organisations/${orgId}/api-keys/${keyId}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    const res = await browser.get("/ui/audit");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Faudit&reason=revoked");
  });

  it("signs out on the server: a copy of the cookie taken before signing out stops working at once", async () => {
    const { browser, orgId } = await signedIn();
    const copied = browser.cookies.get("flaghook_session")!;
    const token = await browser.token();
    expect(await countRows("ui_sessions", "org_id = ?", orgId)).toBe(1);
    expect((await browser.post("/ui/sign-out", { csrf: token })).status).toBe(303);
    expect(await countRows("ui_sessions", "org_id = ?", orgId)).toBe(0);

    const page = await fetchPage("/ui/webhooks", { headers: { cookie: `flaghook_session=${copied}` } });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Fwebhooks&reason=ended");
    const form = await fetchPage("/ui/webhooks/new", {
      method: "POST",
      body: new URLSearchParams({ csrf: token, scope: "organisation", url: `${receiverUrl()}/hooks/after-sign-out` }),
      headers: { cookie: `flaghook_session=${copied}`, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.status).toBe(401);
    expect(await form.text()).toContain("this session was signed out");
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(0);
  });

  it("keeps each session apart: signing out of one leaves the organisation's other sessions signed in", async () => {
    const { browser, key } = await signedIn();
    const { browser: other } = await signIn(key);
    expect((await browser.post("/ui/sign-out", { csrf: await browser.token() })).status).toBe(303);
    expect((await other.get("/ui/webhooks")).status).toBe(200);
  });

  it("prunes expired sessions in the scheduled sweep", async () => {
    const { orgId } = await signedIn();
    expect(await countRows("ui_sessions", "org_id = ?", orgId)).toBe(1);
    advanceClock(12 * 3_600_000 + 1_000);
    await worker.scheduled({ scheduledTime: Date.now(), cron: "* * * * *", noRetry() {} } as ScheduledController, env, createExecutionContext());
    expect(await countRows("ui_sessions", "org_id = ?", orgId)).toBe(0);
  });

  it("signs out: the cookie is cleared and the pages refuse the browser; signing out needs the token", async () => {
    const { browser } = await signedIn();
    const refused = await browser.post("/ui/sign-out", { csrf: "wrong" });
    expect(refused.status).toBe(403);
    expect(browser.cookies.has("flaghook_session")).toBe(true);
    const res = await browser.post("/ui/sign-out", { csrf: await browser.token() });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/sign-in?reason=signed-out");
    expect(res.headers.getSetCookie().find((c) => c.startsWith("flaghook_session="))).toMatch(/^flaghook_session=; Max-Age=0; Path=\/ui/);
    expect(browser.cookies.has("flaghook_session")).toBe(false);
    const after = await browser.get("/ui/webhooks");
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/ui/sign-in?next=%2Fui%2Fwebhooks");
  });
});

describe("audit log page", () => {
  it("filters with every filter of the API, keeps them in the URL, and shows one entry's change as old -> new", async () => {
    const { browser, auth } = await signedIn();
    const target = await ingest(auth, flagChange());
    await ingest(auth, flagChange({ author: { id: 4, email: "ana@example.com", first_name: "Ana", last_name: "Lee" } }));
    await ingest(auth, flagChange({ environment: { id: 24, name: "Production" } }));
    await ingest(auth, flagChange({ occurred_at: "2024-03-07T10:00:00Z" }));
    await ingest(auth, { ...flagChange({ type: "FEATURE_CREATED" }), previous_state: null, new_state: null });

    const blank = await browser.get("/ui/audit?search=&project=12&author=");
    expect(blank.status).toBe(303);
    expect(blank.headers.get("location")).toBe("/ui/audit?project=12");

    const people = await (await browser.get("/ui/audit?is_system_event=false")).text();
    expect(people.match(/data-entry="/g)).toHaveLength(5);

    const query =
      "?search=BUTTER&project=12&environment=23&related_object_type=FEATURE_STATE&author=kyle%40example.com&is_system_event=false&since=2024-03-05T09%3A00&until=2024-03-05T11%3A00";
    const html = await (await browser.get(`/ui/audit${query}`)).text();
    expect([...html.matchAll(/data-entry="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([target.audit_entry_id]);
    expect(html).toContain(`href="/ui/audit/${target.audit_entry_id}${query.replace(/&/g, "&amp;")}"`);
    expect(html).toMatch(/<input type="checkbox" name="environment" value="23" checked=""\/>Development \(23\)<\/label>/);
    expect(html).toMatch(/<input type="checkbox" name="environment" value="24"\/>Production \(24\)<\/label>/);
    expect(html).toContain('value="2024-03-05T09:00:00"');

    const detail = await (await browser.get(`/ui/audit/${target.audit_entry_id}${query}`)).text();
    expect(detail).toContain("Flag state updated for feature: butter_bar");
    expect(detail).toMatch(/<td class="old mono break">false<\/td><td class="arrow">→<\/td><td class="new mono break">true<\/td>/);
    expect(detail).toMatch(/<td class="old mono break">&quot;old text&quot;<\/td><td class="arrow">→<\/td><td class="new mono break">&quot;new text&quot;<\/td>/);
    expect(detail).toContain(`href="/ui/audit${query.replace(/&/g, "&amp;")}"`);
  });

  it("pages newest first with a cursor in the URL", async () => {
    const { browser, auth } = await signedIn();
    for (const day of ["01", "02", "03"]) await ingest(auth, flagChange({ occurred_at: `2024-04-${day}T00:00:00Z`, feature: { id: 1, name: `flag_${day}` } }));
    const first = await (await browser.get("/ui/audit?project=12&page_size=2")).text();
    expect([...first.matchAll(/>Flag state updated for feature: (flag_\d+)</g)].map((m) => m[1])).toEqual(["flag_03", "flag_02"]);
    const next = /rel="next" href="([^"]+)"/.exec(first)![1].replace(/&amp;/g, "&");
    expect(next).toMatch(/^\/ui\/audit\?project=12&page_size=2&cursor=/);
    const second = await (await browser.get(next)).text();
    expect([...second.matchAll(/>Flag state updated for feature: (flag_\d+)</g)].map((m) => m[1])).toEqual(["flag_01"]);
    expect(second).not.toContain('rel="next"');
  });

  it("shows who submitted an entry, when it was received and a claimed time far from it; filters by submitter", async () => {
    const { browser, auth, keyId } = await signedIn();
    const target = await ingest(auth, flagChange({ occurred_at: "2030-01-01T00:00:00Z" }));
    const detail = await (await browser.get(`/ui/audit/${target.audit_entry_id}`)).text();
    expect(detail).toContain(`<dd data-submitter="api_key">API key ci (${keyId})</dd>`);
    expect(detail).toContain("<dt>Received</dt>");
    expect(detail).toContain("claimed time is ahead of receipt");
    const list = await (await browser.get("/ui/audit")).text();
    expect(list).toContain("claimed future");
    // The key's creation is the operator's; the event is the key's.
    const operator = await (await browser.get("/ui/audit?submitter_type=operator")).text();
    expect([...operator.matchAll(/data-entry="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([1]);
    const byKey = await (await browser.get(`/ui/audit?submitter=${keyId}`)).text();
    expect([...byKey.matchAll(/data-entry="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([target.audit_entry_id]);
    expect(byKey).toMatch(/<option value="api_key">API key<\/option>/);
  });

  it("sends an entry's old global id to its page, within the session's organisation only", async () => {
    const { browser, auth, orgId } = await signedIn();
    const other = await signedIn("Other");
    const target = await ingest(auth, flagChange());
    await env.DB.prepare("update audit_entries set legacy_id = 31337 where org_id = ? and seq = ?").bind(orgId, target.audit_entry_id).run();
    const res = await browser.get("/ui/audit/legacy/31337");
    expect([res.status, res.headers.get("location")]).toEqual([303, `/ui/audit/${target.audit_entry_id}`]);
    expect(await (await browser.get(`/ui/audit/${target.audit_entry_id}`)).text()).toContain("(formerly 31337)");
    expect((await other.browser.get("/ui/audit/legacy/31337")).status).toBe(404);
  });

  it("audits webhook changes made on the pages as made by the session's API key", async () => {
    const { browser, auth, keyId } = await signedIn();
    await createHookThroughForm(browser);
    const created = await eventually(async () => {
      const { results } = (await (await call("/api/v1/audit/?related_object_type=WEBHOOK", { headers: auth })).json()) as { results: { submitter: unknown }[] };
      return results[0];
    });
    expect(created.submitter).toEqual({ type: "api_key", id: keyId, name: "ci" });
  });

  it("explains filters it cannot use on the page, with a 400", async () => {
    const { browser } = await signedIn();
    const res = await browser.get("/ui/audit?author=not%20an%20author&since=yesterday");
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain("author: must be an author id or an email address");
    expect(html).toContain("since: must be an ISO-8601 date-time");
  });
});

describe("webhooks and deliveries pages", () => {
  it("creates a webhook from the form and shows its secret once", async () => {
    const { browser, orgId } = await signedIn();
    const { res, html, id } = await createHookThroughForm(browser);
    expect(res.status).toBe(201);
    const secret = /id="secret" class="secret">([^<]+)</.exec(html)?.[1];
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const [row] = (await env.DB.prepare("select name, enabled, event_types from webhooks where id = ? and org_id = ?").bind(id, orgId).all()).results;
    expect(row).toEqual({ name: "Audit to Slack", enabled: 1, event_types: '["AUDIT_LOG_CREATED"]' });
    const list = await (await browser.get("/ui/webhooks")).text();
    expect(list).toContain(id);
    expect(list).not.toContain(secret);
  });

  it("re-renders the form with the reason when the URL is refused", async () => {
    const { browser, orgId } = await signedIn();
    const { res, html } = await createHookThroughForm(browser, { url: "ftp://example.com/hook" });
    expect(res.status).toBe(400);
    expect(html).toContain("webhook url");
    expect(html).toContain('value="ftp://example.com/hook"');
    expect(await countRows("webhooks", "org_id = ?", orgId)).toBe(0);
  });

  it("edits, disables, enables and deletes through the forms", async () => {
    const { browser } = await signedIn();
    const { id, token } = await createHookThroughForm(browser);
    let res = await browser.post(`/ui/webhooks/${id}/edit`, { csrf: token, url: `${receiverUrl()}/hooks/renamed`, name: "Renamed", event_types: ["AUDIT_LOG_CREATED", "FLAG_DELETED"], enabled: "true" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/ui/webhooks?done=updated#${id}`);
    const hook = () => env.DB.prepare("select name, url, enabled, event_types, disabled_reason from webhooks where id = ?").bind(id).first();
    expect(await hook()).toEqual({ name: "Renamed", url: `${receiverUrl()}/hooks/renamed`, enabled: 1, event_types: '["AUDIT_LOG_CREATED","FLAG_DELETED"]', disabled_reason: null });
    res = await browser.post(`/ui/webhooks/${id}/disable`, { csrf: token });
    expect(res.headers.get("location")).toBe(`/ui/webhooks?done=disabled#${id}`);
    expect(await hook()).toMatchObject({ enabled: 0, disabled_reason: "disabled by a user" });
    expect(await (await browser.get("/ui/webhooks?done=disabled")).text()).toContain("Webhook disabled");
    await browser.post(`/ui/webhooks/${id}/enable`, { csrf: token });
    expect(await hook()).toMatchObject({ enabled: 1, disabled_reason: null });
    expect(await (await browser.get(`/ui/webhooks/${id}/delete`)).text()).toContain("Delete “Renamed”?");
    res = await browser.post(`/ui/webhooks/${id}/delete`, { csrf: token });
    expect(res.headers.get("location")).toBe("/ui/webhooks?done=deleted");
    expect(await hook()).toBeNull();
  });

  it("adds an environment webhook by the environment's id", async () => {
    const { browser, orgId } = await signedIn();
    const form = await (await browser.get("/ui/webhooks/new?environment=77")).text();
    expect(form).toContain("New webhook for Environment 77");
    const token = await browser.token();
    const res = await browser.post("/ui/webhooks/new", { csrf: token, environment: "77", url: `${receiverUrl()}/hooks/env77`, event_types: ["FLAG_UPDATED", "FLAG_DELETED"], enabled: "true" });
    expect(res.status).toBe(201);
    expect(await env.DB.prepare("select scope, environment_id, event_types from webhooks where org_id = ?").bind(orgId).first()).toEqual({
      scope: "environment",
      environment_id: 77,
      event_types: '["FLAG_UPDATED","FLAG_DELETED"]',
    });
    expect(await (await browser.get("/ui/webhooks")).text()).toContain('data-environment="77"');
  });

  it("sends a test and shows the receiver's answer, then the delivery with its attempt, redelivers and rotates", async () => {
    const { browser } = await signedIn();
    const { id, mailboxName, token } = await createHookThroughForm(browser);
    await scriptMailbox(mailboxName, { default: { status: 202, body: "thanks from the receiver" } });
    const test = await browser.post(`/ui/webhooks/${id}/test`, { csrf: token });
    expect(test.status).toBe(200);
    const result = await test.text();
    expect(result).toContain('data-test-result="ok"');
    expect(result).toContain('<dd id="status-code">202</dd>');
    expect(result).toContain('<pre id="response-body">thanks from the receiver</pre>');
    const deliveryId = /href="\/ui\/deliveries\/(dlv_[0-9a-z]+)"/.exec(result)![1];
    // The organisation webhook also receives the audit entries of its own changes; count this delivery's requests.
    const sent = async () => (await mailbox(mailboxName)).requests.filter((r) => r.headers["webhook-id"] === deliveryId);
    expect(await sent()).toHaveLength(1);

    const list = await (await browser.get(`/ui/webhooks/${id}/deliveries?status=delivered`)).text();
    expect(list).toContain(`data-delivery="${deliveryId}" data-status="delivered"`);
    expect(list).toMatch(/data-attempt="1">.*<span class="badge ok">202<\/span>.*<code>thanks from the receiver<\/code>/s);
    expect(await (await browser.get(`/ui/webhooks/${id}/deliveries?status=failed`)).text()).toContain("No failed deliveries.");

    const again = await browser.post(`/ui/deliveries/${deliveryId}/redeliver`, { csrf: token });
    expect(again.status).toBe(303);
    expect(again.headers.get("location")).toBe(`/ui/webhooks/${id}/deliveries?done=redelivered`);
    await eventually(async () => (await sent()).length === 2);
    const detail = await eventually(async () => {
      const html = await (await browser.get(`/ui/deliveries/${deliveryId}`)).text();
      return html.includes('data-attempt="2"') && html;
    });
    expect(detail).toContain("AUDIT_LOG_CREATED");

    const rotated = await (await browser.post(`/ui/webhooks/${id}/rotate-secret`, { csrf: token })).text();
    expect(rotated).toMatch(/id="secret" class="secret">whsec_[A-Za-z0-9+/]{43}=</);
    expect(rotated).toContain("The previous secret also signs");
  });

  it("says why a redelivery is refused while the webhook is disabled", async () => {
    const { browser } = await signedIn();
    const { id, token } = await createHookThroughForm(browser);
    const result = await (await browser.post(`/ui/webhooks/${id}/test`, { csrf: token })).text();
    const deliveryId = /href="\/ui\/deliveries\/(dlv_[0-9a-z]+)"/.exec(result)![1];
    await browser.post(`/ui/webhooks/${id}/disable`, { csrf: token });
    const res = await browser.post(`/ui/deliveries/${deliveryId}/redeliver`, { csrf: token });
    expect(res.headers.get("location")).toBe(`/ui/webhooks/${id}/deliveries?refused=webhook_disabled`);
    expect(await (await browser.get(res.headers.get("location")!)).text()).toContain("The webhook is disabled");
  });

  it("recovers failed deliveries since a time, never a failed test", async () => {
    const { browser } = await signedIn();
    const { id, token, mailboxName } = await createHookThroughForm(browser);
    await scriptMailbox(mailboxName, { default: { status: 500, body: "down" } });
    const result = await (await browser.post(`/ui/webhooks/${id}/test`, { csrf: token })).text();
    expect(result).toContain('data-test-result="failed"');
    expect(result).toContain('<dd id="status-code">500</dd>');
    const { org_id } = (await env.DB.prepare("select org_id from webhooks where id = ?").bind(id).first<{ org_id: number }>())!;
    await env.DB.prepare(
      "insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, created_at, updated_at) values (?, ?, ?, 'AUDIT_LOG_CREATED', '{}', 'failed', 4, ?, ?)",
    )
      .bind(`dlv_uirecover${Date.now()}`, org_id, id, Date.now(), Date.now())
      .run();
    const res = await browser.post(`/ui/webhooks/${id}/recover`, { csrf: token, since: "2000-01-01T00:00" });
    expect(res.headers.get("location")).toBe(`/ui/webhooks/${id}/deliveries?done=recovered&n=1`);
    const page = await (await browser.get(`/ui/webhooks/${id}/deliveries?status=failed`)).text();
    expect(page).toMatch(/data-status="failed">.*<span class="badge info" data-test="">test<\/span>/s);
  });
});

describe("API docs page", () => {
  it("renders every operation of /openapi.json without external assets", async () => {
    const spec = (await (await call("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    const res = await fetchPage("/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of Object.keys(item)) expect(html, `${method} ${path}`).toContain(`id="${`${method}-${path}`.replace(/[^A-Za-z0-9_-]+/g, "-")}"`);
    }
    expect(html).toContain('id="schema-Webhook"');
  });
});

describe("errors", () => {
  it("answers an unknown admin page with a 404 page, not JSON", async () => {
    const { browser } = await signedIn();
    const res = await browser.get("/ui/nothing-here");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("There is no such page.");
  });
});

// Issue 10: the Flagsmith page (inbound sources, last test received, unsigned marked), Flagsmith's
// event types as the obvious choice, staged rotation with its confirm button, and published versions.
describe("Flagsmith drop-in pages", () => {
  it("lists inbound sources with their last webhook and last Test webhook sample, marks an unsigned one, creates and revokes", async () => {
    const org = await signedIn();
    const source = await createSource(org, { name: "Flagsmith EU" });
    const sample = {
      created_date: "2020-02-23T17:30:57.006318Z",
      log: "New Flag / Remote Config created: my_feature",
      author: { id: 1, email: "user@domain.com", first_name: "Jane", last_name: "Doe" },
      environment: null,
      project: { id: 1, name: "Test Project", organisation: 1 },
      related_object_id: 1,
      related_object_type: "FEATURE",
    };
    expect((await postAsFlagsmith(source, await flagsmithBody("AUDIT_LOG_CREATED", sample), source.secret)).status).toBe(200);

    const token = await org.browser.token("/ui/flagsmith");
    const created = await org.browser.post("/ui/flagsmith/new", { csrf: token, name: "No secret", secret: "", unsigned: "true" });
    expect(created.status).toBe(201);
    const shown = await created.text();
    expect(shown).toMatch(/id="url" class="secret">http:\/\/flaghook\.test\/api\/v1\/inbound\/flagsmith\/fhi_[0-9a-z]{52}</);
    expect(shown).not.toContain('id="secret"');
    expect(shown).toContain("leave the secret blank in Flagsmith");

    const page = await (await org.browser.get("/ui/flagsmith")).text();
    const card = (id: string) => page.slice(page.indexOf(`data-source="${id}"`), page.indexOf("</article>", page.indexOf(`data-source="${id}"`)));
    expect(card(source.id)).toContain("Flagsmith EU");
    expect(card(source.id)).toMatch(/data-last-test[^>]*><time datetime="\d{4}-/);
    expect(card(source.id)).toContain('<span class="badge ok">signed</span>');
    const unsignedId = /data-source="(src_[0-9a-z]+)"/g;
    const ids = [...page.matchAll(unsignedId)].map((m) => m[1]).filter((id) => id !== source.id);
    expect(ids).toHaveLength(1);
    expect(card(ids[0])).toContain('data-unsigned="true"');
    expect(card(ids[0])).toContain("anyone who knows its URL can post changes to it");
    expect(card(ids[0])).toContain("none yet");

    expect(await (await org.browser.get(`/ui/flagsmith/${ids[0]}/revoke`)).text()).toContain("Revoke “No secret”?");
    const revoked = await org.browser.post(`/ui/flagsmith/${ids[0]}/revoke`, { csrf: token });
    expect(revoked.headers.get("location")).toBe("/ui/flagsmith?done=revoked");
    expect(await countRows("inbound_sources", "id = ? and revoked_at is not null", ids[0])).toBe(1);
  });

  it("offers what Flagsmith sends as the choice for a new webhook, and stores it when nothing is ticked", async () => {
    const { browser, orgId } = await signedIn();
    const form = await (await browser.get("/ui/webhooks/new?scope=organisation")).text();
    expect(form).toContain("the same as Flagsmith sends an audit log webhook (AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED)");
    for (const t of ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"]) expect(form).toMatch(new RegExp(`value="${t}" checked`));
    expect(form).not.toMatch(/value="NEW_VERSION_PUBLISHED" checked/);
    const token = await browser.token();
    const res = await browser.post("/ui/webhooks/new", { csrf: token, scope: "organisation", url: `${receiverUrl()}/hooks/ui-defaults`, changed_by: "email", enabled: "true" });
    expect(res.status).toBe(201);
    expect(await env.DB.prepare("select event_types, changed_by from webhooks where org_id = ?").bind(orgId).first()).toEqual({
      event_types: '["AUDIT_LOG_CREATED","FLAG_UPDATED","FLAG_DELETED"]',
      changed_by: "email",
    });
    expect(await (await browser.get("/ui/webhooks")).text()).toContain("(same as Flagsmith)");
  });

  it("rotates a secret staged, says so on the webhook until the owner confirms the switch", async () => {
    const { browser } = await signedIn();
    const { id, token } = await createHookThroughForm(browser);
    const rotated = await (await browser.post(`/ui/webhooks/${id}/rotate-secret`, { csrf: token })).text();
    expect(rotated).toContain('id="confirm-switch"');
    expect(rotated).toContain(`action="/ui/webhooks/${id}/rotate-secret/confirm"`);
    expect(await (await browser.get("/ui/webhooks")).text()).toContain('data-rotation="previous"');
    const confirmed = await browser.post(`/ui/webhooks/${id}/rotate-secret/confirm`, { csrf: token });
    expect(confirmed.headers.get("location")).toBe(`/ui/webhooks?done=switched#${id}`);
    const after = await (await browser.get("/ui/webhooks?done=switched")).text();
    expect(after).toContain("Secret switched");
    expect(after).not.toContain("data-rotation=");
    expect(await env.DB.prepare("select previous_secret, staged_rotation from webhooks where id = ?").bind(id).first()).toEqual({ previous_secret: null, staged_rotation: 0 });
  });

  it("shows the feature states of a version Flagsmith published on its audit entry", async () => {
    const org = await signedIn();
    const source = await createSource(org);
    const data = {
      uuid: "2b9a0c3e-5f0c-4a69-9a1d-3f6a7f2c8e10",
      feature: { id: 4321, name: "checkout_v2" },
      published_by: { id: 7, email: "ana@example.com" },
      feature_states: [{ enabled: true, value: "blue", multivariate_feature_state_values: [{ id: 91, multivariate_feature_option: { id: 12, value: "green" }, percentage_allocation: 50 }] }],
    };
    const res = await postAsFlagsmith(source, await flagsmithBody("NEW_VERSION_PUBLISHED", data), source.secret, "?environment=41");
    const { audit_entry_id } = await recorded(org.auth, ((await res.json()) as { event_id: string }).event_id);
    const html = await (await org.browser.get(`/ui/audit/${audit_entry_id}`)).text();
    expect(html).toContain("New version published for feature: checkout_v2");
    expect(html).toContain("feature_states");
    expect(html).toContain("green");
    expect(html).toContain("ana@example.com");
  });
});
