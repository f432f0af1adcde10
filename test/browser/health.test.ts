/// <reference types="node" />
// Delivery health in real headless Chromium (issue 13): the health badge, the hourly SVG chart under
// the page's unchanged CSP, "Retry now", and the phone layouts (390 px wide) of the attempts table,
// the audit log table and /docs: nothing wider than the screen, every column there to read.
// Screenshots go to test-output/browser/.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "./chromium";
import { apiOf, signedInPage, until } from "./support";

// Run in the page by page.evaluate (this file is typed for Node, without the DOM's library).
declare const document: { documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };
declare function getComputedStyle(element: unknown): { fontSize: string };

const base = inject("baseUrl");
const api = apiOf(base);
const receiver = inject("receiverUrl");
const admin = { Authorization: `Bearer ${inject("adminToken")}` };
const SHOTS = join(process.cwd(), "test-output", "browser");
const PHONE = { width: 390, height: 844 };
const FLAKY = "health-flaky";
const THROTTLED = "health-throttled";

let browser: Browser;
let page: Page;
let auth: Record<string, string>;
let flaky: string;
let throttled: string;
const cspViolations: string[] = [];

const script = (box: string, spec: unknown) => fetch(`${receiver}/_control/${box}`, { method: "PUT", body: JSON.stringify(spec) });

/** Nothing on the page is wider than the window: no sideways scroll. */
const overflow = () => page.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));

async function shot(name: string, fullPage = true) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const org = await api<{ id: number }>("/api/v1/organisations", { method: "POST", headers: admin, json: { name: "Health Co" } });
  const { key } = await api<{ key: string }>(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: admin, json: { name: "phone" } });
  auth = { Authorization: `Api-Key ${key}` };
  // A receiver that fails each delivery's first attempt and takes the retry; one that asks to wait a minute.
  await script(FLAKY, { responses: Array.from({ length: 6 }, () => ({ status: 500, body: '{"error": "database is restarting"}' })), default: { status: 200, body: "ok" } });
  await script(THROTTLED, { responses: [{ status: 429, headers: { "retry-after": "120" }, body: "slow down" }], default: { status: 200, body: "ok" } });
  flaky = (await api<{ id: string }>("/api/v1/environments/31/webhooks", { method: "POST", headers: auth, json: { url: `${receiver}/hooks/${FLAKY}`, name: "Flaky receiver" } })).id;
  throttled = (await api<{ id: string }>("/api/v1/environments/32/webhooks", { method: "POST", headers: auth, json: { url: `${receiver}/hooks/${THROTTLED}`, name: "Throttled receiver" } })).id;
  const change = (environment: number, n: number) => ({
    type: "FLAG_STATE_UPDATED",
    author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" },
    project: { id: 12, name: "Website" },
    environment: { id: environment, name: environment === 31 ? "Development" : "Production" },
    feature: { id: 7000 + n, name: `feature_with_a_rather_long_name_${n}`, type: "CONFIG" },
    previous_state: { enabled: false, feature_state_value: null },
    new_state: { enabled: true, feature_state_value: null },
  });
  await api("/api/v1/events/batch", { method: "POST", headers: auth, json: { events: [...Array.from({ length: 6 }, (_, n) => change(31, n)), change(32, 99)] } });
  // Every flaky delivery failed once, then arrived (RETRY_SCHEDULE is 1,1,1 here); the throttled one waits.
  await until(async () => {
    const s = await api<{ succeeded: number; attempts_failed: number }>(`/api/v1/environments/31/webhooks/${flaky}/stats`, { headers: auth });
    return s.succeeded === 6 && s.attempts_failed === 6;
  }, "the flaky receiver's deliveries");
  await until(async () => (await api<{ attempts: number }>(`/api/v1/environments/32/webhooks/${throttled}/stats`, { headers: auth })).attempts === 1, "the throttled attempt");

  browser = await launchChromium();
  ({ page } = await signedInPage(browser, base, key, cspViolations));
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

describe("delivery health in Chromium", () => {
  it("shows each webhook's health badge and its last 24 hours on the webhooks page", async () => {
    await page.goto(`${base}/ui/webhooks`);
    await expect(page.locator(`article[data-webhook="${flaky}"] [data-health]`).textContent()).resolves.toBe("healthy");
    await expect(page.locator(`[data-day="${flaky}"]`).textContent()).resolves.toMatch(/6 delivered, 0 failed, 6 of 12 attempts failed/);
    await expect(page.locator(`article[data-webhook="${throttled}"] [data-health]`).textContent()).resolves.toBe("failing");
    await shot("20-webhooks-health");
    await page.setViewportSize(PHONE);
    await shot("20-webhooks-health-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("draws deliveries and failed attempts per hour as SVG on the webhook's page, legible on a phone", async () => {
    await page.goto(`${base}/ui/webhooks/${flaky}/deliveries`);
    await expect(page.locator('[data-stat="success_rate"]').textContent()).resolves.toMatch(/^100% of 6 finished deliveries/);
    await expect(page.locator('[data-stat="last_failure"]').textContent()).resolves.toContain('HTTP 500 Internal Server Error: {"error": "database is restarting"}');
    const bars = page.locator("svg.chart-bars");
    await expect(bars.getAttribute("aria-label")).resolves.toBe("Deliveries per hour over the last 24 hours (UTC): 6 deliveries delivered, 6 failed attempts.");
    // The current hour's column holds both: green delivered, red failed attempts.
    const lastHour = page.locator("svg.chart-bars g").last();
    await expect(lastHour.locator("rect.ok").count()).resolves.toBe(1);
    await expect(lastHour.locator("rect.bad").count()).resolves.toBe(1);
    await expect(page.locator("svg.chart-bars g").count()).resolves.toBe(24);
    await shot("21-webhook-health");
    await page.click("text=Last 7 days");
    await page.waitForURL(/window=7d$/);
    await expect(page.locator("svg.chart-bars g").count()).resolves.toBe(168);
    await shot("21-webhook-health-7d");

    await page.setViewportSize(PHONE);
    await page.goto(`${base}/ui/webhooks/${flaky}/deliveries`);
    expect(await overflow()).toEqual({ page: 390, window: 390 });
    const chart = await page.locator("svg.chart-bars").boundingBox();
    expect(chart!.width).toBeGreaterThan(250);
    // Axis labels are text of the page, not of the drawing: they keep their size on a phone.
    const fontSize = await page.locator(".chart-x span").first().evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    expect(fontSize).toBeGreaterThanOrEqual(12);
    await shot("21-webhook-health-phone");
    await shot("21-webhook-health-phone-screen", false);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("lays the attempts out for a phone: every column shown, words not cut mid-word", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${base}/ui/webhooks/${flaky}/deliveries`);
    const card = page.locator("article[data-delivery]").first();
    const response = card.locator("tr[data-attempt='1'] td[data-label='Response']");
    const error = card.locator("tr[data-attempt='1'] td[data-label='Error']");
    await expect(response.isVisible()).resolves.toBe(true);
    await expect(error.textContent()).resolves.toBe('HTTP 500 Internal Server Error: {"error": "database is restarting"}');
    for (const cell of [response, error]) {
      const box = (await cell.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(box.width).toBeGreaterThan(250); // a full-width line of its own, not a narrow column
    }
    expect(await overflow()).toEqual({ page: 390, window: 390 });
    await shot("22-attempts-phone");
    await card.scrollIntoViewIfNeeded();
    await shot("22-attempts-phone-screen", false);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("retries a waiting delivery now, and the button says why when it cannot", async () => {
    await page.goto(`${base}/ui/webhooks/${throttled}/deliveries`);
    const card = page.locator("article[data-delivery]").first();
    await expect(card.getAttribute("data-status")).resolves.toBe("pending");
    await expect(page.locator('[data-stat="oldest_pending"] time').count()).resolves.toBe(1);
    await shot("23-retry-now");
    await card.locator("button:text('Retry now')").click();
    await page.waitForURL(/done=retried$/);
    await until(async () => {
      await page.reload();
      return (await page.locator("article[data-delivery]").first().getAttribute("data-status")) === "delivered";
    }, "the retried delivery to arrive");
    await expect(page.locator("article[data-delivery] tr[data-attempt]").count()).resolves.toBe(2);
    await expect(page.locator("article[data-delivery] button:text('Redeliver')").isEnabled()).resolves.toBe(true);
    // A disabled webhook: the button is disabled and says why, on a phone too.
    await api(`/api/v1/environments/32/webhooks/${throttled}`, { method: "PATCH", headers: auth, json: { enabled: false } });
    await page.setViewportSize(PHONE);
    await page.reload();
    const button = page.locator("article[data-delivery] button:text('Redeliver')");
    await expect(button.isDisabled()).resolves.toBe(true);
    const why = page.locator("article[data-delivery] .why");
    await expect(why.textContent()).resolves.toBe("The webhook is disabled: enable it before sending to it again.");
    await expect(why.isVisible()).resolves.toBe(true);
    await expect(button.getAttribute("aria-describedby")).resolves.toBe(await why.getAttribute("id"));
    await shot("23-disabled-why-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("lays the audit log out for a phone: every column of each entry there, no sideways scroll", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${base}/ui/audit?project=12`);
    expect(await overflow()).toEqual({ page: 390, window: 390 });
    const row = page.locator("tr[data-entry]").first();
    for (const label of ["Author", "Project", "Environment", "Type"]) {
      const cell = row.locator(`td[data-label='${label}']`);
      await expect(cell.isVisible(), label).resolves.toBe(true);
      const box = (await cell.boundingBox())!;
      expect(box.x + box.width, label).toBeLessThanOrEqual(390);
    }
    await expect(row.locator("td[data-label='Type']").textContent()).resolves.toBe("FEATURE_STATE");
    const table = await page.locator("table.audit").evaluate((t) => ({ scroll: t.parentElement!.scrollWidth, client: t.parentElement!.clientWidth }));
    expect(table.scroll).toBeLessThanOrEqual(table.client);
    await shot("24-audit-phone");
    await row.scrollIntoViewIfNeeded();
    await shot("24-audit-phone-screen", false);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("lays /docs out for a phone: no wider than the screen, every note there to read", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${base}/docs`);
    expect(await overflow()).toEqual({ page: 390, window: 390 });
    const notes = await page.locator("td.full").evaluateAll((cells) => cells.map((c) => c.getBoundingClientRect()).map((r) => [r.left, r.right, r.width]));
    expect(notes.length).toBeGreaterThan(50);
    for (const [left, right] of notes) {
      expect(left).toBeGreaterThanOrEqual(0);
      expect(right).toBeLessThanOrEqual(390);
    }
    await page.goto(`${base}/docs#schema-WebhookStats`);
    await shot("25-docs-phone", false);
    await page.goto(`${base}/docs#tag-Deliveries`);
    await shot("25-docs-deliveries-phone", false);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("broke no Content-Security-Policy rule on any page", async () => {
    expect(cspViolations).toEqual([]);
  });
});
