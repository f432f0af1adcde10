/// <reference types="node" />
// What the browser tests share besides Chromium itself: the JSON API of the flaghook under test,
// polling, and a page signed in to the admin pages with an API key.
import type { Browser, BrowserContext, Page } from "playwright-core";

export type Api = <T>(path: string, init?: RequestInit & { json?: unknown }) => Promise<T>;

/** A JSON client of `base` (these headers on every request); a non-2xx answer throws with its body. */
export function apiOf(base: string, headers: Record<string, string> = {}): Api {
  return async <T>(path: string, init: RequestInit & { json?: unknown } = {}) => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: { "content-type": "application/json", ...headers, ...(init.headers as Record<string, string>) },
      body: init.json === undefined ? init.body : JSON.stringify(init.json),
    });
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  };
}

/** Polls `check` until it answers something truthy, and answers that. */
export async function until<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A page of a new 1280x800 context, signed in to `base`'s admin pages with the API key `key`; what
 * the console says about the Content Security Policy is pushed to `cspViolations`.
 */
export async function signedInPage(browser: Browser, base: string, key: string, cspViolations: string[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${base}/ui/sign-in`);
  await page.fill("#key", key);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/ui/audit`);
  return { context, page };
}
