/// <reference types="node" />
// The flag history pages in real headless Chromium against `wrangler dev`: from an audit entry to
// its flag's timeline, "State at" with the date-time picker, "Compare" two moments showing only
// what differs, every view reopened from its pasted URL, and readable on a 390 px phone.
// Screenshots go to test-output/browser/history-*.png.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "./chromium";
import { apiOf, signedInPage, until } from "./support";

const base = inject("baseUrl");
const api = apiOf(base);
const admin = { Authorization: `Bearer ${inject("adminToken")}` };
const SHOTS = join(process.cwd(), "test-output", "browser");
const PHONE = { width: 390, height: 844 };

let browser: Browser;
let context: BrowserContext;
let page: Page;
let apiKey: string;
let entries: number[];
const cspViolations: string[] = [];

/** Ingests the events one after another (their order of arrival is part of the story) and answers their audit entry ids. */
async function ingest(...events: Record<string, unknown>[]): Promise<number[]> {
  const auth = { Authorization: `Api-Key ${apiKey}` };
  const ids: number[] = [];
  for (const event of events) {
    const { event_id } = await api<{ event_id: string }>("/api/v1/events", { method: "POST", headers: auth, json: event });
    const done = await until(async () => {
      const s = await api<{ status: string; audit_entry_id: number }>(`/api/v1/events/${event_id}`, { headers: auth });
      return s.status === "recorded" && s;
    }, `event ${event_id} to be recorded`);
    ids.push(done.audit_entry_id);
  }
  return ids;
}

async function shot(name: string, viewport?: { width: number; height: number }) {
  if (viewport) await page.setViewportSize(viewport);
  await page.screenshot({ path: join(SHOTS, `history-${name}.png`), fullPage: true });
  if (viewport) await page.setViewportSize({ width: 1280, height: 800 });
}

/** The cells' text of each body row of a table, as shown (lines joined by a space). */
const rows = (selector: string) =>
  page
    .locator(`${selector} tbody tr`)
    .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => (td as unknown as { innerText: string }).innerText.replace(/\s+/g, " ").trim())));

const ENV = { id: 31, name: "Production" };
const change = (at: string, enabled: boolean, value: string, over: Record<string, unknown> = {}) => ({
  type: "FLAG_STATE_UPDATED",
  occurred_at: at,
  author: { id: 3, email: "kyle@example.com", first_name: "Kyle", last_name: "Johnson" },
  project: { id: 12, name: "Website" },
  environment: ENV,
  feature: { id: 7168, name: "checkout_v2" },
  new_state: { enabled, feature_state_value: value },
  ...over,
});

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const org = await api<{ id: number }>("/api/v1/organisations", { method: "POST", headers: admin, json: { name: "Incident Co" } });
  apiKey = (await api<{ key: string }>(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: admin, json: { name: "on call" } })).key;
  entries = await ingest(
    change("2024-03-05T13:00:00Z", false, "old flow"),
    { ...change("2024-03-05T13:30:00Z", true, "beta"), type: "SEGMENT_OVERRIDE_UPDATED", segment: { id: 9, name: "beta testers" }, segment_priority: 0 },
    change("2024-03-05T14:00:00Z", true, "new flow", { author: { id: 4, email: "ana@example.com", first_name: "Ana", last_name: "Lee" } }),
    { ...change("2024-03-05T14:05:00Z", true, "vip"), type: "IDENTITY_OVERRIDE_UPDATED", identity: { id: 42, identifier: "vip-customer" } },
    change("2024-03-05T10:00:00Z", true, "on", { feature: { id: 7169, name: "dark_mode" } }),
    // Arrives last, took effect first: the history orders by when it took effect.
    change("2024-03-05T14:10:00Z", false, "old flow", { author: { id: 4, email: "ana@example.com", first_name: "Ana", last_name: "Lee" } }),
  );

  browser = await launchChromium();
  ({ context, page } = await signedInPage(browser, base, apiKey, cspViolations));
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

describe("flag history pages in Chromium", () => {
  it("goes from an audit entry of a flag to its timeline, oldest first", async () => {
    await page.goto(`${base}/ui/audit/${entries[2]}`);
    await page.click("text=Timeline of checkout_v2");
    await page.waitForURL(`${base}/ui/environments/31/features/7168/timeline`);
    await expect(page.locator("h1").textContent()).resolves.toContain("checkout_v2");
    expect(await rows("table[aria-label=Timeline]")).toEqual([
      ["2024-03-05 13:00:00 UTC", "default set", "unknown", "→", 'off "old flow"', `Kyle Johnson entry ${entries[0]}`],
      ["2024-03-05 13:30:00 UTC", "segment beta testers set", "unknown", "→", 'on "beta" priority 0', `Kyle Johnson entry ${entries[1]}`],
      ["2024-03-05 14:00:00 UTC", "default set", 'off "old flow"', "→", 'on "new flow"', `Ana Lee entry ${entries[2]}`],
      ["2024-03-05 14:05:00 UTC", "identity vip-customer set", "unknown", "→", 'on "vip"', `Kyle Johnson entry ${entries[3]}`],
      ["2024-03-05 14:10:00 UTC", "default set", 'on "new flow"', "→", 'off "old flow"', `Ana Lee entry ${entries[5]}`],
    ]);
    await shot("timeline");
    await shot("timeline-phone", PHONE);
  });

  it("shows the state at a moment picked with the date-time picker, as a URL that reopens it", async () => {
    await page.goto(`${base}/ui/flags`);
    await page.locator("tr[data-environment='31']").locator("text=State now").click();
    await page.waitForURL(`${base}/ui/environments/31/state`);
    await page.fill("#h-at", "2024-03-05T14:02");
    await page.click("text=Show");
    await page.waitForURL(/state\?at=/);
    const pasted = page.url();
    expect(new URL(pasted).searchParams.get("at")).toBe("2024-03-05T14:02");
    const expected = [
      ["checkout_v2 known since 2024-03-05 13:00:00 UTC", 'on "new flow"', "1 segment, 0 identity", `2024-03-05 14:00:00 UTC entry ${entries[2]}`],
      ["dark_mode known since 2024-03-05 10:00:00 UTC", 'on "on"', "none", `2024-03-05 10:00:00 UTC entry ${entries[4]}`],
    ];
    expect(await rows("table[aria-label='Flags at this moment']")).toEqual(expected);
    await page.locator("tr[data-feature='7168'] summary").click();
    await expect(page.locator("tr[data-feature='7168'] li").allTextContents()).resolves.toEqual([
      expect.stringMatching(/^segment beta testers: on "beta" priority 0 since 2024-03-05 13:30:00 UTC$/),
    ]);
    await shot("state");
    await shot("state-phone", PHONE);

    // The pasted URL, in a fresh tab of the same person, shows the same moment.
    const tab = await context.newPage();
    await tab.goto(pasted);
    await expect(tab.locator("#h-at").inputValue()).resolves.toMatch(/^2024-03-05T14:02(:00)?$/);
    await expect(tab.locator("table[aria-label='Flags at this moment'] tbody tr").count()).resolves.toBe(2);
    await tab.close();
  });

  it("compares two moments and shows only what differs, with who and when", async () => {
    await page.goto(`${base}/ui/environments/31/compare`);
    await page.fill("#h-from", "2024-03-05T13:15");
    await page.fill("#h-to", "2024-03-05T14:07");
    await page.click("form[aria-label='Choose two moments'] button");
    await page.waitForURL(/compare\?from=.*&to=/);
    expect(Object.fromEntries(new URL(page.url()).searchParams)).toEqual({ from: "2024-03-05T13:15", to: "2024-03-05T14:07" });
    expect(await rows("table[aria-label='What differs']")).toEqual([
      ["checkout_v2 default", 'off "old flow"', "→", 'on "new flow"', `Ana Lee 1 change, last 2024-03-05 14:00:00 UTC entry ${entries[2]}`],
      ["checkout_v2 segment beta testers", "unknown", "→", 'on "beta" priority 0', `Kyle Johnson 1 change, last 2024-03-05 13:30:00 UTC entry ${entries[1]}`],
      ["checkout_v2 identity vip-customer", "unknown", "→", 'on "vip"', `Kyle Johnson 1 change, last 2024-03-05 14:05:00 UTC entry ${entries[3]}`],
    ]);
    await shot("compare");
    await shot("compare-phone", PHONE);

    // Until 14:15 the default was changed and changed back: not a difference, but shown apart.
    await page.goto(`${base}/ui/environments/31/compare?from=2024-03-05T13:45:00&to=2024-03-05T14:15:00`);
    const differs = await rows("table[aria-label='What differs']");
    expect(differs.map((r) => r[0])).toEqual(["checkout_v2 identity vip-customer"]);
    expect(await rows("table[aria-label='Changed and changed back']")).toEqual([
      ["checkout_v2 default", 'off "old flow"', "→", 'off "old flow"', `Ana Lee 2 changes, last 2024-03-05 14:10:00 UTC entry ${entries[2]} entry ${entries[5]}`],
    ]);
  });

  it("keeps pages readable on a phone: nothing wider than the screen", async () => {
    await page.setViewportSize(PHONE);
    for (const path of ["/ui/flags", "/ui/environments/31/state?at=2024-03-05T14:02:00", "/ui/environments/31/compare?from=2024-03-05T13:15:00&to=2024-03-05T14:07:00", "/ui/environments/31/features/7168/timeline"]) {
      await page.goto(`${base}${path}`);
      const width = await page.locator("html").evaluate((html) => html.scrollWidth);
      expect({ path, width }).toEqual({ path, width: PHONE.width });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("answers an environment the organisation does not have with not found, and a time that is none with a clear error", async () => {
    await page.goto(`${base}/ui/environments/999/state`);
    await expect(page.locator("[data-error-status]").getAttribute("data-error-status")).resolves.toBe("404");
    await page.goto(`${base}/ui/environments/31/state?at=yesterday`);
    await expect(page.locator("[data-error-status]").getAttribute("data-error-status")).resolves.toBe("400");
    await expect(page.locator(".notice.bad").textContent()).resolves.toContain('"yesterday" is not a date and time');
  });

  it("broke no Content-Security-Policy rule on any page", () => {
    expect(cspViolations).toEqual([]);
  });
});
