/// <reference types="node" />
// A newcomer's first run: two `npm run dev` started at once (two checkouts, PORT set for the second)
// both come up, and the README's quick start answers are what a fresh start prints. Each dev server
// runs from its own copy of the checkout (its own .dev.vars and local state), as `npm run dev` does.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./flaghook-dev";

const repo = join(import.meta.dirname, "..", "..");
const README = readFileSync(join(repo, "README.md"), "utf8");

interface Dev {
  dir: string;
  base: string;
  process: ChildProcess;
  output: () => string;
}

function startDev(port: number): Dev {
  const dir = mkdtempSync(join(tmpdir(), "flaghook-first-run-"));
  for (const part of ["src", "migrations", "scripts", "wrangler.toml", "package.json", "tsconfig.json"]) cpSync(join(repo, part), join(dir, part), { recursive: true });
  symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"));
  let output = "";
  const child = spawn(process.execPath, ["scripts/dev.mjs", "--show-interactive-dev-session=false"], {
    cwd: dir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORT: String(port), NO_COLOR: "1", INSPECTOR_PORT: undefined },
  });
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  return { dir, base: `http://127.0.0.1:${port}`, process: child, output: () => output };
}

async function healthy(dev: Dev, timeoutMs = 150_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dev.process.exitCode !== null) throw new Error(`npm run dev exited with ${dev.process.exitCode}:\n${dev.output()}`);
    try {
      if ((await fetch(`${dev.base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${dev.base} did not come up:\n${dev.output()}`);
}

function stop(dev: Dev) {
  try {
    process.kill(-dev.process.pid!, "SIGKILL");
  } catch {
    // already gone
  }
  rmSync(dev.dir, { recursive: true, force: true });
}

/** JSON written as the README writes it (Python's separators: ", " and ": "). */
function readmeJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(readmeJson).join(", ")}]`;
  if (value && typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${readmeJson(v)}`).join(", ")}}`;
  return JSON.stringify(value);
}

/** A README answer line as a pattern: "..." and "evt_..." stand for any string (with that prefix). */
function answerPattern(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped.replace(/"(\w*)\\\.\\\.\\\."/g, '"$1[^"]*"')}$`);
}

/** The `# -> ...` answer lines of a README section, in order, without trailing remarks. */
function answers(heading: string): string[] {
  const start = README.indexOf(`\n${heading}\n`);
  const next = /\n#{2,3} /.exec(README.slice(start + heading.length + 2));
  const end = next ? start + heading.length + 2 + next.index : README.length;
  return [...README.slice(start, end).matchAll(/^# -> (.+?)(?:\s{3,}.*)?$/gm)].map((m) => m[1]);
}

let first: Dev;
let second: Dev;

beforeAll(async () => {
  const [a, b] = [await freePort(), await freePort()];
  // Started together: both used to race for the inspector's port 9229, and one of them failed.
  first = startDev(a);
  second = startDev(b);
  await Promise.all([healthy(first), healthy(second)]);
}, 200_000);

afterAll(() => {
  for (const dev of [first, second]) if (dev) stop(dev);
});

describe("npm run dev, twice at once", () => {
  it("brings both up, each on its PORT with its own debugger port", async () => {
    const inspectors = [first, second].map((d) => /debugger \(inspector\): 127\.0\.0\.1:(\d+)/.exec(d.output())?.[1]);
    expect(inspectors[0]).toBeTruthy();
    expect(inspectors[1]).toBeTruthy();
    expect(inspectors[0]).not.toBe(inspectors[1]);
    for (const dev of [first, second]) {
      expect(dev.output()).toContain(`flaghook on ${dev.base}`);
      expect(await (await fetch(`${dev.base}/`)).json()).toMatchObject({ admin_pages: "/ui", api_docs: "/docs" });
    }
  });
});

describe("the README's quick start, on a fresh start", () => {
  it("answers what the README says, down to the first event's audit_entry_id", async () => {
    const base = first.base;
    const admin = { Authorization: "Bearer dev-admin-token", "Content-Type": "application/json" };
    const expect_ = (answer: string, actual: string) => expect(actual, `README says: ${answer}`).toMatch(answerPattern(answer));

    const quick = answers("## Quick start");
    const ingest = answers("### Ingest change events");
    const organisations = answers("### Organisations (operator)");
    expect([quick.length, ingest.length, organisations.length]).toEqual([2, 2, 1]);

    const org = await fetch(`${base}/api/v1/organisations`, { method: "POST", headers: admin, body: JSON.stringify({ name: "Acme" }) });
    expect_(quick[0], readmeJson(await org.json()));
    const key = (await (await fetch(`${base}/api/v1/organisations/1/api-keys`, { method: "POST", headers: admin, body: JSON.stringify({ name: "ci" }) })).json()) as {
      key: string;
    };
    expect_(quick[1], readmeJson(key));

    // The event the README's "Ingest change events" example sends, exactly.
    const section = README.slice(README.indexOf("### Ingest change events"));
    const body = /-d '(\{[^']+\})'/.exec(section)![1];
    const auth = { Authorization: `Api-Key ${key.key}`, "Content-Type": "application/json" };
    const accepted = await fetch(`${base}/api/v1/events`, { method: "POST", headers: auth, body });
    const acceptedBody = (await accepted.json()) as { event_id: string };
    expect_(ingest[0], `${accepted.status} ${readmeJson(acceptedBody)}`);

    let status: unknown;
    for (let i = 0; i < 300; i++) {
      status = await (await fetch(`${base}/api/v1/events/${acceptedBody.event_id}`, { headers: auth })).json();
      if ((status as { status: string }).status === "recorded") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect_(ingest[1], readmeJson(status));
    expect(status).toMatchObject({ audit_entry_id: 2 });

    // The organisation settings example, as the README sends it.
    const patch = /-d '(\{[^']+\})'/.exec(README.slice(README.indexOf("### Organisations (operator)")))![1];
    const patched = await fetch(`${base}/api/v1/organisations/1`, { method: "PATCH", headers: admin, body: patch });
    expect_(organisations[0], readmeJson(await patched.json()));
  });
});
