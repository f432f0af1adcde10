// Flagsmith's "Test webhook" button (issue 10, point 2). frontend/web/components/TestWebhook.tsx asks the
// API to send a sample (api/webhooks/views.py WebhookViewSet.test), which reports success only on a 200.
// The samples are fixed in api/webhooks/webhooks.py (send_test_request_to_webhook,
// generate_organisation_sample_webhook_data, generate_environment_sample_webhook_data), the environment
// one's states built by api/environments/models.py (Webhook.generate_webhook_feature_state_data), and sent
// as json.dumps(sort_keys=True), signed only when the form's secret is not blank. Flagsmith 2.265; the
// stored webhooks.py is the newest version the index holds. Since Flagsmith 2.214 (PR 6666) a state also
// carries multivariate_feature_state_values.
import { describe, expect, it } from "vitest";
import { createSource, flagsmithBody, postAsFlagsmith, recentTimestamp, webhook, hookUrl, type Org, type NewSource } from "./flagsmith";
import { call, countRows, createOrganisation, eventually, mailbox } from "./helpers";

// generate_organisation_sample_webhook_data()
const organisationSample = {
  created_date: "2020-02-23T17:30:57.006318Z",
  log: "New Flag / Remote Config created: my_feature",
  author: { id: 1, email: "user@domain.com", first_name: "Jane", last_name: "Doe" },
  environment: null,
  project: { id: 1, name: "Test Project", organisation: 1 },
  related_object_id: 1,
  related_object_type: "FEATURE",
};

// generate_environment_sample_webhook_data(): Feature(id=1, name="test_feature", ...), Environment(id=1, name="Development").
function environmentState(enabled: boolean, value: string, variants?: unknown[]) {
  return {
    feature: {
      id: 1,
      created_date: "2021-02-10T20:03:43.348556Z",
      default_enabled: false,
      description: "This is a description",
      initial_value: null,
      name: "test_feature",
      project: { id: 1, name: "Test Project" },
      type: "CONFIG",
    },
    environment: { id: 1, name: "Development" },
    identity: 1,
    identity_identifier: "test_identity",
    feature_segment: null,
    enabled,
    feature_state_value: value,
    ...(variants ? { multivariate_feature_state_values: variants } : {}),
  };
}
const environmentSample = (variants?: unknown[]) => ({
  changed_by: "user@domain.com",
  timestamp: "2021-06-18T07:50:26.595298Z",
  new_state: environmentState(true, "feature_state_value", variants),
  previous_state: environmentState(false, "old_feature_state_value", variants),
});

async function sourceAndHooks(name: string) {
  const org = await createOrganisation();
  await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl(`${name}-org`) });
  await webhook(org, "/api/v1/environments/1", { url: hookUrl(`${name}-env`) });
  const source = await createSource(org);
  // The setup's own system entries (key, two webhooks, the source) are recorded before the test begins.
  await eventually(async () => (await countRows("audit_entries", "org_id = ?", org.orgId)) === 4);
  return { org, source };
}

async function sourceOf(org: Org, source: NewSource) {
  return (await (await call(`/api/v1/organisations/${org.orgId}/inbound-sources/${source.id}`, { headers: org.auth })).json()) as NewSource;
}

async function nothingHappened(org: Org, name: string) {
  await new Promise((r) => setTimeout(r, 1500));
  expect(await countRows("audit_entries", "org_id = ?", org.orgId)).toBe(4);
  expect(await countRows("relayed_events", "org_id = ?", org.orgId)).toBe(0);
  expect(await countRows("deliveries", "org_id = ? and (payload like '%test_feature%' or payload like '%my_feature%')", org.orgId)).toBe(0);
  for (const box of [`${name}-org`, `${name}-env`]) {
    expect((await mailbox(box)).requests.filter((r) => r.body.includes("test_feature") || r.body.includes("my_feature")), box).toEqual([]);
  }
}

describe("Flagsmith's Test webhook samples", () => {
  it("answers the organisation sample 200, records and relays nothing, and shows on the source when it arrived", async () => {
    const { org, source } = await sourceAndHooks("test-button-org");
    const body = await flagsmithBody("AUDIT_LOG_CREATED", organisationSample);
    const res = await postAsFlagsmith(source, body, source.secret);
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toEqual({ status: "test_received", event_type: "AUDIT_LOG_CREATED", last_test_received_at: expect.any(String), message: expect.any(String) });
    expect(await sourceOf(org, source)).toMatchObject({ last_test_received_at: answer.last_test_received_at, last_received_at: null });
    await nothingHappened(org, "test-button-org");
  });

  it("answers the environment sample 200 as Flagsmith 2.265 sends it (multivariate_feature_state_values: []) and as older versions did (without)", async () => {
    const { org, source } = await sourceAndHooks("test-button-env");
    for (const data of [environmentSample([]), environmentSample()]) {
      const body = await flagsmithBody("FLAG_UPDATED", data);
      expect(body.startsWith('{"data": {"changed_by": "user@domain.com", "new_state": {"enabled": true, "environment": {"id": 1, "name": "Development"}')).toBe(true);
      const res = await postAsFlagsmith(source, body, source.secret, "?environment=1");
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: "test_received", event_type: "FLAG_UPDATED" });
    }
    expect((await sourceOf(org, source)).last_test_received_at).toEqual(expect.any(String));
    await nothingHappened(org, "test-button-env");
  });

  it("checks the secret of a test like any webhook's, so a wrong secret shows as a failure in Flagsmith", async () => {
    const { org, source } = await sourceAndHooks("test-button-wrong");
    const body = await flagsmithBody("AUDIT_LOG_CREATED", organisationSample);
    expect((await postAsFlagsmith(source, body, "not the secret")).status).toBe(401);
    expect((await postAsFlagsmith(source, body, null)).status).toBe(401);
    expect((await sourceOf(org, source)).last_test_received_at).toBeNull();
  });

  it("answers a test to an unsigned source, whose Flagsmith secret is blank and so sends no signature", async () => {
    const org = await createOrganisation();
    const source = await createSource(org, { unsigned: true });
    const res = await postAsFlagsmith(source, await flagsmithBody("FLAG_UPDATED", environmentSample([])), null);
    expect(res.status).toBe(200);
    expect((await sourceOf(org, source)).last_test_received_at).toEqual(expect.any(String));
  });

  it("takes a body that differs from a sample in any field for a real change", async () => {
    const { org, source } = await sourceAndHooks("test-button-real");
    const real = { ...environmentSample([]), timestamp: recentTimestamp(141516) };
    const body = await flagsmithBody("FLAG_UPDATED", real);
    const res = await postAsFlagsmith(source, body, source.secret);
    expect(res.status).toBe(202);
    const relayed = await eventually(async () => (await mailbox("test-button-real-env")).requests[0]);
    expect(relayed.body).toBe(body);
    const audit = { ...organisationSample, log: "New Flag / Remote Config created: my_feature_2" };
    expect((await postAsFlagsmith(source, await flagsmithBody("AUDIT_LOG_CREATED", audit), source.secret)).status).toBe(202);
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and log = ?", org.orgId, audit.log)) === 1);
    expect((await sourceOf(org, source)).last_test_received_at).toBeNull();
  });
});
