/// <reference types="node" />
// The admin pages in real headless Chromium against the Worker under `wrangler dev`: sign in, filter
// the audit log to one entry and open it, create a webhook to a local receiver, send a test, see the
// delivery and its attempts, redeliver, rotate the secret, sign out and be refused.
// Screenshots of every page go to test-output/browser/ (git ignores test-output/).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "./chromium";
import { apiOf, until } from "./support";

const base = inject("baseUrl");
const api = apiOf(base);
const receiver = inject("receiverUrl");
const admin = { Authorization: `Bearer ${inject("adminToken")}` };
const SHOTS = join(process.cwd(), "test-output", "browser");
const MAILBOX = "browser-org";

let browser: Browser;
let context: BrowserContext;
let page: Page;
let apiKey: string;
let targetEntry: number;
const cspViolations: string[] = [];

async function shot(name: string, viewport?: { width: number; height: number }, fullPage = true) {
  if (viewport) await page.setViewportSize(viewport);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
  if (viewport) await page.setViewportSize({ width: 1280, height: 800 });
}

async function ingest(event: Record<string, unknown>): Promise<number> {
  const auth = { Authorization: `Api-Key ${apiKey}` };
  const { event_id } = await api<{ event_id: string }>("/api/v1/events", { method: "POST", headers: auth, json: event });
  // The ingest queue consumer records it a moment later (slower when the machine is busy).
  const done = await until(async () => {
    const status = await api<{ status: string; audit_entry_id: number }>(`/api/v1/events/${event_id}`, { headers: auth });
    return status.status === "recorded" && status;
  }, `event ${event_id} to be recorded`);
  return done.audit_entry_id;
}

const flagChange = (over: Record<string, unknown> = {}) => ({
  type: "FLAG_STATE_UPDATED",
  occurred_at: "2024-03-05T10:00:00.000000Z",
  author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Website" },
  environment: { id: 23, name: "Development" },
  feature: { id: 7168, name: "butter_bar", type: "CONFIG" },
  previous_state: { enabled: false, feature_state_value: "Welcome!" },
  new_state: { enabled: true, feature_state_value: "Welcome back!" },
  ...over,
});

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const org = await api<{ id: number }>("/api/v1/organisations", { method: "POST", headers: admin, json: { name: "Browser Co" } });
  apiKey = (await api<{ key: string }>(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: admin, json: { name: "laptop" } })).key;
  [targetEntry] = await Promise.all([
    ingest(flagChange()),
    ingest(flagChange({ author: { id: 4, email: "ana@example.com", first_name: "Ana", last_name: "Lee" } })),
    ingest(flagChange({ environment: { id: 24, name: "Production" } })),
    ingest(flagChange({ occurred_at: "2024-03-06T10:00:00Z", feature: { id: 7169, name: "dark_mode", type: "STANDARD" } })),
    ingest({ ...flagChange({ type: "FEATURE_CREATED", occurred_at: "2024-03-05T09:30:00Z" }), previous_state: null, new_state: null }),
    ingest({ ...flagChange({ type: "SEGMENT_CREATED", segment: { id: 9, name: "beta testers" } }), feature: undefined, previous_state: null, new_state: null }),
  ]);

  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

describe("admin pages in Chromium", () => {
  it("sends a visitor to sign in, and signs in with an organisation API key", async () => {
    await page.goto(`${base}/ui/audit`);
    expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
    await shot("01-sign-in");
    await page.fill("#key", "fh_0000000000_" + "x".repeat(43));
    await page.click("button[type=submit]");
    await expect(page.locator(".notice.bad").textContent()).resolves.toContain("not valid");
    await page.fill("#key", apiKey);
    await page.click("button[type=submit]");
    await page.waitForURL(`${base}/ui/audit`);
    expect(new URL(page.url()).pathname).toBe("/ui/audit");
    const [cookie] = (await context.cookies()).filter((c) => c.name === "flaghook_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/ui" });
    await expect(page.locator("header .who").textContent()).resolves.toContain("Browser Co");
    await shot("02-audit-log");
    await shot("02-audit-log-phone", { width: 390, height: 844 });
  });

  it("filters the audit log down to one entry with every filter, keeps them in the URL, and opens it", async () => {
    await page.fill("#f-search", "butter");
    await page.selectOption("#f-project", "12");
    // One click ticks an environment (a checkbox, not a multiple select that needs Ctrl-click to add).
    await page.getByLabel("Development (23)").check();
    await page.fill("#f-type", "FEATURE_STATE");
    await page.fill("#f-author", "kyle@example.com");
    await page.selectOption("#f-system", "false");
    await page.fill("#f-since", "2024-03-05T09:45");
    await page.fill("#f-until", "2024-03-05T10:15");
    await page.click("text=Apply filters");
    await page.waitForURL(/since=/);
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({
      search: "butter",
      project: "12",
      environment: "23",
      related_object_type: "FEATURE_STATE",
      author: "kyle@example.com",
      is_system_event: "false",
      since: "2024-03-05T09:45",
      until: "2024-03-05T10:15",
      page_size: "50",
    });
    const rows = page.locator("tr[data-entry]");
    await expect(rows.count()).resolves.toBe(1);
    await expect(rows.first().getAttribute("data-entry")).resolves.toBe(String(targetEntry));
    await shot("03-audit-filtered");

    await page.reload();
    await expect(page.locator("#f-author").inputValue()).resolves.toBe("kyle@example.com");
    await expect(page.locator("tr[data-entry]").count()).resolves.toBe(1);

    await rows.first().locator("a").click();
    await page.waitForURL(/\/ui\/audit\/\d+\?/);
    expect(new URL(page.url()).pathname).toBe(`/ui/audit/${targetEntry}`);
    const diff = await page.locator("table.diff tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(diff).toEqual([
      ["enabled", "false", "→", "true"],
      ["feature_state_value", '"Welcome!"', "→", '"Welcome back!"'],
    ]);
    await shot("04-audit-entry");
    await shot("04-audit-entry-phone", { width: 390, height: 844 });
    await page.click("text=← Back to the audit log");
    await page.waitForURL(/\/ui\/audit\?/);
    expect(new URL(page.url()).searchParams.get("author")).toBe("kyle@example.com");
  });

  let hookId: string;
  let secret: string;
  let deliveryId: string;

  it("creates a webhook pointing at the local receiver and shows its secret once", async () => {
    await page.click("header nav >> text=Webhooks");
    await page.waitForURL(`${base}/ui/webhooks`);
    await shot("05-webhooks-empty");
    await page.click("text=Add organisation webhook");
    await page.waitForURL(/\/ui\/webhooks\/new\?scope=organisation$/);
    await page.fill("#w-url", `${receiver}/hooks/${MAILBOX}`);
    await page.fill("#w-name", "Audit to the receiver");
    await shot("05-webhook-form");
    await page.click("text=Create webhook");
    secret = (await page.locator("#secret").textContent())!;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await shot("06-webhook-created");
    await page.click("text=Back to webhooks");
    await page.waitForURL(/\/ui\/webhooks#whk_/);
    const card = page.locator("article[data-webhook]");
    await expect(card.count()).resolves.toBe(1);
    hookId = (await card.getAttribute("data-webhook"))!;
    await expect(page.content()).resolves.not.toContain(secret);
    await shot("07-webhooks");
    await shot("07-webhooks-phone", { width: 390, height: 844 });
  });

  it("sends a test and shows the receiver's answer", async () => {
    await fetch(`${receiver}/_control/${MAILBOX}`, { method: "PUT", body: JSON.stringify({ default: { status: 200, body: "thanks, flaghook" } }) });
    await page.locator(`article[data-webhook="${hookId}"]`).locator("text=Send test").click();
    await expect(page.locator("[data-test-result]").getAttribute("data-test-result")).resolves.toBe("ok");
    await expect(page.locator("#status-code").textContent()).resolves.toBe("200");
    await expect(page.locator("#response-body").textContent()).resolves.toBe("thanks, flaghook");
    deliveryId = (await page.locator("a[href^='/ui/deliveries/dlv_']").textContent())!;
    await shot("08-test-sent");

    const box = (await (await fetch(`${receiver}/_control/${MAILBOX}`)).json()) as { requests: { headers: Record<string, string>; body: string }[] };
    const request = box.requests.find((r) => r.headers["webhook-id"] === deliveryId)!;
    expect(new StandardWebhook(secret.slice("whsec_".length)).verify(request.body, request.headers)).toMatchObject({ event_type: "AUDIT_LOG_CREATED" });
  });

  it("shows the delivery with its attempts, and redelivers it", async () => {
    await page.click("text=See deliveries");
    await page.waitForURL(/\/deliveries$/);
    const card = page.locator(`article[data-delivery="${deliveryId}"]`);
    await expect(card.getAttribute("data-status")).resolves.toBe("delivered");
    const attempt = card.locator("tr[data-attempt='1'] td");
    const cells = await attempt.allTextContents();
    expect(cells[2]).toBe("200");
    expect(cells[3]).toMatch(/^\d+ ms$/);
    expect(cells[4]).toBe("thanks, flaghook"); // no error column: no attempt failed
    await shot("09-deliveries");
    await shot("09-deliveries-phone", { width: 390, height: 844 });

    await page.selectOption("#d-status", "failed");
    await page.click("text=Filter");
    await page.waitForURL(/\?status=failed$/);
    expect(new URL(page.url()).searchParams.get("status")).toBe("failed");
    await expect(page.locator(`article[data-delivery="${deliveryId}"]`).count()).resolves.toBe(0);
    await page.selectOption("#d-status", "");
    await page.click("text=Filter");
    await page.waitForURL(/\?status=$/);

    await page.locator(`article[data-delivery="${deliveryId}"]`).locator("button:text('Redeliver')").click();
    await page.waitForURL(/done=redelivered$/);
    await expect(page.locator(".notice.ok").textContent()).resolves.toContain("Delivery queued again");
    await until(async () => {
      await page.reload();
      return (await page.locator(`article[data-delivery="${deliveryId}"] tr[data-attempt='2']`).count()) === 1;
    }, "the redelivery's attempt to show");
    await expect(page.locator(`article[data-delivery="${deliveryId}"]`).getAttribute("data-status")).resolves.toBe("delivered");
    const box = (await (await fetch(`${receiver}/_control/${MAILBOX}`)).json()) as { requests: { headers: Record<string, string>; body: string }[] };
    const sent = box.requests.filter((r) => r.headers["webhook-id"] === deliveryId);
    expect(sent).toHaveLength(2);
    expect(sent[1].body).toBe(sent[0].body);
    await shot("10-redelivered");

    await page.click(`a[href='/ui/deliveries/${deliveryId}']`);
    await page.waitForURL(/\/ui\/deliveries\/dlv_/);
    await expect(page.locator("tr[data-attempt]").count()).resolves.toBe(2);
    await shot("11-delivery");
  });

  it("rotates the secret and shows the new one once", async () => {
    await page.goto(`${base}/ui/webhooks`);
    await page.locator(`article[data-webhook="${hookId}"]`).locator("text=Rotate secret").click();
    const rotated = (await page.locator("#secret").textContent())!;
    expect(rotated).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(rotated).not.toBe(secret);
    await expect(page.locator("text=The previous secret also signs").count()).resolves.toBe(1);
    await shot("12-secret-rotated");
    // Staged: X-Flagsmith-Signature keeps the previous secret until the owner confirms the switch.
    await page.click("text=Back to webhooks");
    await page.waitForURL(/\/ui\/webhooks(#.*)?$/);
    await expect(page.locator(`article[data-webhook="${hookId}"] [data-rotation="previous"]`).count()).resolves.toBe(1);
    await shot("12-rotation-staged");
    await page.locator(`article[data-webhook="${hookId}"]`).locator("button:text('Confirm switch to the new secret')").click();
    await page.waitForURL(/done=switched/);
    await expect(page.locator(".notice.ok").textContent()).resolves.toContain("Secret switched");
    await expect(page.locator(`article[data-webhook="${hookId}"] [data-rotation]`).count()).resolves.toBe(0);
  });

  it("creates a Flagsmith inbound source and shows when Flagsmith's Test webhook reached it", async () => {
    await page.click("header nav >> text=Flagsmith");
    await page.waitForURL(`${base}/ui/flagsmith`);
    await page.fill("#s-name", "Flagsmith EU");
    await page.fill("#s-secret", "short");
    await page.click("text=Create source");
    const url = (await page.locator("#url").textContent())!;
    expect(url).toMatch(/\/api\/v1\/inbound\/flagsmith\/fhi_[0-9a-z]{52}$/);
    await expect(page.locator("#secret").textContent()).resolves.toBe("short");
    await shot("12-flagsmith-source-created");
    // Flagsmith's "Test webhook" (api/webhooks/webhooks.py, generate_organisation_sample_webhook_data), signed with the secret.
    const body =
      '{"data": {"author": {"email": "user@domain.com", "first_name": "Jane", "id": 1, "last_name": "Doe"}, "created_date": "2020-02-23T17:30:57.006318Z", "environment": null, "log": "New Flag / Remote Config created: my_feature", "project": {"id": 1, "name": "Test Project", "organisation": 1}, "related_object_id": 1, "related_object_type": "FEATURE"}, "event_type": "AUDIT_LOG_CREATED"}';
    const { createHmac } = await import("node:crypto");
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "X-Flagsmith-Signature": createHmac("sha256", "short").update(body).digest("hex") }, body });
    expect(res.status).toBe(200);
    await page.click("text=Back to sources");
    await expect(page.locator("[data-last-test] time").count()).resolves.toBe(1);
    await shot("12-flagsmith-sources");
    await shot("12-flagsmith-sources-phone", { width: 390, height: 844 });
  });

  it("shows the API docs from /openapi.json", async () => {
    await page.click("header nav >> text=API docs");
    await page.waitForURL(`${base}/docs`);
    expect(new URL(page.url()).pathname).toBe("/docs");
    await expect(page.locator("#tag-Audit-log h2").textContent()).resolves.toBe("Audit log");
    await shot("13-api-docs", undefined, false);
    await page.goto(`${base}/docs#tag-Audit-log`);
    await shot("13-api-docs-audit", undefined, false);
    await shot("13-api-docs-phone", { width: 390, height: 844 }, false);
  });

  it("shows errors as pages: another organisation's webhook is not found", async () => {
    const res = await page.goto(`${base}/ui/webhooks/whk_0000000000000000000000000/deliveries`);
    expect(res!.status()).toBe(404);
    await expect(page.locator("h1").textContent()).resolves.toBe("Not found");
    await shot("13-not-found");
  });

  it("signs out, and then the pages refuse the browser", async () => {
    await page.goto(`${base}/ui/webhooks`);
    await page.click("header >> text=Sign out");
    await page.waitForURL(/reason=signed-out$/);
    expect(page.url()).toBe(`${base}/ui/sign-in?reason=signed-out`);
    expect((await context.cookies()).some((c) => c.name === "flaghook_session")).toBe(false);
    await page.goto(`${base}/ui/webhooks/${hookId}/deliveries`);
    expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
    await expect(page.locator("h1").textContent()).resolves.toBe("Sign in");
    await shot("14-signed-out");
  });

  it("broke no Content-Security-Policy rule on any page", () => {
    expect(cspViolations).toEqual([]);
  });
});
