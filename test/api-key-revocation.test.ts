// Revoking an API key (issue 14, point 10): the key stops working at once in the isolate that
// revoked it, and within KEY_CACHE_TTL_MS (5 s) in every other. Another isolate's revocation is
// played here by revoking the key in D1 directly, behind this isolate's back.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { advanceClock, now, resetClock } from "../src/domain/clock";
import { ADMIN, call, createOrganisation, expectError } from "./helpers";

afterEach(() => resetClock());

const event = { type: "CUSTOM", log: "after revocation?", related_object: { type: "X" } };

describe("revoking an API key", () => {
  it("revoked elsewhere, a key cached here stops working within 5 seconds", async () => {
    const { auth, keyId } = await createOrganisation("Revoked elsewhere");
    expect((await call("/api/v1/events", { method: "POST", headers: auth, json: event })).status).toBe(202);
    await env.DB.prepare("update api_keys set revoked_at = ? where id = ?").bind(now(), keyId).run();
    advanceClock(5_001);
    await expectError(await call("/api/v1/events", { method: "POST", headers: auth, json: event }), 401, "unauthorized");
    await expectError(await call("/api/v1/audit/", { headers: auth }), 401, "unauthorized");
  });

  it("revoked through the API, it stops working at once in the isolate that revoked it", async () => {
    const { orgId, auth, keyId } = await createOrganisation("Revoked here");
    expect((await call("/api/v1/audit/", { headers: auth })).status).toBe(200);
    expect((await call(`/api/v1/organisations/${orgId}/api-keys/${keyId}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    await expectError(await call("/api/v1/audit/", { headers: auth }), 401, "unauthorized");
  });

  it("a key used by many requests at once after the cache expired is read once and answers them all", async () => {
    const { auth } = await createOrganisation("Busy key");
    expect((await call("/api/v1/audit/", { headers: auth })).status).toBe(200);
    advanceClock(5_001);
    const answers = await Promise.all(Array.from({ length: 20 }, () => call("/api/v1/audit/", { headers: auth })));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
  });
});
