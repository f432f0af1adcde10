// Bad input on the flag history routes (sibling of test/bad-input-routes.test.ts): each malformed,
// unauthorised or cross-tenant request answers 4xx with the one error shape and changes nothing.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, countRows, createOrganisation, expectError, recorded } from "./helpers";

let authA: Record<string, string>;
let authB: Record<string, string>;

beforeAll(async () => {
  const a = await createOrganisation("Caller");
  const b = await createOrganisation("Someone else");
  authA = a.auth;
  authB = b.auth;
  const flag = (environment: Record<string, unknown>) => ({
    type: "FLAG_STATE_UPDATED",
    occurred_at: "2024-03-05T10:00:00Z",
    project: { id: 700, name: "P" },
    environment,
    feature: { id: 5, name: "banner" },
    new_state: { enabled: true, feature_state_value: null },
  });
  // A has environment 701 (with an api_key); only B has environment 702.
  for (const [auth, event] of [
    [a.auth, flag({ id: 701, name: "A's", api_key: "history_key_a" })],
    [b.auth, flag({ id: 702, name: "B's", api_key: "history_key_b" })],
  ] as const) {
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: event });
    await recorded(auth, ((await res.json()) as { event_id: string }).event_id);
  }
});

interface Row {
  name: string;
  path: string;
  method?: "GET" | "POST" | "DELETE";
  as?: "anonymous" | "wrong key" | "B";
  status: number;
  code: string;
  field?: string;
}

const state = "/api/v1/environments/701/state";
const changes = "/api/v1/environments/701/changes";
const timeline = "/api/v1/environments/701/features/5/timeline";

const rows: Row[] = [
  { name: "state without credentials", path: state, as: "anonymous", status: 401, code: "unauthorized" },
  { name: "state with a key that is not one", path: state, as: "wrong key", status: 401, code: "unauthorized" },
  { name: "state of an environment never seen", path: "/api/v1/environments/709/state", status: 404, code: "not_found" },
  { name: "state of another organisation's environment", path: "/api/v1/environments/702/state", status: 404, code: "not_found" },
  { name: "state of another organisation's environment by its api_key", path: "/api/v1/environments/history_key_b/state", status: 404, code: "not_found" },
  { name: "state of my environment with another organisation's key", path: state, as: "B", status: 404, code: "not_found" },
  { name: "state of an environment reference of 600 characters", path: `/api/v1/environments/${"e".repeat(600)}/state`, status: 400, code: "validation_failed", field: "env" },
  { name: "state at a time that is not one", path: `${state}?at=yesterday`, status: 400, code: "validation_failed", field: "at" },
  { name: "state at an impossible date", path: `${state}?at=2024-02-30T10:00:00Z`, status: 400, code: "validation_failed", field: "at" },
  { name: "state at an empty time", path: `${state}?at=`, status: 400, code: "validation_failed", field: "at" },
  { name: "state at two times", path: `${state}?at=2024-03-05T10:00:00Z&at=2024-03-05T11:00:00Z`, status: 400, code: "validation_failed", field: "at" },
  { name: "state with an unknown parameter", path: `${state}?when=now`, status: 400, code: "validation_failed" },
  { name: "state at a time with SQL in it", path: `${state}?at=${encodeURIComponent("2024-03-05' or 1=1 --")}`, status: 400, code: "validation_failed", field: "at" },
  { name: "state posted to", path: state, method: "POST", status: 404, code: "not_found" },
  { name: "changes without from", path: changes, status: 400, code: "validation_failed", field: "from" },
  { name: "changes from after to", path: `${changes}?from=2024-03-05T12:00:00Z&to=2024-03-05T11:00:00Z`, status: 400, code: "invalid_request", field: "from" },
  { name: "changes from in the future (to defaults to now)", path: `${changes}?from=2999-01-01T00:00:00Z`, status: 400, code: "invalid_request", field: "from" },
  { name: "changes from a time that is not one", path: `${changes}?from=last%20tuesday`, status: 400, code: "validation_failed", field: "from" },
  { name: "changes to a time that is not one", path: `${changes}?from=2024-03-05T10:00:00Z&to=soon`, status: 400, code: "validation_failed", field: "to" },
  { name: "changes of another organisation's environment", path: "/api/v1/environments/702/changes?from=2024-03-05T09:00:00Z", status: 404, code: "not_found" },
  { name: "changes without credentials", path: `${changes}?from=2024-03-05T09:00:00Z`, as: "anonymous", status: 401, code: "unauthorized" },
  { name: "timeline of a feature id that is not a number", path: "/api/v1/environments/701/features/banner/timeline", status: 400, code: "validation_failed", field: "feature_id" },
  { name: "timeline of feature 0", path: "/api/v1/environments/701/features/0/timeline", status: 400, code: "validation_failed", field: "feature_id" },
  { name: "timeline of a feature id past 2^53", path: "/api/v1/environments/701/features/9007199254740993/timeline", status: 400, code: "validation_failed", field: "feature_id" },
  { name: "timeline of a feature with no history here", path: "/api/v1/environments/701/features/6/timeline", status: 404, code: "not_found" },
  { name: "timeline of another organisation's environment", path: "/api/v1/environments/702/features/5/timeline", status: 404, code: "not_found" },
  { name: "timeline with a cursor it never gave", path: `${timeline}?cursor=not-a-cursor`, status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "timeline with a cursor of the wrong shape", path: `${timeline}?cursor=${btoa(JSON.stringify([1, "x"]))}`, status: 400, code: "invalid_cursor", field: "cursor" },
  { name: "timeline page_size 0", path: `${timeline}?page_size=0`, status: 400, code: "validation_failed", field: "page_size" },
  { name: "timeline page_size 201", path: `${timeline}?page_size=201`, status: 400, code: "validation_failed", field: "page_size" },
  { name: "timeline with an unknown parameter", path: `${timeline}?order=desc`, status: 400, code: "validation_failed" },
  { name: "timeline deleted", path: timeline, method: "DELETE", status: 404, code: "not_found" },
];

async function stored() {
  return Object.fromEntries(
    await Promise.all(["flag_changes", "flag_subjects", "environments", "audit_entries"].map(async (t) => [t, await countRows(t)])),
  );
}

describe("bad input on the flag history routes answers 4xx with the error shape and changes nothing", () => {
  it.each(rows)("$name -> $status $code", async (row) => {
    const before = await stored();
    const headers: Record<string, string> =
      row.as === "anonymous" ? {} : row.as === "wrong key" ? { Authorization: `Api-Key fh_0000000000_${"x".repeat(43)}` } : row.as === "B" ? authB : authA;
    const res = await call(row.path, { method: row.method ?? "GET", headers });
    await expectError(res, row.status, row.code, row.field);
    expect(await stored()).toEqual(before);
  });

  it("answers the same environment by id and by api_key", async () => {
    const byId = await (await call(`${state}?at=2024-03-05T10:00:00Z`, { headers: authA })).json();
    const byKey = await (await call("/api/v1/environments/history_key_a/state?at=2024-03-05T10:00:00Z", { headers: authA })).json();
    expect(byKey).toEqual(byId);
    expect((byId as { features: unknown[] }).features).toHaveLength(1);
    expect(await env.DB.prepare("select count(*) as n from flag_changes where environment_id = 702").first("n")).toBe(1);
  });
});
