import { Webhook as StandardWebhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { call, createOrganisation, eventually, mailbox, receiverUrl, recorded, seedPythonSays } from "./helpers";

describe("delivery end to end", () => {
  it("delivers a signed FLAG_UPDATED and AUDIT_LOG_CREATED that the seed's Python check and standardwebhooks accept", async () => {
    const { orgId, auth } = await createOrganisation();
    const orgHook = (await (
      await call(`/api/v1/organisations/${orgId}/webhooks/`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/e2e-org`, name: "audit", event_types: ["AUDIT_LOG_CREATED"] } })
    ).json()) as { id: string; secret: string };
    const envHook = (await (
      await call(`/api/v1/environments/23/webhooks/`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/e2e-env`, secret: "my shared secret" } })
    ).json()) as { id: string; secret: string };
    expect(orgHook).toMatchObject({ secret: expect.any(String) });
    expect(orgHook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const res = await call("/api/v1/events", {
      method: "POST",
      headers: auth,
      json: {
        type: "FLAG_STATE_UPDATED",
        occurred_at: "2021-06-18T07:50:26.595298Z",
        author: { id: 3, email: "ben@example.com", first_name: "Ben", last_name: "Rometsch" },
        project: { id: 12, name: "Flagsmith Website" },
        environment: { id: 23, name: "Development" },
        feature: { id: 7168, name: "butter_bar", type: "CONFIG", description: "Show markdown", default_enabled: false, initial_value: null, created_date: "2021-02-10T20:03:43.348556Z" },
        previous_state: { enabled: false, feature_state_value: "old" },
        new_state: { enabled: true, feature_state_value: "new" },
      },
    });
    const { event_id } = (await res.json()) as { event_id: string };
    await recorded(auth, event_id);
    const env = await eventually(async () => (await mailbox("e2e-env")).requests[0]);
    const org = await eventually(async () => (await mailbox("e2e-org")).requests.find((r) => r.body.includes("butter_bar")));

    expect(env.headers["x-flagsmith-signature"]).toMatch(/^[0-9a-f]{64}$/);
    expect(await seedPythonSays("my shared secret", env.body, env.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays("another secret", env.body, env.headers["x-flagsmith-signature"])).toBe("invalid");
    expect(env.headers["content-type"]).toBe("application/json");
    expect(env.headers["user-agent"]).toMatch(/^flaghook\//);
    const verified = new StandardWebhook(btoa("my shared secret")).verify(env.body, env.headers);
    expect(verified).toMatchObject({ event_type: "FLAG_UPDATED" });
    expect(JSON.parse(env.body).data.new_state.feature_state_value).toBe("new");

    const wh = new StandardWebhook(orgHook.secret.slice("whsec_".length));
    expect(wh.verify(org.body, org.headers)).toMatchObject({ event_type: "AUDIT_LOG_CREATED" });
    expect(await seedPythonSays(orgHook.secret, org.body, org.headers["x-flagsmith-signature"])).toBe("valid");
  });
});
