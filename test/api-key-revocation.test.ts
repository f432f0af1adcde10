// Revoking an API key (issue 14, point 10): the key stops working at once in the isolate that
// revoked it, and within KEY_CACHE_TTL_MS (5 s) in every other. Another isolate's revocation is
// played here by revoking the key in D1 directly, behind this isolate's back.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
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

  it("costs one indexed D1 read per key and isolate every 5 s, however many requests arrive together", async () => {
    const { auth } = await createOrganisation("Busy key");
    // The real local D1, with every statement prepared on it noted.
    const statements: string[] = [];
    const DB = new Proxy(env.DB, {
      get(target, property) {
        if (property === "prepare") return (query: string) => (statements.push(query), target.prepare(query));
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const audit = () => worker.fetch(new Request("http://flaghook.test/api/v1/audit/", { headers: auth }), { ...env, DB }, createExecutionContext());
    const keyReads = () => statements.filter((q) => /from "api_keys"/.test(q)).length;
    expect((await audit()).status).toBe(200);
    const first = keyReads();
    expect(first).toBeLessThanOrEqual(1);
    expect((await Promise.all(Array.from({ length: 20 }, audit))).map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(keyReads()).toBe(first);
    advanceClock(5_001);
    expect((await Promise.all(Array.from({ length: 20 }, audit))).map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(keyReads()).toBe(first + 1);
  });
});
