// Bad input found by the security review (issue 14): requests that answered 500, or were accepted
// when they should not be. Each answers 4xx with the one error shape and stores nothing.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, countRows, createOrganisation, eventually, expectError } from "./helpers";

let orgId: number;
let auth: Record<string, string>;
let inboundPath: string;
const SOURCE_SECRET = "hardening-source-secret";

beforeAll(async () => {
  ({ orgId, auth } = await createOrganisation("Hardening"));
  const source = await call(`/api/v1/organisations/${orgId}/inbound-sources`, { method: "POST", headers: auth, json: { secret: SOURCE_SECRET } });
  inboundPath = new URL(((await source.json()) as { url: string }).url).pathname;
  // Creating the key audits a system event through the queue; let it land before counting.
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", orgId)) >= 1);
});

async function flagsmithSignature(body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SOURCE_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const environments = (n: number) => Array.from({ length: n }, (_, i) => `environment=${i + 1}`).join("&");
const nested = (depth: number) =>
  `{"data": {"log": "deep", "created_date": "${new Date().toISOString()}", "extra": ${"[".repeat(depth)}${"]".repeat(depth)}}, "event_type": "AUDIT_LOG_CREATED"}`;

interface Row {
  name: string;
  method: "GET" | "POST";
  path: () => string;
  /** The body, signed with the inbound source's secret when `signed`. */
  body?: () => string;
  signed?: true;
  status: number;
  code: string;
  field?: string;
}

const rows: Row[] = [
  // More repeated filters than D1 binds in one query: answered 500 (the export: an empty 200).
  { name: "an audit page with 51 environment filters", method: "GET", path: () => `/api/v1/audit/?${environments(51)}`, status: 400, code: "validation_failed", field: "environment" },
  { name: "an audit page with 120 environment filters", method: "GET", path: () => `/api/v1/audit/?${environments(120)}`, status: 400, code: "validation_failed", field: "environment" },
  { name: "a CSV export with 120 environment filters", method: "GET", path: () => `/api/v1/audit/export?format=csv&${environments(120)}`, status: 400, code: "validation_failed", field: "environment" },
  { name: "an NDJSON export with 96 environment filters", method: "GET", path: () => `/api/v1/audit/export?${environments(96)}`, status: 400, code: "validation_failed", field: "environment" },
  // Signed inbound bodies nested deeper than any of Flagsmith's: answered 500.
  { name: "a signed inbound body nested 100,000 deep", method: "POST", path: () => inboundPath, body: () => nested(100_000), signed: true, status: 400, code: "validation_failed" },
  { name: "a signed inbound body nested 5,000 deep", method: "POST", path: () => inboundPath, body: () => nested(5_000), signed: true, status: 400, code: "validation_failed" },
  { name: "a signed inbound body nested 65 deep", method: "POST", path: () => inboundPath, body: () => nested(63), signed: true, status: 400, code: "validation_failed" },
  {
    name: "a signed inbound body nested 40,000 deep in objects",
    method: "POST",
    path: () => inboundPath,
    body: () => `{"event_type": "AUDIT_LOG_CREATED", "data": ${'{"a":'.repeat(40_000)}1${"}".repeat(40_000)}}`,
    signed: true,
    status: 400,
    code: "validation_failed",
  },
];

describe("bad input found by the security review answers 4xx with the error shape and stores nothing", () => {
  it.each(rows)("$name -> $status $code", async (row) => {
    const before = await stored();
    const body = row.body?.();
    const headers: Record<string, string> = row.path().startsWith("/api/v1/inbound") ? {} : { ...auth };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (row.signed && body !== undefined) headers["x-flagsmith-signature"] = await flagsmithSignature(body);
    const res = await call(row.path(), { method: row.method, headers, body });
    await expectError(res, row.status, row.code, row.field);
    expect(await stored()).toEqual(before);
  });

  it("50 environment filters, the most allowed, answer 200; so does their CSV export, with its header row", async () => {
    const page = await call(`/api/v1/audit/?${environments(50)}`, { headers: auth });
    expect(page.status).toBe(200);
    const csv = await call(`/api/v1/audit/export?format=csv&${environments(50)}`, { headers: auth });
    expect(csv.status).toBe(200);
    expect(await csv.text()).toMatch(/^id,created_date,log,/);
  });

  it("a signed inbound body nested as deep as allowed is accepted", async () => {
    const body = nested(62);
    const res = await call(inboundPath, { method: "POST", headers: { "content-type": "application/json", "x-flagsmith-signature": await flagsmithSignature(body) }, body });
    expect(res.status).toBe(202);
  });

  it.each([
    ["CR LF", "/ui/audit\r\nX-Injected: 1"],
    ["LF", "/ui/audit\nSet-Cookie: a=b"],
    ["a NUL", "/ui/audit\u0000"],
    ["non-ASCII", "/ui/audité"],
  ])("a sign-in `next` with %s answers a 400 page, not a 500 or a header", async (_name, next) => {
    const { key } = await createOrganisation("Sign-in next");
    const page = await call(`/ui/sign-in?next=${encodeURIComponent(next)}`);
    expect(page.status).toBe(400);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain('data-error-status="400"');
    // The same `next` posted with a valid key and a valid form token.
    const form = await call("/ui/sign-in");
    const cookie = form.headers.get("set-cookie")!.split(";")[0];
    const token = /name="csrf" value="([^"]+)"/.exec(await form.text())![1];
    const res = await call("/ui/sign-in", {
      method: "POST",
      redirect: "manual",
      headers: { cookie, origin: "http://flaghook.test", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: token, key, next }).toString(),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("set-cookie") ?? "").not.toMatch(/flaghook_session=[^;]/);
  });
});

async function stored() {
  const counts: Record<string, number> = {};
  for (const table of ["audit_entries", "relayed_events", "deliveries", "webhooks", "projects", "environments"]) counts[table] = await countRows(table);
  const lastReceived = await env.DB.prepare("select last_received_at from inbound_sources where org_id = ?").bind(orgId).first("last_received_at");
  return { counts, lastReceived };
}
