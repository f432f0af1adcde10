// Bad input found by the security review (issue 14): requests that answered 500, were accepted when
// they should not be, or did work before checking who sent them. Each answers 4xx with the one error
// shape and stores nothing. (Rows run the Worker with `vars` laid over the test configuration.)
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { isoMicro } from "../src/domain/clock";
import { call, countRows, createOrganisation, eventually, expectError, receiverUrl } from "./helpers";

let orgId: number;
let auth: Record<string, string>;
let inboundPath: string;
const ids: Record<string, string> = {};
const SOURCE_SECRET = "hardening-source-secret";
const DAY = 86_400_000;

/** Names the test DoH server answers with non-global addresses, most of them IPv6 forms embedding IPv4. */
const REBOUND: Record<string, string> = {
  "compatible.hardening.test": "::7f00:1",
  "sixtofour.hardening.test": "2002:7f00:1::1",
  "translated.hardening.test": "::ffff:0:7f00:1",
  "sitelocal.hardening.test": "fec0::1",
  "discard.hardening.test": "100::1",
  "nat64.hardening.test": "64:ff9b::a9fe:a9fe",
  "teredo.hardening.test": "2001:0:4136:e378:8000:63bf:80ff:fffe",
  "isatap.hardening.test": "2607:f8b0:4005::5efe:a00:1",
  "testnet.hardening.test": "198.51.100.7",
  "benchmarking.hardening.test": "198.18.0.1",
};

beforeAll(async () => {
  ({ orgId, auth } = await createOrganisation("Hardening"));
  const source = await call(`/api/v1/organisations/${orgId}/inbound-sources`, { method: "POST", headers: auth, json: { secret: SOURCE_SECRET } });
  inboundPath = new URL(((await source.json()) as { url: string }).url).pathname;
  for (const [name, address] of Object.entries(REBOUND)) {
    await fetch(`${receiverUrl()}/_dns/${name}`, { method: "PUT", body: JSON.stringify({ addresses: [address] }) });
  }
  // A webhook saved while private URLs were allowed, in environment 901, with a delivery that failed.
  const hook = await call("/api/v1/environments/901/webhooks", { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/hardening`, event_types: ["FLAG_DELETED"] } });
  ids.hook = ((await hook.json()) as { id: string }).id;
  const sent = await call(`/api/v1/environments/901/webhooks/${ids.hook}/test`, { method: "POST", headers: auth });
  ids.delivery = ((await sent.json()) as { delivery_id: string }).delivery_id;
  await env.DB.prepare("update deliveries set status = 'failed' where id = ?").bind(ids.delivery).run();
  // Creating the key, the source and the webhook audits system events through the queue; let them land.
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", orgId)) === 3);
});

async function flagsmithSignature(body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SOURCE_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const environments = (n: number) => Array.from({ length: n }, (_, i) => `environment=${i + 1}`).join("&");
const nested = (depth: number) =>
  `{"data": {"log": "deep", "created_date": "${new Date().toISOString()}", "extra": ${"[".repeat(depth)}${"]".repeat(depth)}}, "event_type": "AUDIT_LOG_CREATED"}`;
const flagUpdated = (timestamp: string) =>
  JSON.stringify({
    event_type: "FLAG_UPDATED",
    data: {
      timestamp,
      new_state: { enabled: true, environment: { id: 902, name: "E" }, feature: { id: 1, name: "f" }, feature_state_value: null },
    },
  });
const auditLog = (created_date: string) => JSON.stringify({ event_type: "AUDIT_LOG_CREATED", data: { created_date, log: "replayed?" } });
const PRODUCTION = { ALLOW_PRIVATE_WEBHOOK_URLS: "false" };
const LONE_SURROGATES = `{"log": "${"\\ud800".repeat(20_000)}"}`;
const NEVER_ISSUED = { Authorization: `Api-Key fh_0000000000_${"A".repeat(43)}` };
const j = (value: unknown) => JSON.stringify(value);

interface Row {
  name: string;
  method: "GET" | "POST" | "PATCH";
  path: () => string;
  /** In place of the default credentials: the organisation's API key (none on the inbound URL). */
  headers?: () => Record<string, string>;
  /** The body, signed with the inbound source's secret when `signed`. */
  body?: () => string;
  signed?: true;
  /** Laid over the test configuration for this request. */
  vars?: Record<string, string>;
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
  // Replays: signed bodies older than flaghook remembers them, or from the future.
  { name: "a signed flag event of 2021 (the seed's own time)", method: "POST", path: () => inboundPath, body: () => flagUpdated("2021-06-18T07:50:26.595298Z"), signed: true, status: 400, code: "timestamp_out_of_range", field: "data.timestamp" },
  { name: "a signed flag event 30 days old", method: "POST", path: () => inboundPath, body: () => flagUpdated(isoMicro(Date.now() - 30 * DAY)), signed: true, status: 400, code: "timestamp_out_of_range", field: "data.timestamp" },
  { name: "a signed flag event 2 days ahead", method: "POST", path: () => inboundPath, body: () => flagUpdated(isoMicro(Date.now() + 2 * DAY)), signed: true, status: 400, code: "timestamp_out_of_range", field: "data.timestamp" },
  { name: "a signed flag event dated 9999", method: "POST", path: () => inboundPath, body: () => flagUpdated("9999-12-31T23:59:59.999999Z"), signed: true, status: 400, code: "timestamp_out_of_range", field: "data.timestamp" },
  { name: "a signed audit log entry 2 days ahead", method: "POST", path: () => inboundPath, body: () => auditLog(isoMicro(Date.now() + 2 * DAY)), signed: true, status: 400, code: "timestamp_out_of_range", field: "data.created_date" },
  { name: "a signed audit log entry older than AUDIT_RETENTION_DAYS", method: "POST", path: () => inboundPath, body: () => auditLog(isoMicro(Date.now() - 8 * DAY)), signed: true, vars: { AUDIT_RETENTION_DAYS: "7" }, status: 400, code: "timestamp_out_of_range", field: "data.created_date" },
  { name: "a stale flag event with a wrong signature", method: "POST", path: () => inboundPath, headers: () => ({ "x-flagsmith-signature": "00".repeat(32) }), body: () => flagUpdated("2021-06-18T07:50:26.595298Z"), status: 401, code: "invalid_signature" },
  // Authentication before the body: none of these bodies is read.
  { name: "an unauthenticated event of lone surrogate escapes", method: "POST", path: () => "/api/v1/events", headers: () => ({}), body: () => LONE_SURROGATES, status: 401, code: "unauthorized" },
  { name: "an event of lone surrogate escapes with a key never issued", method: "POST", path: () => "/api/v1/events", headers: () => NEVER_ISSUED, body: () => LONE_SURROGATES, status: 401, code: "unauthorized" },
  { name: "an unauthenticated event over 256 KiB", method: "POST", path: () => "/api/v1/events", headers: () => ({}), body: () => j({ log: "x".repeat(300_000) }), status: 401, code: "unauthorized" },
  { name: "an unauthenticated batch of malformed JSON", method: "POST", path: () => "/api/v1/events/batch", headers: () => ({}), body: () => "{events: [", status: 401, code: "unauthorized" },
  { name: "an unauthenticated webhook as text/plain", method: "POST", path: () => `/api/v1/organisations/${orgId}/webhooks`, headers: () => ({ "content-type": "text/plain" }), body: () => "https://example.com", status: 401, code: "unauthorized" },
  { name: "an organisation over 256 KiB with a wrong operator token", method: "POST", path: () => "/api/v1/organisations", headers: () => ({ Authorization: "Bearer not-it" }), body: () => j({ name: "x".repeat(300_000) }), status: 401, code: "unauthorized" },
  { name: "an API key of lone surrogates with an organisation's key", method: "POST", path: () => `/api/v1/organisations/${orgId}/api-keys`, body: () => LONE_SURROGATES, status: 401, code: "unauthorized" },
  { name: "an inbound body over 256 KiB to an unknown token", method: "POST", path: () => "/api/v1/inbound/flagsmith/fhi_nobodynobodynobodynobodynobodynobody", headers: () => ({}), body: () => j({ log: "x".repeat(300_000) }), status: 404, code: "not_found" },
  { name: "an inbound body over 2,000,000 bytes (Flagsmith's limit here) to a live token", method: "POST", path: () => inboundPath, headers: () => ({}), body: () => j({ log: "x".repeat(2_000_001) }), status: 413, code: "payload_too_large" },
  // Caps on webhooks.
  { name: "a webhook in an environment at its cap", method: "POST", path: () => "/api/v1/environments/901/webhooks", body: () => j({ url: `${receiverUrl()}/hooks/x` }), vars: { MAX_WEBHOOKS_PER_ENVIRONMENT: "1" }, status: 409, code: "limit_reached", field: "environment" },
  { name: "a webhook in an organisation at its cap", method: "POST", path: () => `/api/v1/organisations/${orgId}/webhooks`, body: () => j({ url: `${receiverUrl()}/hooks/x` }), vars: { MAX_WEBHOOKS_PER_ORGANISATION: "1" }, status: 409, code: "limit_reached", field: "organisation" },
  { name: "a webhook in a new environment of an organisation at its cap", method: "POST", path: () => "/api/v1/environments/903/webhooks", body: () => j({ url: `${receiverUrl()}/hooks/x` }), vars: { MAX_WEBHOOKS_PER_ORGANISATION: "1" }, status: 409, code: "limit_reached", field: "organisation" },
  { name: "an invalid webhook at the cap is refused for what is wrong with it", method: "POST", path: () => "/api/v1/environments/901/webhooks", body: () => j({ url: 5 }), vars: { MAX_WEBHOOKS_PER_ENVIRONMENT: "1" }, status: 400, code: "validation_failed", field: "url" },
  // The URL policy, now with the address forms that passed it, and at redelivery and recovery.
  ...Object.entries(REBOUND).map(([host, address]): Row => ({
    name: `production: a webhook to a name resolving to ${address}`,
    method: "POST",
    path: () => "/api/v1/environments/904/webhooks",
    body: () => j({ url: `https://${host}/hook` }),
    vars: PRODUCTION,
    status: 400,
    code: "url_not_allowed",
    field: "url",
  })),
  { name: "production: patching a webhook to a name resolving to 6to4 of loopback", method: "PATCH", path: () => `/api/v1/environments/901/webhooks/${ids.hook}`, body: () => j({ url: "https://sixtofour.hardening.test/" }), vars: PRODUCTION, status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an IPv4-compatible literal", method: "POST", path: () => "/api/v1/environments/904/webhooks", body: () => j({ url: "https://[::7f00:1]/" }), vars: PRODUCTION, status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: a discard-only literal", method: "POST", path: () => "/api/v1/environments/904/webhooks", body: () => j({ url: "https://[100::1]/" }), vars: PRODUCTION, status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: redelivering to a webhook saved with a loopback url", method: "POST", path: () => `/api/v1/deliveries/${ids.delivery}/redeliver`, vars: PRODUCTION, status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: recovering a webhook saved with a loopback url", method: "POST", path: () => `/api/v1/environments/901/webhooks/${ids.hook}/recover`, body: () => j({ since: "2000-01-01T00:00:00Z" }), vars: PRODUCTION, status: 400, code: "url_not_allowed", field: "url" },
];

describe("bad input found by the security review answers 4xx with the error shape and stores nothing", () => {
  it.each(rows)("$name -> $status $code", async (row) => {
    const before = await stored();
    const body = row.body?.();
    const inbound = row.path().startsWith("/api/v1/inbound");
    const headers: Record<string, string> = row.headers?.() ?? (inbound ? {} : { ...auth });
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
    if (row.signed && body !== undefined) headers["x-flagsmith-signature"] = await flagsmithSignature(body);
    const req = new Request(`http://flaghook.test${row.path()}`, { method: row.method, headers, body });
    const res = await worker.fetch(req, { ...env, DNS_RESOLVER_URL: `${receiverUrl()}/dns-query`, ...row.vars }, createExecutionContext());
    await expectError(res, row.status, row.code, row.field);
    expect(await stored()).toEqual(before);
  });

  it("50 environment filters, the most allowed, answer 200; so does their CSV export, with its header row", async () => {
    const page = await call(`/api/v1/audit/?${environments(50)}`, { headers: auth });
    expect(page.status).toBe(200);
    const csv = await call(`/api/v1/audit/export?format=csv&${environments(50)}`, { headers: auth });
    expect(csv.status).toBe(200);
    expect(await csv.text()).toMatch(/^id,legacy_id,created_date,/);
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
  for (const table of ["audit_entries", "relayed_events", "deliveries", "attempts", "webhooks", "projects", "environments", "api_keys", "organisations"]) {
    counts[table] = await countRows(table);
  }
  const lastReceived = await env.DB.prepare("select last_received_at from inbound_sources where org_id = ?").bind(orgId).first("last_received_at");
  const webhooks = (await env.DB.prepare("select * from webhooks where org_id = ? order by id").bind(orgId).all()).results;
  const deliveries = (await env.DB.prepare("select id, status, attempt_count, next_attempt_at, updated_at from deliveries where org_id = ? order by id").bind(orgId).all()).results;
  return { counts, lastReceived, webhooks, deliveries };
}
