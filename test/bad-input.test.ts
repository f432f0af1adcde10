// Bad input (SPEC 3, 6, 9): every malformed, oversized or unauthorised request answers 4xx with the
// one error shape, and nothing reaches the audit log, projects or environments.
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, countRows, createOrganisation, eventually, expectError, recorded } from "./helpers";

let auth: Record<string, string>;

beforeAll(async () => {
  const org = await createOrganisation("Bad input");
  auth = org.auth;
  // Creating the key audits a system event through the queue; let it land before counting.
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 1);
});

/** A valid event, so that a row fails only for the reason it names. Its ids never appear elsewhere. */
const valid = {
  type: "FLAG_STATE_UPDATED",
  project: { id: 9001, name: "Never stored" },
  environment: { id: 9002, name: "Never stored" },
  feature: { id: 1, name: "butter_bar" },
  new_state: { enabled: true, feature_state_value: null },
};
const withField = (fields: Record<string, unknown>) => JSON.stringify({ ...valid, ...fields });
const without = (field: string, fields: Record<string, unknown> = {}) => {
  const event: Record<string, unknown> = { ...valid, ...fields };
  delete event[field];
  return JSON.stringify(event);
};

interface Row {
  name: string;
  method?: "GET" | "POST";
  path?: string;
  /** Laid over the defaults: the organisation's valid `Api-Key` header, and a JSON content type on POST. */
  headers?: Record<string, string>;
  /** Leaves the default Authorization header out. */
  anonymous?: true;
  body?: string;
  status: number;
  code: string;
  /** The field named in `details`, when the error is about one field. */
  field?: string;
}

const JSON_TYPE = { "content-type": "application/json" };


const rows: Row[] = [
  // Body syntax and transport
  { name: "malformed JSON", body: "{type: FLAG_STATE_UPDATED}", status: 400, code: "malformed_json" },
  { name: "truncated JSON", body: withField({}).slice(0, 40), status: 400, code: "malformed_json" },
  { name: "an empty body", body: "", status: 400, code: "malformed_json" },
  { name: "a JSON array instead of an object", body: "[]", status: 400, code: "validation_failed" },
  {
    name: "a text/plain body",
    headers: { "content-type": "text/plain" },
    body: withField({}),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a form-encoded body",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "type=FLAG_STATE_UPDATED",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a body over 256 KiB",
    body: withField({ log: "x".repeat(256 * 1024) }),
    status: 413,
    code: "payload_too_large",
  },
  // Event fields
  { name: "an unknown type", body: withField({ type: "FLAG_EXPLODED" }), status: 400, code: "validation_failed", field: "type" },
  { name: "a missing type", body: without("type"), status: 400, code: "validation_failed", field: "type" },
  { name: "an unknown top-level field", body: withField({ colour: "red" }), status: 400, code: "validation_failed" },
  { name: "a numeric id", body: withField({ id: 5 }), status: 400, code: "validation_failed", field: "id" },
  { name: "an id over 128 characters", body: withField({ id: "i".repeat(129) }), status: 400, code: "validation_failed", field: "id" },
  { name: "a string project id", body: withField({ project: { id: "12" } }), status: 400, code: "validation_failed", field: "project.id" },
  { name: "a negative environment id", body: withField({ environment: { id: -1 } }), status: 400, code: "validation_failed", field: "environment.id" },
  { name: "a fractional feature id", body: withField({ feature: { id: 1.5, name: "f" } }), status: 400, code: "validation_failed", field: "feature.id" },
  { name: "a string `enabled`", body: withField({ new_state: { enabled: "true" } }), status: 400, code: "validation_failed", field: "new_state.enabled" },
  { name: "an author given as a string", body: withField({ author: "kyle@example.com" }), status: 400, code: "validation_failed", field: "author" },
  { name: "a numeric log", body: withField({ type: "CUSTOM", log: 5, related_object: { type: "X" } }), status: 400, code: "validation_failed", field: "log" },
  // Fields each type needs
  { name: "FEATURE_CREATED without a feature", body: without("feature", { type: "FEATURE_CREATED" }), status: 400, code: "validation_failed", field: "feature" },
  { name: "FEATURE_DELETED with a null feature", body: withField({ type: "FEATURE_DELETED", feature: null }), status: 400, code: "validation_failed", field: "feature" },
  { name: "FLAG_STATE_UPDATED without an environment", body: without("environment"), status: 400, code: "validation_failed", field: "environment" },
  { name: "FLAG_STATE_UPDATED without a new_state", body: without("new_state"), status: 400, code: "validation_failed", field: "new_state" },
  { name: "REMOTE_CONFIG_UPDATED without a feature", body: without("feature", { type: "REMOTE_CONFIG_UPDATED" }), status: 400, code: "validation_failed", field: "feature" },
  { name: "IDENTITY_OVERRIDE_UPDATED without an identity", body: withField({ type: "IDENTITY_OVERRIDE_UPDATED" }), status: 400, code: "validation_failed", field: "identity" },
  { name: "IDENTITY_OVERRIDE_DELETED without an identity", body: withField({ type: "IDENTITY_OVERRIDE_DELETED" }), status: 400, code: "validation_failed", field: "identity" },
  { name: "SEGMENT_OVERRIDE_UPDATED without a segment", body: withField({ type: "SEGMENT_OVERRIDE_UPDATED" }), status: 400, code: "validation_failed", field: "segment" },
  { name: "SEGMENT_CREATED without a segment", body: withField({ type: "SEGMENT_CREATED" }), status: 400, code: "validation_failed", field: "segment" },
  { name: "ENVIRONMENT_CREATED without an environment", body: without("environment", { type: "ENVIRONMENT_CREATED" }), status: 400, code: "validation_failed", field: "environment" },
  { name: "CUSTOM without a log", body: withField({ type: "CUSTOM", related_object: { type: "CHANGE_REQUEST", id: 5 } }), status: 400, code: "validation_failed", field: "log" },
  { name: "CUSTOM with an empty log", body: withField({ type: "CUSTOM", log: "", related_object: { type: "CHANGE_REQUEST" } }), status: 400, code: "validation_failed", field: "log" },
  // Dates
  { name: "an occurred_at that is not a date", body: withField({ occurred_at: "yesterday" }), status: 400, code: "validation_failed", field: "occurred_at" },
  { name: "an occurred_at on 30 February", body: withField({ occurred_at: "2021-02-30T10:00:00Z" }), status: 400, code: "validation_failed", field: "occurred_at" },
  { name: "an occurred_at in month 13", body: withField({ occurred_at: "2021-13-01T10:00:00Z" }), status: 400, code: "validation_failed", field: "occurred_at" },
  { name: "an occurred_at at 25 o'clock", body: withField({ occurred_at: "2021-06-18T25:00:00Z" }), status: 400, code: "validation_failed", field: "occurred_at" },
  { name: "an occurred_at at 24:00", body: withField({ occurred_at: "2021-06-18T24:00:00Z" }), status: 400, code: "validation_failed", field: "occurred_at" },
  { name: "an occurred_at given as epoch seconds", body: withField({ occurred_at: 1624002626 }), status: 400, code: "validation_failed", field: "occurred_at" },
  // Batches
  { name: "a batch that is a bare array", path: "/api/v1/events/batch", body: JSON.stringify([valid]), status: 400, code: "validation_failed" },
  { name: "an empty batch", path: "/api/v1/events/batch", body: JSON.stringify({ events: [] }), status: 400, code: "validation_failed", field: "events" },
  {
    name: "a batch of 101 events",
    path: "/api/v1/events/batch",
    body: JSON.stringify({ events: Array.from({ length: 101 }, () => valid) }),
    status: 400,
    code: "validation_failed",
    field: "events",
  },
  {
    name: "a batch with one invalid event",
    path: "/api/v1/events/batch",
    body: JSON.stringify({ events: [valid, { ...valid, type: "NOPE" }, valid] }),
    status: 400,
    code: "validation_failed",
    field: "events.1.type",
  },
  // Audit log queries
  { name: "page_size 0", method: "GET", path: "/api/v1/audit/?page_size=0", status: 400, code: "validation_failed", field: "page_size" },
  { name: "page_size 201", method: "GET", path: "/api/v1/audit/?page_size=201", status: 400, code: "validation_failed", field: "page_size" },
  { name: "page_size not a number", method: "GET", path: "/api/v1/audit/?page_size=ten", status: 400, code: "validation_failed", field: "page_size" },
  { name: "empty project filter", method: "GET", path: "/api/v1/audit/?project=", status: 400, code: "validation_failed", field: "project" },
  { name: "empty environment filter", method: "GET", path: "/api/v1/audit/?environment=1&environment=", status: 400, code: "validation_failed", field: "environment.1" },
  { name: "an unknown query parameter", method: "GET", path: "/api/v1/audit/?colour=red", status: 400, code: "validation_failed" },
  { name: "a cursor that is not base64 JSON", method: "GET", path: "/api/v1/audit/?cursor=not-a-cursor", status: 400, code: "invalid_cursor", field: "cursor" },
  {
    name: "a cursor of the wrong shape",
    method: "GET",
    path: `/api/v1/audit/?cursor=${btoa(JSON.stringify([1, "x"]))}`,
    status: 400,
    code: "invalid_cursor",
    field: "cursor",
  },
  { name: "is_system_event=yes", method: "GET", path: "/api/v1/audit/?is_system_event=yes", status: 400, code: "validation_failed", field: "is_system_event" },
  { name: "since that is not a date", method: "GET", path: "/api/v1/audit/?since=last-week", status: 400, code: "validation_failed", field: "since" },
  { name: "until on 31 April", method: "GET", path: "/api/v1/audit/?until=2021-04-31T00:00:00Z", status: 400, code: "validation_failed", field: "until" },
  { name: "a search over 256 characters", method: "GET", path: `/api/v1/audit/?search=${"s".repeat(257)}`, status: 400, code: "validation_failed", field: "search" },
  { name: "an export format that does not exist", method: "GET", path: "/api/v1/audit/export?format=xlsx", status: 400, code: "validation_failed", field: "format" },
  { name: "an audit id that is not a number", method: "GET", path: "/api/v1/audit/abc/", status: 400, code: "validation_failed", field: "id" },
  { name: "a submitter_type that does not exist", method: "GET", path: "/api/v1/audit/?submitter_type=robot", status: 400, code: "validation_failed", field: "submitter_type" },
  { name: "a submitter id with a space", method: "GET", path: "/api/v1/audit/?submitter=key%20x", status: 400, code: "validation_failed", field: "submitter" },
  { name: "a legacy id that is not a number", method: "GET", path: "/api/v1/audit/legacy/abc", status: 400, code: "validation_failed", field: "old_id" },
  { name: "a legacy id of 0", method: "GET", path: "/api/v1/audit/legacy/0", status: 400, code: "validation_failed", field: "old_id" },
  // Forged system events: only flaghook writes them (issue 11)
  { name: "is_system_event set by an API key", body: withField({ is_system_event: true }), status: 400, code: "validation_failed" },
  ...["API_KEY", "WEBHOOK", "INBOUND_SOURCE", "AUDIT_LOG", "AUDIT_CHECKPOINT", "Webhook"].map((type) => ({
    name: `a CUSTOM event about a reserved ${type}`,
    body: JSON.stringify({ type: "CUSTOM", log: `${type} revoked`, related_object: { type } }),
    status: 400,
    code: "validation_failed",
    field: "related_object.type",
  })),
  {
    name: "a batch with one event about a reserved type",
    path: "/api/v1/events/batch",
    body: JSON.stringify({ events: [valid, { type: "CUSTOM", log: "API key created: ci", related_object: { type: "API_KEY" } }] }),
    status: 400,
    code: "validation_failed",
    field: "events.1.related_object.type",
  },
  // The signed log's routes
  { name: "a proof for a tree_size that is not a number", method: "GET", path: "/api/v1/audit/1/proof?tree_size=ten", status: 400, code: "validation_failed", field: "tree_size" },
  { name: "a proof for tree_size -1", method: "GET", path: "/api/v1/audit/1/proof?tree_size=-1", status: 400, code: "validation_failed", field: "tree_size" },
  { name: "a proof with an unknown parameter", method: "GET", path: "/api/v1/audit/1/proof?leaf=1", status: 400, code: "validation_failed" },
  { name: "a proof of an id that is not a number", method: "GET", path: "/api/v1/audit/one/proof", status: 400, code: "validation_failed", field: "id" },
  { name: "a consistency proof without from", method: "GET", path: "/api/v1/audit/consistency", status: 400, code: "validation_failed", field: "from" },
  { name: "a consistency proof from a word", method: "GET", path: "/api/v1/audit/consistency?from=first", status: 400, code: "validation_failed", field: "from" },
  { name: "a consistency proof to 0", method: "GET", path: "/api/v1/audit/consistency?from=1&to=0", status: 400, code: "validation_failed", field: "to" },
  { name: "verify from 0", method: "GET", path: "/api/v1/audit/verify?from=0", status: 400, code: "validation_failed", field: "from" },
  { name: "verify with limit 0", method: "GET", path: "/api/v1/audit/verify?limit=0", status: 400, code: "validation_failed", field: "limit" },
  { name: "verify with limit 10001", method: "GET", path: "/api/v1/audit/verify?limit=10001", status: 400, code: "validation_failed", field: "limit" },
  { name: "verify with an unknown parameter", method: "GET", path: "/api/v1/audit/verify?fix=true", status: 400, code: "validation_failed" },
  { name: "checkpoints with page_size 0", method: "GET", path: "/api/v1/audit/checkpoints?page_size=0", status: 400, code: "validation_failed", field: "page_size" },
  { name: "checkpoints with an unreadable cursor", method: "GET", path: "/api/v1/audit/checkpoints/?cursor=zz", status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "no latest checkpoint yet", method: "GET", path: "/api/v1/audit/checkpoints/latest", status: 404, code: "not_found" },
  { name: "a proof before any checkpoint", method: "GET", path: "/api/v1/audit/1/proof", status: 409, code: "not_sealed" },
  { name: "the public key without a key", method: "GET", path: "/api/v1/audit/public-key", anonymous: true, status: 401, code: "unauthorized" },
  { name: "verify with the operator token", method: "GET", path: "/api/v1/audit/verify", headers: ADMIN, status: 401, code: "unauthorized" },
  { name: "checkpoints without a key", method: "GET", path: "/api/v1/audit/checkpoints", anonymous: true, status: 401, code: "unauthorized" },
  // Authentication
  { name: "no Authorization header", anonymous: true, body: withField({}), status: 401, code: "unauthorized" },
  { name: "a Basic Authorization header", headers: { Authorization: "Basic YTpi" }, body: withField({}), status: 401, code: "unauthorized" },
  { name: "an Api-Key header without a key", headers: { Authorization: "Api-Key" }, body: withField({}), status: 401, code: "unauthorized" },
  {
    name: "a well-formed key that was never issued",
    headers: { Authorization: `Api-Key fh_0000000000_${"A".repeat(43)}` },
    body: withField({}),
    status: 401,
    code: "unauthorized",
  },
  { name: "a key that is not a flaghook key", headers: { Authorization: "Api-Key ser.abcdef" }, body: withField({}), status: 401, code: "unauthorized" },
  { name: "the operator token on ingest", headers: ADMIN, body: withField({}), status: 401, code: "unauthorized" },
  { name: "the operator token on the audit log", method: "GET", path: "/api/v1/audit/", headers: ADMIN, status: 401, code: "unauthorized" },
];

describe("bad input answers 4xx with the error shape and stores nothing", () => {
  it.each(rows)("$name -> $status $code", async (row) => {
    const method = row.method ?? "POST";
    const headers = { ...(method === "POST" ? JSON_TYPE : {}), ...(row.anonymous ? {} : auth), ...row.headers };
    const before = await storedCounts();

    const res = await call(row.path ?? "/api/v1/events", { method, headers, body: row.body });

    await expectError(res, row.status, row.code, row.field);
    expect(await storedCounts()).toEqual(before);
  });

  it("stores only a valid sentinel sent after all of them, once the ingest queue has drained", async () => {
    const before = await storedCounts();
    const sentinel = { ...valid, project: { id: 77, name: "Sentinel" }, environment: { id: 78, name: "Sentinel env" } };
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: sentinel });
    expect(res.status).toBe(202);
    await recorded(auth, ((await res.json()) as { event_id: string }).event_id);

    expect(await storedCounts()).toEqual({
      audit_entries: before.audit_entries + 1,
      audit_checkpoints: 0,
      projects: before.projects + 1,
      environments: before.environments + 1,
    });
    expect(await countRows("projects", "id = 9001")).toBe(0);
    expect(await countRows("environments", "id = 9002")).toBe(0);
    expect(await countRows("audit_entries", "project_id = 9001")).toBe(0);
  });
});

async function storedCounts() {
  return {
    audit_entries: await countRows("audit_entries"),
    audit_checkpoints: await countRows("audit_checkpoints"),
    projects: await countRows("projects"),
    environments: await countRows("environments"),
  };
}
