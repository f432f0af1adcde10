// Bad input on every route beside events and the audit log (test/bad-input.test.ts has those):
// organisations and API keys, webhooks of both scopes, deliveries. Each malformed, oversized,
// unauthorised, cross-tenant or SSRF request answers 4xx with the one error shape and changes
// nothing; hostile text that is valid input is stored verbatim and comes back as JSON strings.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { ADMIN, call, countRows, createOrganisation, eventually, expectError, receiverUrl, recorded, scriptMailbox } from "./helpers";

/** Production settings: private URLs refused, DNS answered by the test receiver's DoH endpoint. */
let production: typeof env;
/** Ids the rows refer to as {orgA}, {hookA}, ...; A is the caller, B another organisation. */
const ids: Record<string, string> = {};
let authA: Record<string, string>;

const fill = (s: string) => s.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? `{${name}}`);

beforeAll(async () => {
  production = { ...env, ALLOW_PRIVATE_WEBHOOK_URLS: "false", DNS_RESOLVER_URL: `${receiverUrl()}/dns-query` };
  ids.receiver = receiverUrl();
  await scriptMailbox("bad-input-routes", { default: { status: 200 } });
  const a = await createOrganisation("Caller");
  const b = await createOrganisation("Someone else");
  authA = a.auth;
  Object.assign(ids, { orgA: String(a.orgId), keyA: a.keyId, orgB: String(b.orgId), keyB: b.keyId });
  // A's environment 501 gets an api_key, so webhooks can be addressed by it; B has an environment 501 too.
  const created = await call("/api/v1/events", {
    method: "POST",
    headers: a.auth,
    json: { type: "ENVIRONMENT_CREATED", project: { id: 500, name: "P" }, environment: { id: 501, name: "E", api_key: "env_key_bad_input" } },
  });
  await recorded(a.auth, ((await created.json()) as { event_id: string }).event_id);
  // Subscribed to FLAG_DELETED only, so no delivery of their own system audit entries runs in the background.
  const hook = async (auth: Record<string, string>, path: string) => {
    const res = await call(path, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/bad-input-routes`, event_types: ["FLAG_DELETED"] } });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  ids.hookA = await hook(a.auth, `/api/v1/organisations/${a.orgId}/webhooks`);
  ids.envHookA = await hook(a.auth, "/api/v1/environments/501/webhooks");
  ids.hookB = await hook(b.auth, `/api/v1/organisations/${b.orgId}/webhooks`);
  ids.envHookB = await hook(b.auth, "/api/v1/environments/501/webhooks");
  const testSend = async (auth: Record<string, string>, org: string, hookId: string) => {
    const res = await call(`/api/v1/organisations/${org}/webhooks/${hookId}/test`, { method: "POST", headers: auth });
    expect(res.status).toBe(200);
    return ((await res.json()) as { delivery_id: string }).delivery_id;
  };
  ids.dlvA = await testSend(a.auth, ids.orgA, ids.hookA);
  ids.dlvB = await testSend(b.auth, ids.orgB, ids.hookB);
  // Every system audit entry (2 keys, 4 webhooks) and the event recorded and fanned out: nothing moves any more.
  await eventually(async () => (await countRows("audit_entries")) === 7 && (await countRows("audit_entries", "fanned_out = 0")) === 0);
  ids.eventB = (await env.DB.prepare("select event_id from audit_entries where org_id = ?").bind(b.orgId).first<string>("event_id"))!;
}, 30_000);

const j = (value: unknown) => JSON.stringify(value);
const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (...parts: (string | number[])[]) => new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...utf8(p)] : p)));
const HUGE = "x".repeat(256 * 1024);
const NESTED_ARRAYS = "[".repeat(10_000) + "]".repeat(10_000);
const NESTED_OBJECTS = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);
const DEEPEST_UNDER_LIMIT = "[".repeat(120_000) + "]".repeat(120_000);
const SQL = "'; drop table audit_entries; --";
const SCRIPT = "<script>alert(1)</script>";
const TOO_LONG_ID = "whk_" + "z".repeat(61);

interface Row {
  name: string;
  method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT";
  /** With {placeholders} for the ids made in beforeAll. */
  path: string;
  /** Default: organisation A's API key. */
  as?: "operator" | "anonymous";
  /** Laid over the defaults (the credentials, and a JSON content type when there is a body). */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Runs the Worker with ALLOW_PRIVATE_WEBHOOK_URLS=false. */
  production?: true;
  status: number;
  code: string;
  /** The field named in `details`, when the error is about one field. */
  field?: string;
}

const orgs = "/api/v1/organisations";
const keys = "/api/v1/organisations/{orgA}/api-keys";
const hooks = "/api/v1/organisations/{orgA}/webhooks";
const envHooks = "/api/v1/environments/501/webhooks";
const validHook = j({ url: "{receiver}/hooks/bad-input-routes" });

const rows: Row[] = [
  // Organisations (operator)
  { name: "create an organisation without credentials", method: "POST", path: orgs, as: "anonymous", body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "create an organisation with an organisation's API key", method: "POST", path: orgs, body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "create an organisation with a wrong operator token", method: "POST", path: orgs, headers: { Authorization: "Bearer not-the-token" }, body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "create an organisation with a 64 KiB operator token", method: "POST", path: orgs, headers: { Authorization: `Bearer ${"t".repeat(65_536)}` }, body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "list organisations with an organisation's API key", method: "GET", path: orgs, status: 401, code: "unauthorized" },
  { name: "an organisation without a name", method: "POST", path: orgs, as: "operator", body: j({}), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation with an empty name", method: "POST", path: orgs, as: "operator", body: j({ name: "" }), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation with a blank name", method: "POST", path: orgs, as: "operator", body: j({ name: "   " }), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation placed in a database the Worker has no binding for", method: "POST", path: orgs, as: "operator", body: j({ name: "x", database: "DB_9" }), status: 400, code: "validation_failed", field: "database" },
  { name: "an organisation placed in a binding that is no database of its log", method: "POST", path: orgs, as: "operator", body: j({ name: "x", database: "AUDIT_BUCKET" }), status: 400, code: "validation_failed", field: "database" },
  { name: "an organisation moved to another database", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ database: "DB_2" }), status: 400, code: "validation_failed" },
  { name: "an organisation with a numeric name", method: "POST", path: orgs, as: "operator", body: j({ name: 5 }), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation with a null name", method: "POST", path: orgs, as: "operator", body: j({ name: null }), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation name of 201 characters", method: "POST", path: orgs, as: "operator", body: j({ name: "n".repeat(201) }), status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation with an unknown field", method: "POST", path: orgs, as: "operator", body: j({ name: "x", plan: "enterprise" }), status: 400, code: "validation_failed" },
  { name: "an organisation as malformed JSON", method: "POST", path: orgs, as: "operator", body: "{name: 'x'}", status: 400, code: "malformed_json" },
  { name: "an organisation as truncated JSON", method: "POST", path: orgs, as: "operator", body: '{"name": "trunc', status: 400, code: "malformed_json" },
  { name: "an organisation with trailing garbage", method: "POST", path: orgs, as: "operator", body: '{"name": "x"} {"name": "y"}', status: 400, code: "malformed_json" },
  { name: "an organisation as a JSON string", method: "POST", path: orgs, as: "operator", body: '"x"', status: 400, code: "validation_failed" },
  { name: "an organisation as JSON null", method: "POST", path: orgs, as: "operator", body: "null", status: 400, code: "validation_failed" },
  { name: "an organisation as text/plain", method: "POST", path: orgs, as: "operator", headers: { "content-type": "text/plain" }, body: j({ name: "x" }), status: 415, code: "unsupported_media_type" },
  { name: "an organisation over 256 KiB", method: "POST", path: orgs, as: "operator", body: j({ name: HUGE }), status: 413, code: "payload_too_large" },
  { name: "an organisation as 10,000 nested arrays", method: "POST", path: orgs, as: "operator", body: NESTED_ARRAYS, status: 400, code: "validation_failed" },
  { name: "an organisation as 120,000 nested arrays", method: "POST", path: orgs, as: "operator", body: DEEPEST_UNDER_LIMIT, status: 400, code: "validation_failed" },
  { name: "an organisation name of 10,000 nested objects", method: "POST", path: orgs, as: "operator", body: `{"name": ${NESTED_OBJECTS}}`, status: 400, code: "validation_failed", field: "name" },
  { name: "an organisation name with invalid UTF-8 bytes", method: "POST", path: orgs, as: "operator", body: bytes('{"name": "caf', [0xff, 0xfe], '"}'), status: 400, code: "malformed_json" },
  { name: "an organisation name with an overlong UTF-8 slash", method: "POST", path: orgs, as: "operator", body: bytes('{"name": "a', [0xc0, 0xaf], 'b"}'), status: 400, code: "malformed_json" },
  { name: "an organisation name with a UTF-8 encoded surrogate", method: "POST", path: orgs, as: "operator", body: bytes('{"name": "a', [0xed, 0xa0, 0x80], 'b"}'), status: 400, code: "malformed_json" },
  { name: "an organisation name with an unpaired high surrogate escape", method: "POST", path: orgs, as: "operator", body: '{"name": "a\\ud800b"}', status: 400, code: "malformed_json" },
  { name: "an organisation name with an unpaired low surrogate escape", method: "POST", path: orgs, as: "operator", body: '{"name": "\\udfff"}', status: 400, code: "malformed_json" },
  { name: "an organisation with a surrogate escape reversed", method: "POST", path: orgs, as: "operator", body: '{"name": "\\udea9\\ud83d"}', status: 400, code: "malformed_json" },
  { name: "an organisations page of 0", method: "GET", path: `${orgs}?page_size=0`, as: "operator", status: 400, code: "validation_failed", field: "page_size" },
  { name: "an organisations cursor that is not one", method: "GET", path: `${orgs}?cursor=${encodeURIComponent(SQL)}`, as: "operator", status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "an unknown organisations query parameter", method: "GET", path: `${orgs}?name=${encodeURIComponent(SCRIPT)}`, as: "operator", status: 400, code: "validation_failed" },

  // One organisation, and who may enter its admin pages through Access (operator)
  { name: "an organisation read with its own API key", method: "GET", path: `${orgs}/{orgA}`, status: 401, code: "unauthorized" },
  { name: "an organisation patched without credentials", method: "PATCH", path: `${orgs}/{orgA}`, as: "anonymous", body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "an organisation patched with its own API key", method: "PATCH", path: `${orgs}/{orgA}`, body: j({ access_emails: ["me@evil.test"] }), status: 401, code: "unauthorized" },
  { name: "an organisation patched with the key as Bearer", method: "PATCH", path: `${orgs}/{orgA}`, headers: { Authorization: `Bearer ${"fh_0123456789_" + "x".repeat(43)}` }, body: j({ name: "x" }), status: 401, code: "unauthorized" },
  { name: "an organisation that does not exist, read", method: "GET", path: `${orgs}/999999999`, as: "operator", status: 404, code: "not_found" },
  { name: "an organisation that does not exist, patched", method: "PATCH", path: `${orgs}/999999999`, as: "operator", body: j({ access_domains: ["x.test"] }), status: 404, code: "not_found" },
  { name: "organisation 'abc' patched", method: "PATCH", path: `${orgs}/abc`, as: "operator", body: j({ name: "x" }), status: 400, code: "validation_failed", field: "org" },
  { name: "an organisation patch with nothing in it", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({}), status: 400, code: "validation_failed" },
  { name: "an organisation patch with an unknown field", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ plan: "enterprise" }), status: 400, code: "validation_failed" },
  { name: "an organisation renamed to blank", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ name: "  " }), status: 400, code: "validation_failed", field: "name" },
  { name: "access emails as a string", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: "ada@example.com" }), status: 400, code: "validation_failed", field: "access_emails" },
  { name: "an access email that is not one", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: ["ada"] }), status: 400, code: "validation_failed", field: "access_emails.0" },
  { name: "an access email with a script", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: [`${SCRIPT}@example.com`] }), status: 400, code: "validation_failed", field: "access_emails.0" },
  { name: "an access email of null", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: [null] }), status: 400, code: "validation_failed", field: "access_emails.0" },
  { name: "an access email of 330 characters", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: [`${"a".repeat(318)}@example.com`] }), status: 400, code: "validation_failed", field: "access_emails.0" },
  { name: "501 access emails", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: Array.from({ length: 501 }, (_, i) => `p${i}@example.com`) }), status: 400, code: "validation_failed", field: "access_emails" },
  { name: "an access domain with a wildcard", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_domains: ["*.example.com"] }), status: 400, code: "validation_failed", field: "access_domains.0" },
  { name: "an access domain without a dot", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_domains: ["localhost"] }), status: 400, code: "validation_failed", field: "access_domains.0" },
  { name: "an access domain given as a URL", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_domains: ["https://example.com"] }), status: 400, code: "validation_failed", field: "access_domains.0" },
  { name: "an access domain given as an email", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_domains: ["ada@example.com"] }), status: 400, code: "validation_failed", field: "access_domains.0" },
  { name: "an organisation patch as text/plain", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", headers: { "content-type": "text/plain" }, body: j({ name: "x" }), status: 415, code: "unsupported_media_type" },
  { name: "an organisation patch over 256 KiB", method: "PATCH", path: `${orgs}/{orgA}`, as: "operator", body: j({ access_emails: [HUGE] }), status: 413, code: "payload_too_large" },
  { name: "an organisation created with a bad access email", method: "POST", path: orgs, as: "operator", body: j({ name: "x", access_emails: ["not an email"] }), status: 400, code: "validation_failed", field: "access_emails.0" },
  { name: "a Flagsmith webhook body posted to the events API", method: "POST", path: "/api/v1/events", body: j({ event_type: "AUDIT_LOG_CREATED", data: { created_date: "2020-02-23T17:30:57.006318Z", log: "x", related_object_type: "FEATURE" } }), status: 400, code: "flagsmith_webhook_body" },
  { name: "Flagsmith itself posting to the events API", method: "POST", path: "/api/v1/events", as: "anonymous", headers: { "x-flagsmith-signature": "0".repeat(64) }, body: j({ event_type: "FLAG_DELETED", data: {} }), status: 401, code: "unauthorized" },

  // API keys (operator)
  { name: "an API key for an organisation that does not exist", method: "POST", path: `${orgs}/999999999/api-keys`, as: "operator", body: j({ name: "k" }), status: 404, code: "not_found" },
  { name: "an API key for organisation 'abc'", method: "POST", path: `${orgs}/abc/api-keys`, as: "operator", body: j({ name: "k" }), status: 400, code: "validation_failed", field: "org" },
  { name: "an API key for organisation 0", method: "POST", path: `${orgs}/0/api-keys`, as: "operator", body: j({ name: "k" }), status: 400, code: "validation_failed", field: "org" },
  { name: "an API key for an organisation id past 2^53", method: "POST", path: `${orgs}/9007199254740993/api-keys`, as: "operator", body: j({ name: "k" }), status: 400, code: "validation_failed", field: "org" },
  { name: "an API key without a name", method: "POST", path: keys, as: "operator", body: j({}), status: 400, code: "validation_failed", field: "name" },
  { name: "an API key with scopes", method: "POST", path: keys, as: "operator", body: j({ name: "k", scopes: ["admin"] }), status: 400, code: "validation_failed" },
  { name: "an API key as truncated JSON", method: "POST", path: keys, as: "operator", body: '{"name"', status: 400, code: "malformed_json" },
  { name: "an API key as a form", method: "POST", path: keys, as: "operator", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "name=k", status: 415, code: "unsupported_media_type" },
  { name: "an API key over 256 KiB", method: "POST", path: keys, as: "operator", body: j({ name: HUGE }), status: 413, code: "payload_too_large" },
  { name: "an API key created with an organisation's own key", method: "POST", path: keys, body: j({ name: "k" }), status: 401, code: "unauthorized" },
  { name: "API keys listed with an organisation's own key", method: "GET", path: keys, status: 401, code: "unauthorized" },
  { name: "API keys of an organisation that does not exist", method: "GET", path: `${orgs}/999999999/api-keys`, as: "operator", status: 404, code: "not_found" },
  { name: "revoking a key that does not exist", method: "DELETE", path: `${keys}/key_doesnotexist`, as: "operator", status: 404, code: "not_found" },
  { name: "revoking A's key under B's path", method: "DELETE", path: `${orgs}/{orgB}/api-keys/{keyA}`, as: "operator", status: 404, code: "not_found" },
  { name: "revoking a key with an id of 65 characters", method: "DELETE", path: `${keys}/${"k".repeat(65)}`, as: "operator", status: 400, code: "validation_failed", field: "id" },
  { name: "revoking a key with an organisation's own key", method: "DELETE", path: `${keys}/{keyA}`, status: 401, code: "unauthorized" },

  // Organisation webhooks: create
  { name: "a webhook without a url", method: "POST", path: hooks, body: j({ name: "h" }), status: 400, code: "validation_failed", field: "url" },
  { name: "a webhook with a numeric url", method: "POST", path: hooks, body: j({ url: 443 }), status: 400, code: "validation_failed", field: "url" },
  { name: "a webhook url that is not a URL", method: "POST", path: hooks, body: j({ url: SCRIPT }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "a webhook url with SQL in it", method: "POST", path: hooks, body: j({ url: SQL }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "a javascript: webhook url", method: "POST", path: hooks, body: j({ url: "javascript:alert(1)" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "a file: webhook url", method: "POST", path: hooks, body: j({ url: "file:///etc/passwd" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "a webhook url with credentials", method: "POST", path: hooks, body: j({ url: "http://user:secret@127.0.0.1/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "a webhook url of 2,049 characters", method: "POST", path: hooks, body: j({ url: `https://public.example.test/${"p".repeat(2021)}` }), status: 400, code: "validation_failed", field: "url" },
  { name: "a webhook with enabled as a string", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", enabled: "true" }), status: 400, code: "validation_failed", field: "enabled" },
  { name: "a webhook with event_types as a string", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: "FLAG_UPDATED" }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "a webhook with no event_types", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: [] }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "a webhook with an unknown event type", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: [SCRIPT] }), status: 400, code: "validation_failed", field: "event_types.0" },
  { name: "a webhook with an event type twice", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: ["FLAG_UPDATED", "FLAG_UPDATED", "FLAG_DELETED", "AUDIT_LOG_CREATED"] }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "a webhook with an unknown event type among known ones", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: ["FLAG_UPDATED", "FLAG_DELETED", "AUDIT_LOG_CREATED", "NEW_VERSION_PUBLISHED", "NOT_A_TYPE"] }), status: 400, code: "validation_failed", field: "event_types.4" },
  { name: "a webhook with more event types than there are", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", event_types: ["FLAG_UPDATED", "FLAG_DELETED", "AUDIT_LOG_CREATED", "NEW_VERSION_PUBLISHED", "AUDIT_CHECKPOINT", "AUDIT_VERIFICATION_FAILED", "FLAG_UPDATED"] }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "a blank webhook secret", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", secret: "" }), status: 400, code: "validation_failed", field: "secret" },
  { name: "a webhook changed_by neither name nor email", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", changed_by: "first_name" }), status: 400, code: "validation_failed", field: "changed_by" },
  { name: "a webhook secret of 257 characters", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", secret: "s".repeat(257) }), status: 400, code: "validation_failed", field: "secret" },
  { name: "a webhook secret given as a number", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", secret: 12345678 }), status: 400, code: "validation_failed", field: "secret" },
  { name: "a webhook with an empty name", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", name: "" }), status: 400, code: "validation_failed", field: "name" },
  { name: "a webhook with custom headers", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", headers: { "X-Api-Key": "k" } }), status: 400, code: "validation_failed" },
  { name: "a webhook that sets its own id", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", id: "whk_mine" }), status: 400, code: "validation_failed" },
  { name: "a webhook as malformed JSON", method: "POST", path: hooks, body: "{'url': 'https://example.com'}", status: 400, code: "malformed_json" },
  { name: "a webhook as truncated JSON", method: "POST", path: hooks, body: validHook.slice(0, 20), status: 400, code: "malformed_json" },
  { name: "a webhook as an empty body", method: "POST", path: hooks, body: "", status: 400, code: "malformed_json" },
  { name: "a webhook as text/plain", method: "POST", path: hooks, headers: { "content-type": "text/plain" }, body: validHook, status: 415, code: "unsupported_media_type" },
  { name: "a webhook as multipart", method: "POST", path: hooks, headers: { "content-type": "multipart/form-data; boundary=x" }, body: "--x\r\n\r\n--x--", status: 415, code: "unsupported_media_type" },
  { name: "a webhook as JSON with a malformed media type parameter", method: "POST", path: hooks, headers: { "content-type": "application/json; charset" }, body: validHook, status: 415, code: "unsupported_media_type" },
  { name: "a webhook with a 16 KiB content type", method: "POST", path: hooks, headers: { "content-type": `text/${"x".repeat(16_384)}` }, body: validHook, status: 415, code: "unsupported_media_type" },
  { name: "a webhook over 256 KiB", method: "POST", path: hooks, body: j({ url: "{receiver}/hooks/x", name: HUGE }), status: 413, code: "payload_too_large" },
  { name: "a webhook as 10,000 nested arrays", method: "POST", path: hooks, body: NESTED_ARRAYS, status: 400, code: "validation_failed" },
  { name: "a webhook url of 10,000 nested objects", method: "POST", path: hooks, body: `{"url": ${NESTED_OBJECTS}}`, status: 400, code: "validation_failed", field: "url" },
  { name: "a webhook name with invalid UTF-8 bytes", method: "POST", path: hooks, body: bytes('{"url": "{receiver}/hooks/x", "name": "', [0xc3, 0x28], '"}'), status: 400, code: "malformed_json" },
  { name: "a webhook with an unpaired surrogate escape in a key", method: "POST", path: hooks, body: '{"url": "{receiver}/hooks/x", "\\ud800": 1}', status: 400, code: "malformed_json" },
  { name: "a webhook in another organisation", method: "POST", path: "/api/v1/organisations/{orgB}/webhooks", body: validHook, status: 404, code: "not_found" },
  { name: "a webhook in organisation 'abc'", method: "POST", path: "/api/v1/organisations/abc/webhooks", body: validHook, status: 404, code: "not_found" },
  { name: "a webhook without credentials", method: "POST", path: hooks, as: "anonymous", body: validHook, status: 401, code: "unauthorized" },
  { name: "a webhook with the operator token", method: "POST", path: hooks, as: "operator", body: validHook, status: 401, code: "unauthorized" },
  { name: "a webhook with a 64 KiB API key", method: "POST", path: hooks, headers: { Authorization: `Api-Key fh_0000000000_${"A".repeat(65_536)}` }, body: validHook, status: 401, code: "unauthorized" },

  // Organisation webhooks: read, update, delete, rotate, test, deliveries, recover
  { name: "a webhook that does not exist", method: "GET", path: `${hooks}/whk_doesnotexist`, status: 404, code: "not_found" },
  { name: "B's webhook under A's path", method: "GET", path: `${hooks}/{hookB}`, status: 404, code: "not_found" },
  { name: "B's webhook under B's path", method: "GET", path: "/api/v1/organisations/{orgB}/webhooks/{hookB}", status: 404, code: "not_found" },
  { name: "B's webhooks listed", method: "GET", path: "/api/v1/organisations/{orgB}/webhooks", status: 404, code: "not_found" },
  { name: "a webhook id of 65 characters", method: "GET", path: `${hooks}/${TOO_LONG_ID}`, status: 400, code: "validation_failed", field: "id" },
  { name: "a webhook id with SQL in it", method: "GET", path: `${hooks}/${encodeURIComponent(SQL)}`, status: 404, code: "not_found" },
  { name: "patching a webhook url to a number", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ url: 5 }), status: 400, code: "validation_failed", field: "url" },
  { name: "patching enabled to 'no'", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ enabled: "no" }), status: 400, code: "validation_failed", field: "enabled" },
  { name: "patching a webhook's scope", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ scope: "environment" }), status: 400, code: "validation_failed" },
  { name: "patching a webhook's id", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ id: "{hookB}" }), status: 400, code: "validation_failed" },
  { name: "patching a webhook url to javascript:", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ url: "javascript:alert(1)" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "patching with a name of 10,000 nested arrays", method: "PATCH", path: `${hooks}/{hookA}`, body: `{"name": ${NESTED_ARRAYS}}`, status: 400, code: "validation_failed", field: "name" },
  { name: "patching as malformed JSON", method: "PATCH", path: `${hooks}/{hookA}`, body: "{enabled: false}", status: 400, code: "malformed_json" },
  { name: "patching as text/plain", method: "PATCH", path: `${hooks}/{hookA}`, headers: { "content-type": "text/plain" }, body: j({ enabled: false }), status: 415, code: "unsupported_media_type" },
  { name: "patching over 256 KiB", method: "PATCH", path: `${hooks}/{hookA}`, body: j({ name: HUGE }), status: 413, code: "payload_too_large" },
  { name: "patching with invalid UTF-8 bytes", method: "PATCH", path: `${hooks}/{hookA}`, body: bytes('{"name": "', [0x80], '"}'), status: 400, code: "malformed_json" },
  { name: "patching B's webhook", method: "PATCH", path: `${hooks}/{hookB}`, body: j({ enabled: false }), status: 404, code: "not_found" },
  { name: "deleting B's webhook", method: "DELETE", path: `${hooks}/{hookB}`, status: 404, code: "not_found" },
  { name: "deleting a webhook that does not exist", method: "DELETE", path: `${hooks}/whk_doesnotexist`, status: 404, code: "not_found" },
  { name: "replacing a webhook with PUT", method: "PUT", path: `${hooks}/{hookA}`, body: validHook, status: 404, code: "not_found" },
  { name: "rotating to a blank secret", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, body: j({ secret: "" }), status: 400, code: "validation_failed", field: "secret" },
  { name: "rotating with staged not a boolean", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, body: j({ staged: "yes" }), status: 400, code: "validation_failed", field: "staged" },
  { name: "confirming a switch with no rotation under way", method: "POST", path: `${hooks}/{hookA}/rotate-secret/confirm`, status: 409, code: "no_rotation" },
  { name: "confirming B's rotation", method: "POST", path: `${hooks}/{hookB}/rotate-secret/confirm`, status: 404, code: "not_found" },
  { name: "rotating to a numeric secret", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, body: j({ secret: 123456789 }), status: 400, code: "validation_failed", field: "secret" },
  { name: "rotating with an unknown field", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, body: j({ grace_hours: 0 }), status: 400, code: "validation_failed" },
  { name: "rotating as malformed JSON", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, body: '{"secret": }', status: 400, code: "malformed_json" },
  { name: "rotating as text/plain", method: "POST", path: `${hooks}/{hookA}/rotate-secret`, headers: { "content-type": "text/plain" }, body: "rotate", status: 415, code: "unsupported_media_type" },
  { name: "rotating B's webhook", method: "POST", path: `${hooks}/{hookB}/rotate-secret`, status: 404, code: "not_found" },
  { name: "testing B's webhook", method: "POST", path: `${hooks}/{hookB}/test`, status: 404, code: "not_found" },
  { name: "testing a webhook that does not exist", method: "POST", path: `${hooks}/whk_doesnotexist/test`, status: 404, code: "not_found" },
  { name: "testing with a text/plain body", method: "POST", path: `${hooks}/{hookA}/test`, headers: { "content-type": "text/plain" }, body: "go", status: 415, code: "unsupported_media_type" },
  { name: "deliveries of status 'lost'", method: "GET", path: `${hooks}/{hookA}/deliveries?status=lost`, status: 400, code: "validation_failed", field: "status" },
  { name: "deliveries with page_size 201", method: "GET", path: `${hooks}/{hookA}/deliveries?page_size=201`, status: 400, code: "validation_failed", field: "page_size" },
  { name: "deliveries with a cursor that is not one", method: "GET", path: `${hooks}/{hookA}/deliveries?cursor=${encodeURIComponent(SCRIPT)}`, status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "deliveries with an audit log cursor", method: "GET", path: `${hooks}/{hookA}/deliveries?cursor=${btoa(j(["2021-01-01", 1]))}`, status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "deliveries with an unknown filter", method: "GET", path: `${hooks}/{hookA}/deliveries?event_type=FLAG_UPDATED`, status: 400, code: "validation_failed" },
  { name: "deliveries of B's webhook", method: "GET", path: `${hooks}/{hookB}/deliveries`, status: 404, code: "not_found" },
  { name: "recovering without since", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({}), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering since 'yesterday'", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({ since: "yesterday" }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering since epoch seconds", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({ since: 1624002626 }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering since 30 February", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({ since: "2021-02-30T00:00:00Z" }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering since SQL", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({ since: SQL }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering since a date with CR/LF", method: "POST", path: `${hooks}/{hookA}/recover`, body: j({ since: "2021-06-18T00:00:00Z\r\nX-Injected: 1" }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering as malformed JSON", method: "POST", path: `${hooks}/{hookA}/recover`, body: "since=2021", status: 400, code: "malformed_json" },
  { name: "recovering without a body", method: "POST", path: `${hooks}/{hookA}/recover`, status: 400, code: "validation_failed", field: "since" },
  { name: "recovering B's webhook", method: "POST", path: `${hooks}/{hookB}/recover`, body: j({ since: "2021-01-01T00:00:00Z" }), status: 404, code: "not_found" },
  { name: "stats over a window of 1h", method: "GET", path: `${hooks}/{hookA}/stats?window=1h`, status: 400, code: "validation_failed", field: "window" },
  { name: "stats over window 24H (case matters)", method: "GET", path: `${hooks}/{hookA}/stats?window=24H`, status: 400, code: "validation_failed", field: "window" },
  { name: "stats with an unknown parameter", method: "GET", path: `${hooks}/{hookA}/stats?since=2021-01-01`, status: 400, code: "validation_failed" },
  { name: "stats with a script as the window", method: "GET", path: `${hooks}/{hookA}/stats?window=${encodeURIComponent(SCRIPT)}`, status: 400, code: "validation_failed", field: "window" },
  { name: "stats of B's webhook", method: "GET", path: `${hooks}/{hookB}/stats`, status: 404, code: "not_found" },
  { name: "stats of a webhook that does not exist", method: "GET", path: `${hooks}/whk_doesnotexist/stats`, status: 404, code: "not_found" },
  { name: "stats without credentials", method: "GET", path: `${hooks}/{hookA}/stats`, as: "anonymous", status: 401, code: "unauthorized" },

  // Environment webhooks
  { name: "an environment webhook without a url", method: "POST", path: envHooks, body: j({}), status: 400, code: "validation_failed", field: "url" },
  { name: "an environment webhook for audit log events", method: "POST", path: envHooks, body: j({ url: "{receiver}/hooks/x", event_types: ["AUDIT_LOG_CREATED"] }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "an environment webhook as truncated JSON", method: "POST", path: envHooks, body: '{"url": "http', status: 400, code: "malformed_json" },
  { name: "an environment webhook over 256 KiB", method: "POST", path: envHooks, body: j({ url: "{receiver}/hooks/x", name: HUGE }), status: 413, code: "payload_too_large" },
  { name: "an environment webhook as 10,000 nested objects", method: "POST", path: envHooks, body: NESTED_OBJECTS, status: 400, code: "validation_failed" },
  { name: "an environment webhook with invalid UTF-8 bytes", method: "POST", path: envHooks, body: bytes('{"url": "{receiver}/hooks/', [0xf8, 0x88, 0x80, 0x80, 0x80], '"}'), status: 400, code: "malformed_json" },
  { name: "an environment webhook for an unknown api_key", method: "POST", path: "/api/v1/environments/env_key_nobody/webhooks", body: validHook, status: 404, code: "not_found" },
  { name: "an environment webhook for environment -1", method: "POST", path: "/api/v1/environments/-1/webhooks", body: validHook, status: 404, code: "not_found" },
  { name: "an environment webhook for an environment id with SQL", method: "POST", path: `/api/v1/environments/${encodeURIComponent(SQL)}/webhooks`, body: validHook, status: 404, code: "not_found" },
  { name: "A's organisation webhook under an environment", method: "GET", path: `${envHooks}/{hookA}`, status: 404, code: "not_found" },
  { name: "A's environment webhook under another environment", method: "GET", path: "/api/v1/environments/502/webhooks/{envHookA}", status: 404, code: "not_found" },
  { name: "B's environment webhook under the same environment id", method: "GET", path: `${envHooks}/{envHookB}`, status: 404, code: "not_found" },
  { name: "patching an environment webhook to audit log events", method: "PATCH", path: `${envHooks}/{envHookA}`, body: j({ event_types: ["AUDIT_LOG_CREATED"] }), status: 400, code: "validation_failed", field: "event_types" },
  { name: "patching B's environment webhook", method: "PATCH", path: `${envHooks}/{envHookB}`, body: j({ enabled: false }), status: 404, code: "not_found" },
  { name: "deleting B's environment webhook", method: "DELETE", path: `${envHooks}/{envHookB}`, status: 404, code: "not_found" },
  { name: "rotating B's environment webhook", method: "POST", path: `${envHooks}/{envHookB}/rotate-secret`, status: 404, code: "not_found" },
  { name: "rotating an environment webhook to a 257-character secret", method: "POST", path: `${envHooks}/{envHookA}/rotate-secret`, body: j({ secret: "s".repeat(257) }), status: 400, code: "validation_failed", field: "secret" },
  { name: "testing B's environment webhook", method: "POST", path: `${envHooks}/{envHookB}/test`, status: 404, code: "not_found" },
  { name: "deliveries of B's environment webhook", method: "GET", path: `${envHooks}/{envHookB}/deliveries`, status: 404, code: "not_found" },
  { name: "environment webhook deliveries with page_size -1", method: "GET", path: `${envHooks}/{envHookA}/deliveries?page_size=-1`, status: 400, code: "validation_failed", field: "page_size" },
  { name: "recovering an environment webhook since an empty string", method: "POST", path: `${envHooks}/{envHookA}/recover`, body: j({ since: "" }), status: 400, code: "validation_failed", field: "since" },
  { name: "recovering B's environment webhook", method: "POST", path: `${envHooks}/{envHookB}/recover`, body: j({ since: "2021-01-01T00:00:00Z" }), status: 404, code: "not_found" },
  { name: "stats of B's environment webhook", method: "GET", path: `${envHooks}/{envHookB}/stats`, status: 404, code: "not_found" },
  { name: "stats of an environment webhook over 30d", method: "GET", path: `${envHooks}/{envHookA}/stats?window=30d`, status: 400, code: "validation_failed", field: "window" },
  { name: "stats of A's organisation webhook under an environment", method: "GET", path: `${envHooks}/{hookA}/stats`, status: 404, code: "not_found" },

  // SSRF in production mode (ALLOW_PRIVATE_WEBHOOK_URLS=false)
  { name: "production: an organisation webhook to 10.0.0.1", method: "POST", path: hooks, production: true, body: j({ url: "https://10.0.0.1/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an organisation webhook to localhost.", method: "POST", path: hooks, production: true, body: j({ url: "https://localhost./hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an organisation webhook to octal 0177.0.0.1", method: "POST", path: hooks, production: true, body: j({ url: "https://0177.0.0.1/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an organisation webhook to a mapped metadata address", method: "POST", path: hooks, production: true, body: j({ url: "https://[::ffff:a9fe:a9fe]/latest" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: a public name before @ and a private host after", method: "POST", path: hooks, production: true, body: j({ url: "https://public.example.test@10.0.0.1/" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an environment webhook to a name resolving to 10.0.0.5", method: "POST", path: envHooks, production: true, body: j({ url: "https://internal.example.test/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an environment webhook by api_key to [::1]", method: "POST", path: "/api/v1/environments/env_key_bad_input/webhooks", production: true, body: j({ url: "https://[::1]/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: an environment webhook to a new environment, resolving to metadata", method: "POST", path: "/api/v1/environments/777/webhooks", production: true, body: j({ url: "https://metadata.example.test/" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: patching an organisation webhook to a name resolving to metadata", method: "PATCH", path: `${hooks}/{hookA}`, production: true, body: j({ url: "https://metadata.example.test/" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: patching an environment webhook to plain http", method: "PATCH", path: `${envHooks}/{envHookA}`, production: true, body: j({ url: "http://public.example.test/hook" }), status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: testing a webhook saved with a loopback url", method: "POST", path: `${hooks}/{hookA}/test`, production: true, status: 400, code: "url_not_allowed", field: "url" },
  { name: "production: testing an environment webhook saved with a loopback url", method: "POST", path: `${envHooks}/{envHookA}/test`, production: true, status: 400, code: "url_not_allowed", field: "url" },

  // Deliveries and events
  { name: "a delivery that does not exist", method: "GET", path: "/api/v1/deliveries/dlv_doesnotexist", status: 404, code: "not_found" },
  { name: "B's delivery", method: "GET", path: "/api/v1/deliveries/{dlvB}", status: 404, code: "not_found" },
  { name: "redelivering B's delivery", method: "POST", path: "/api/v1/deliveries/{dlvB}/redeliver", status: 404, code: "not_found" },
  { name: "redelivering a delivery that does not exist", method: "POST", path: "/api/v1/deliveries/dlv_doesnotexist/redeliver", status: 404, code: "not_found" },
  { name: "redelivering with a text/plain body", method: "POST", path: "/api/v1/deliveries/{dlvA}/redeliver", headers: { "content-type": "text/plain" }, body: "again", status: 415, code: "unsupported_media_type" },
  { name: "retrying B's delivery now", method: "POST", path: "/api/v1/deliveries/{dlvB}/retry", status: 404, code: "not_found" },
  { name: "retrying a delivery that does not exist", method: "POST", path: "/api/v1/deliveries/dlv_doesnotexist/retry", status: 404, code: "not_found" },
  { name: "retrying a delivered delivery now", method: "POST", path: "/api/v1/deliveries/{dlvA}/retry", status: 409, code: "delivery_not_pending" },
  { name: "retrying with a text/plain body", method: "POST", path: "/api/v1/deliveries/{dlvA}/retry", headers: { "content-type": "text/plain" }, body: "now", status: 415, code: "unsupported_media_type" },
  { name: "retrying without credentials", method: "POST", path: "/api/v1/deliveries/{dlvA}/retry", as: "anonymous", status: 401, code: "unauthorized" },
  { name: "retrying with GET", method: "GET", path: "/api/v1/deliveries/{dlvA}/retry", status: 404, code: "not_found" },
  { name: "a delivery id of 65 characters", method: "GET", path: `/api/v1/deliveries/dlv_${"z".repeat(61)}`, status: 400, code: "validation_failed", field: "id" },
  { name: "a delivery id with SQL in it", method: "GET", path: `/api/v1/deliveries/${encodeURIComponent(SQL)}`, status: 404, code: "not_found" },
  { name: "a delivery id with a script in it", method: "GET", path: `/api/v1/deliveries/${encodeURIComponent(SCRIPT)}`, status: 404, code: "not_found" },
  { name: "a delivery without credentials", method: "GET", path: "/api/v1/deliveries/{dlvA}", as: "anonymous", status: 401, code: "unauthorized" },
  { name: "deleting a delivery", method: "DELETE", path: "/api/v1/deliveries/{dlvA}", status: 404, code: "not_found" },
  { name: "B's event", method: "GET", path: "/api/v1/events/{eventB}", status: 404, code: "not_found" },
  { name: "an event id of 65 characters", method: "GET", path: `/api/v1/events/evt_${"z".repeat(61)}`, status: 400, code: "validation_failed", field: "event_id" },
  { name: "an Idempotency-Key of 129 characters", method: "POST", path: "/api/v1/events", headers: { "Idempotency-Key": "k".repeat(129) }, body: j({ type: "CUSTOM", log: "x", related_object: { type: "X" } }), status: 400, code: "validation_failed", field: "idempotency-key" },
  { name: "an Idempotency-Key of 16 KiB", method: "POST", path: "/api/v1/events", headers: { "Idempotency-Key": "k".repeat(16_384) }, body: j({ type: "CUSTOM", log: "x", related_object: { type: "X" } }), status: 400, code: "validation_failed", field: "idempotency-key" },
  { name: "an event log with invalid UTF-8 bytes", method: "POST", path: "/api/v1/events", body: bytes('{"type": "CUSTOM", "log": "', [0xe2, 0x82], '", "related_object": {"type": "X"}}'), status: 400, code: "malformed_json" },
  { name: "an event log with an unpaired surrogate escape", method: "POST", path: "/api/v1/events", body: '{"type": "CUSTOM", "log": "\\ud83d", "related_object": {"type": "X"}}', status: 400, code: "malformed_json" },
  { name: "a batch with an unpaired surrogate escape deep in it", method: "POST", path: "/api/v1/events/batch", body: j({ events: [{ type: "CUSTOM", log: "ok", related_object: { type: "X" } }] }).replace('"ok"', '"ok \\udc00"'), status: 400, code: "malformed_json" },
  { name: "an unknown API route", method: "GET", path: "/api/v1/flags", status: 404, code: "not_found" },
];

/** What a request could change: row counts and the mutable columns of what exists. */
async function stored() {
  const all = async (sql: string) => (await env.DB.prepare(sql).all()).results;
  return {
    counts: Object.fromEntries(
      await Promise.all(
        ["organisations", "organisation_access", "ui_sessions", "api_keys", "projects", "environments", "audit_entries", "webhooks", "deliveries", "attempts", "webhook_health"].map(
          async (t) => [t, await countRows(t)],
        ),
      ),
    ),
    webhooks: await all("select * from webhooks order by id"),
    deliveries: await all("select id, status, attempt_count, cycle_start, next_attempt_at, updated_at from deliveries order by id"),
    keys: await all("select id, name, revoked_at from api_keys order by id"),
    organisations: await all("select * from organisations order by id"),
  };
}

async function send(row: Row): Promise<Response> {
  const headers = new Headers();
  if (row.as === "operator") headers.set("authorization", ADMIN.Authorization);
  else if (row.as !== "anonymous") headers.set("authorization", authA.Authorization);
  if (row.body !== undefined) headers.set("content-type", "application/json");
  for (const [name, value] of Object.entries(row.headers ?? {})) headers.set(name, value);
  const body = typeof row.body === "string" ? fill(row.body) : row.body;
  const req = new Request(`http://flaghook.test${fill(row.path)}`, { method: row.method, headers, body });
  return worker.fetch(req, row.production ? production : env, createExecutionContext());
}

describe("bad input on every route answers 4xx with the error shape and changes nothing", () => {
  it("covers at least 60 requests", () => expect(rows.length).toBeGreaterThanOrEqual(60));

  it.each(rows)("$name -> $status $code", async (row) => {
    const before = await stored();

    const res = await send(row);

    await expectError(res, row.status, row.code, row.field);
    expect(await stored()).toEqual(before);
  });
});

/** Text that looks like an attack but is valid input: stored as sent, answered as JSON strings. */
const HOSTILE = [
  SQL,
  SCRIPT,
  "Robert'); DROP TABLE webhooks;--",
  "line one\r\nSet-Cookie: session=stolen",
  '"quotes" and \\backslashes\\ and \u2028 separators',
  "{{7*7}} ${7*7} %s %n",
  "nul \u0000 byte",
  "\\ud800 is a backslash and text, not an escape; \ud83d\udea9 is a pair",
];

async function exactJson(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  const text = await res.text();
  return { text, body: JSON.parse(text) as Record<string, unknown> };
}

describe("hostile but valid text is stored verbatim and answered escaped in JSON", () => {
  it.each(HOSTILE)("an organisation and an API key named %j", async (name) => {
    const org = await exactJson(await call(orgs, { method: "POST", headers: ADMIN, json: { name } }), 201);
    expect(org.body.name).toBe(name);
    expect(org.text).toContain(`"name":${JSON.stringify(name)}`);
    const key = await exactJson(await call(`${orgs}/${org.body.id}/api-keys`, { method: "POST", headers: ADMIN, json: { name } }), 201);
    expect(key.body.name).toBe(name);
    expect(await env.DB.prepare("select name from organisations where id = ?").bind(org.body.id).first("name")).toBe(name);
    expect(await env.DB.prepare("select name from api_keys where id = ?").bind(key.body.id).first("name")).toBe(name);
    const listed = (await exactJson(await call(`${orgs}/${org.body.id}/api-keys`, { headers: ADMIN }), 200)).body as { results: { name: string }[] };
    expect(listed.results.map((k) => k.name)).toEqual([name]);
    expect(await countRows("audit_entries")).toBeGreaterThan(0); // the tables are all still there
  });

  it.each(HOSTILE)("webhooks of both scopes named %j, with it as their secret, audited as such", async (text) => {
    const { orgId, auth } = await createOrganisation();
    const url = `${receiverUrl()}/hooks/bad-input-hostile`;
    for (const path of [`/api/v1/organisations/${orgId}/webhooks`, "/api/v1/environments/640/webhooks"]) {
      const created = await exactJson(await call(path, { method: "POST", headers: auth, json: { url, name: text, secret: `secret ${text}` } }), 201);
      expect(created.body).toMatchObject({ name: text, secret: `secret ${text}` });
      const read = await exactJson(await call(`${path}/${created.body.id}`, { headers: auth }), 200);
      expect(read.body.name).toBe(text);
      expect(await env.DB.prepare("select name from webhooks where id = ?").bind(created.body.id).first("name")).toBe(text);
      // The secret signs exactly as given: the seed's X-Flagsmith-Signature over the test payload.
      const sent = await exactJson(await call(`${path}/${created.body.id}/test`, { method: "POST", headers: auth }), 200);
      const [request] = (await (await fetch(`${receiverUrl()}/_control/bad-input-hostile`)).json() as { requests: { headers: Record<string, string>; body: string }[] }).requests.filter(
        (r) => r.headers["webhook-id"] === sent.body.delivery_id,
      );
      const key = await crypto.subtle.importKey("raw", utf8(`secret ${text}`), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(request.body)));
      expect(request.headers["x-flagsmith-signature"]).toBe([...mac].map((b) => b.toString(16).padStart(2, "0")).join(""));
    }
    const logs = await eventually(async () => {
      const page = (await (await call("/api/v1/audit/?related_object_type=WEBHOOK", { headers: auth })).json()) as { results: { log: string }[] };
      return page.results.length === 2 ? page.results.map((r) => r.log) : undefined;
    });
    expect(logs).toEqual([`Webhook created: ${text} (${receiverUrl()}/hooks/…)`, `Webhook created: ${text} (${receiverUrl()}/hooks/…)`]);
  });

  it("a webhook url with a script in its path is stored as its URL serialisation, percent-encoded", async () => {
    const { orgId, auth } = await createOrganisation();
    const res = await call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${SCRIPT}?q=${SQL}` } });
    const { body } = await exactJson(res, 201);
    const expected = `${receiverUrl()}/hooks/%3Cscript%3Ealert(1)%3C/script%3E?q=%27;%20drop%20table%20audit_entries;%20--`;
    expect(body.url).toBe(expected);
    expect(await env.DB.prepare("select url from webhooks where id = ?").bind(body.id).first("url")).toBe(expected);
  });

  it.each(HOSTILE)("every text field of ingested events holding %j, read back from the audit log and found by search", async (text) => {
    const { auth } = await createOrganisation();
    const custom = {
      type: "CUSTOM",
      log: `custom ${text}`,
      author: { id: 7, email: `${text}@example.test`, first_name: text, last_name: text },
      api_key_name: text,
      project: { id: 1, name: text },
      environment: { id: 2, name: text, api_key: text },
      related_object: { type: "CHANGE_REQUEST", id: 3, uuid: text },
    };
    const override = {
      id: text,
      type: "IDENTITY_OVERRIDE_UPDATED",
      project: { id: 1, name: text },
      environment: { id: 2, name: text },
      feature: { id: 4, name: text, type: text, description: text, initial_value: text },
      identity: { id: 5, identifier: text },
      new_state: { enabled: true, feature_state_value: text },
    };
    const res = await call("/api/v1/events/batch", { method: "POST", headers: auth, json: { events: [custom, override] } });
    const { results } = (await exactJson(res, 202)).body as { results: { event_id: string }[] };
    const entries = [];
    for (const { event_id } of results) {
      const { audit_entry_id } = await recorded(auth, event_id);
      entries.push((await exactJson(await call(`/api/v1/audit/${audit_entry_id}`, { headers: auth }), 200)).body);
    }
    expect(entries[0]).toMatchObject({
      log: `custom ${text}`,
      author: { id: 7, email: `${text}@example.test`, first_name: text, last_name: text },
      api_key_name: text,
      project: { id: 1, name: text },
      environment: { id: 2, name: text },
      related_object_type: "CHANGE_REQUEST",
      related_object_uuid: text,
    });
    expect(entries[1]).toMatchObject({
      log: `Flag state / Remote config value updated for feature '${text}' and identity '${text}'`,
      change_details: [{ field: "enabled", old: null, new: true }, { field: "feature_state_value", old: null, new: text }],
    });
    const search = (await exactJson(await call(`/api/v1/audit/?search=${encodeURIComponent(text)}`, { headers: auth }), 200)).body as { results: { id: number }[] };
    expect(search.results.map((r) => r.id).sort()).toEqual(entries.map((e) => e.id).sort());
  });

  it("an Idempotency-Key of SQL is only a key: sent twice, it is one event", async () => {
    const { orgId, auth } = await createOrganisation();
    const send = () => call("/api/v1/events", { method: "POST", headers: { ...auth, "Idempotency-Key": SQL }, json: { type: "CUSTOM", log: SCRIPT, related_object: { type: "X" } } });
    const first = (await exactJson(await send(), 202)).body;
    const second = (await exactJson(await send(), 202)).body;
    expect(second.event_id).toBe(first.event_id);
    await recorded(auth, first.event_id as string);
    expect(await countRows("audit_entries", "org_id = ? and log = ?", orgId, SCRIPT)).toBe(1);
  });

  it("an audit search of 256 characters, the most allowed, answers 200 with what contains it", async () => {
    const { auth } = await createOrganisation();
    const log = `${SQL} ${"é".repeat(200)} ${SCRIPT}`.slice(0, 256);
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: { type: "CUSTOM", log: `before ${log} after`, related_object: { type: "X" } } });
    const { audit_entry_id } = await recorded(auth, ((await res.json()) as { event_id: string }).event_id);
    expect(log).toHaveLength(256);
    const page = (await exactJson(await call(`/api/v1/audit/?search=${encodeURIComponent(log.toUpperCase())}`, { headers: auth }), 200)).body as { results: { id: number }[] };
    expect(page.results.map((r) => r.id)).toEqual([audit_entry_id]);
  });
});
