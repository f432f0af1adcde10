// Authentication comes before any body is read, parsed or walked (issue 14, point 5): on every
// authenticated route an unauthenticated request is answered without reading a byte of its body,
// whatever the body is (here 1 MiB of lone surrogate escapes, which cost a walk of the parsed JSON).
// Shown by counting what the Worker pulls from the request's body stream, not by timing.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { ADMIN, call, createOrganisation } from "./helpers";

const HOSTILE = `{"log": "${"\\ud800".repeat(180_000)}"}`; // about 1 MiB

/** A request whose body counts the bytes the Worker reads from it. */
function counted(path: string, method: string, headers: Record<string, string>, body = HOSTILE) {
  const bytes = new TextEncoder().encode(body);
  const seen = { pulled: 0 };
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        const chunk = bytes.subarray(offset, offset + 16_384);
        offset += chunk.length;
        seen.pulled += chunk.length;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  const request = new Request(`http://flaghook.test${path}`, { method, headers, body: stream });
  return { seen, response: () => worker.fetch(request, env, createExecutionContext()) };
}

let orgId: number;
let auth: Record<string, string>;
let hookId: string;
let sourceUrl: string;

beforeAll(async () => {
  ({ orgId, auth } = await createOrganisation("Auth first"));
  const hook = await call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: "http://127.0.0.1:9/x", event_types: ["FLAG_DELETED"] } });
  hookId = ((await hook.json()) as { id: string }).id;
  const source = await call(`/api/v1/organisations/${orgId}/inbound-sources`, { method: "POST", headers: auth, json: {} });
  sourceUrl = new URL(((await source.json()) as { url: string }).url).pathname;
});

const JSON_TYPE = { "content-type": "application/json" };
const NEVER_ISSUED = { Authorization: `Api-Key fh_0000000000_${"A".repeat(43)}` };

describe("an unauthenticated request's body is never read", () => {
  const routes: [string, string, () => string][] = [
    ["POST", "events", () => "/api/v1/events"],
    ["POST", "a batch of events", () => "/api/v1/events/batch"],
    ["POST", "an organisation webhook", () => `/api/v1/organisations/${orgId}/webhooks`],
    ["PATCH", "an organisation webhook", () => `/api/v1/organisations/${orgId}/webhooks/${hookId}`],
    ["POST", "an environment webhook", () => "/api/v1/environments/5/webhooks"],
    ["POST", "a webhook's rotation", () => `/api/v1/organisations/${orgId}/webhooks/${hookId}/rotate-secret`],
    ["POST", "a webhook's recovery", () => `/api/v1/organisations/${orgId}/webhooks/${hookId}/recover`],
    ["POST", "a redelivery", () => "/api/v1/deliveries/dlv_x/redeliver"],
    ["POST", "an inbound source", () => `/api/v1/organisations/${orgId}/inbound-sources`],
    ["POST", "an organisation (operator)", () => "/api/v1/organisations"],
    ["POST", "an API key (operator)", () => `/api/v1/organisations/${orgId}/api-keys`],
  ];

  it.each(routes)("%s %s without credentials, with a key never issued, and with the wrong kind of credential: 401, 0 bytes read", async (method, _name, path) => {
    const operatorRoute = path().startsWith("/api/v1/organisations") && !/webhooks|inbound-sources/.test(path());
    for (const credentials of [{}, NEVER_ISSUED, operatorRoute ? auth : ADMIN]) {
      const { seen, response } = counted(path(), method, { ...JSON_TYPE, ...credentials });
      const res = await response();
      expect(res.status).toBe(401);
      expect(seen.pulled).toBe(0);
    }
  });

  it("an inbound Flagsmith URL whose token is unknown: 404, 0 bytes read", async () => {
    const { seen, response } = counted("/api/v1/inbound/flagsmith/fhi_unknownunknownunknownunknownunknownun", "POST", JSON_TYPE);
    expect((await response()).status).toBe(404);
    expect(seen.pulled).toBe(0);
  });

  it("an admin page form without a session: 401, 0 bytes read", async () => {
    const { seen, response } = counted(`/ui/webhooks/${hookId}/delete`, "POST", { "content-type": "application/x-www-form-urlencoded", origin: "http://flaghook.test" }, `csrf=x&pad=${"x".repeat(100_000)}`);
    expect((await response()).status).toBe(401);
    expect(seen.pulled).toBe(0);
  });

  it("the same body with a valid key is read, and refused for what it is", async () => {
    const { seen, response } = counted("/api/v1/events", "POST", { ...JSON_TYPE, ...auth });
    const res = await response();
    expect(res.status).toBe(413);
    expect(seen.pulled).toBeGreaterThan(256 * 1024);
    const small = counted("/api/v1/events", "POST", { ...JSON_TYPE, ...auth }, `{"type": "CUSTOM", "log": "\\ud800", "related_object": {"type": "X"}}`);
    const refused = await small.response();
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("malformed_json");
    expect(small.seen.pulled).toBeGreaterThan(0);
  });
});
