/// <reference types="node" />
// Headless Chromium for the browser tests: the build that @sparticuz/chromium ships inside its npm
// package, else Debian's chromium. This machine has no network, so nothing may phone home.
import { existsSync } from "node:fs";
import { chromium as playwright, type Browser } from "playwright-core";

const OFFLINE_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
// @sparticuz/chromium's defaults (meant for Lambda) include these; the pages must pass with the web's normal rules.
const NOT_WANTED = new Set(["--disable-web-security", "--allow-running-insecure-content"]);

async function sparticuz(): Promise<{ executablePath: string; args: string[] } | null> {
  try {
    const { default: chromium } = await import("@sparticuz/chromium");
    return { executablePath: await chromium.executablePath(), args: chromium.args };
  } catch (err) {
    console.warn(`@sparticuz/chromium is not usable here (${String(err)}); trying /usr/bin/chromium`);
    return null;
  }
}

export async function launchChromium(): Promise<Browser> {
  const candidates = [await sparticuz(), existsSync("/usr/bin/chromium") ? { executablePath: "/usr/bin/chromium", args: [] } : null];
  const problems: string[] = [];
  for (const found of candidates) {
    if (!found) continue;
    const args = [...new Set([...found.args.filter((a) => !NOT_WANTED.has(a)), ...OFFLINE_FLAGS])];
    try {
      return await playwright.launch({ executablePath: found.executablePath, args, headless: true });
    } catch (err) {
      problems.push(`${found.executablePath}: ${String(err)}`);
    }
  }
  throw new Error(`no Chromium could start (npm install brings @sparticuz/chromium; Debian's chromium is the fallback):\n${problems.join("\n")}`);
}
