// Flagsmith's v2 feature versioning (issue 10, point 1): NEW_VERSION_PUBLISHED, accepted at the inbound
// URL, audited and relayed byte for byte. Bodies written from Flagsmith 2.265's
// api/features/versioning/schemas.py (EnvironmentFeatureVersionWebhookDataSerializer: uuid, feature
// {id, name}, published_by {id, email} or null, feature_states [{enabled, value,
// multivariate_feature_state_values}]) and api/features/versioning/tasks.py (trigger_update_version_webhooks:
// environment webhooks only, event_type NEW_VERSION_PUBLISHED), serialised by api/webhooks/webhooks.py
// (json.dumps(sort_keys=True)). percentage_allocation is a Python float: Flagsmith writes 50.0.
import { describe, expect, it } from "vitest";
import { publishedVersion } from "../src/domain/versioning";
import { createSource, flagsmithBody, postAsFlagsmith, webhook, hookUrl, type Org } from "./flagsmith";
import { call, countRows, createOrganisation, eventually, mailbox, pythonDumps, seedPythonSays } from "./helpers";

const UUID = "2b9a0c3e-5f0c-4a69-9a1d-3f6a7f2c8e10";

function versionData(overrides: Record<string, unknown> = {}) {
  return {
    uuid: UUID,
    feature: { id: 4321, name: "checkout_v2" },
    published_by: { id: 7, email: "ana@example.com" },
    feature_states: [
      { enabled: true, value: "blue", multivariate_feature_state_values: [{ id: 91, multivariate_feature_option: { id: 12, value: "green" }, percentage_allocation: 50 }] },
      { enabled: false, value: null, multivariate_feature_state_values: [] },
    ],
    ...overrides,
  };
}

/** Flagsmith's bytes for a version: json.dumps(sort_keys=True), the float allocation written 50.0. */
const versionBody = async (data: unknown) =>
  pythonDumps(JSON.stringify({ data, event_type: "NEW_VERSION_PUBLISHED" }).replace('"percentage_allocation":50', '"percentage_allocation":50.0'));

async function deliveriesOf(org: Org, eventId: string, count: number) {
  return eventually(async () => {
    const body = (await (await call(`/api/v1/events/${eventId}`, { headers: org.auth })).json()) as {
      status: string;
      audit_entry_id: number | null;
      deliveries: { webhook_id: string; event_type: string }[];
    };
    return body.status === "recorded" && body.deliveries.length === count ? body : undefined;
  });
}

const mentions = async (box: string, text: string) => (await mailbox(box)).requests.filter((r) => r.body.includes(text));

describe("NEW_VERSION_PUBLISHED from Flagsmith", () => {
  it("is accepted for the environment its URL names, audited (which version, by whom, its states) and relayed byte for byte to the webhooks subscribed to it", async () => {
    const org = await createOrganisation();
    const env41 = await webhook(org, "/api/v1/environments/41", { url: hookUrl("nvp-env"), secret: "env 41 receiver" });
    expect(env41.event_types).toEqual(["FLAG_UPDATED", "FLAG_DELETED", "NEW_VERSION_PUBLISHED"]);
    await webhook(org, "/api/v1/environments/41", { url: hookUrl("nvp-env-flags-only"), event_types: ["FLAG_UPDATED", "FLAG_DELETED"] });
    await webhook(org, "/api/v1/environments/42", { url: hookUrl("nvp-other-env") });
    const orgChose = await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("nvp-org"), event_types: ["NEW_VERSION_PUBLISHED"] });
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("nvp-org-default") });
    const source = await createSource(org);

    const body = await versionBody(versionData());
    expect(body).toContain('"percentage_allocation": 50.0');
    const res = await postAsFlagsmith(source, body, source.secret, "?environment=41");
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };

    const status = await deliveriesOf(org, event_id, 2);
    expect(status.deliveries.map((d) => [d.webhook_id, d.event_type]).sort()).toEqual(
      [[env41.id, "NEW_VERSION_PUBLISHED"], [orgChose.id, "NEW_VERSION_PUBLISHED"]].sort(),
    );
    const entry = await (await call(`/api/v1/audit/${status.audit_entry_id}`, { headers: org.auth })).json();
    expect(entry).toEqual({
      id: status.audit_entry_id,
      seq: status.audit_entry_id,
      legacy_id: null,
      event_id,
      received_at: expect.any(String),
      time_warning: null,
      submitter: { type: "inbound_source", id: source.id, name: "Flagsmith" },
      created_date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/),
      log: "New version published for feature: checkout_v2",
      author: { id: 7, email: "ana@example.com", first_name: "", last_name: "" },
      environment: { id: 41, name: "" },
      project: null,
      related_object_id: null,
      related_object_type: "EF_VERSION",
      related_object_uuid: UUID,
      is_system_event: false,
      change_type: "UPDATE",
      change_details: [
        {
          field: "feature_states",
          old: null,
          new: [
            { enabled: true, value: "blue", multivariate_feature_state_values: [{ id: 91, multivariate_feature_option: { id: 12, value: "green" }, percentage_allocation: 50 }] },
            { enabled: false, value: null, multivariate_feature_state_values: [] },
          ],
        },
      ],
      api_key_name: null,
    });
    // The audit log can be searched for it by author and environment like any change.
    const page = (await (await call("/api/v1/audit/?environment=41&author=ana@example.com", { headers: org.auth })).json()) as { results: { id: number }[] };
    expect(page.results.map((r) => r.id)).toEqual([status.audit_entry_id]);

    const [toEnv] = await eventually(async () => (await mentions("nvp-env", UUID)).length === 1 && mentions("nvp-env", UUID));
    const [toOrg] = await eventually(async () => (await mentions("nvp-org", UUID)).length === 1 && mentions("nvp-org", UUID));
    expect(toEnv.body).toBe(body);
    expect(toOrg.body).toBe(body);
    expect(await seedPythonSays("env 41 receiver", toEnv.body, toEnv.headers["x-flagsmith-signature"])).toBe("valid");
    expect(await seedPythonSays(orgChose.secret, toOrg.body, toOrg.headers["x-flagsmith-signature"])).toBe("valid");
    await new Promise((r) => setTimeout(r, 1500));
    for (const box of ["nvp-env-flags-only", "nvp-other-env", "nvp-org-default"]) expect(await mentions(box, UUID), box).toEqual([]);
  });

  it("is idempotent: the same version sent again is recorded and relayed once", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/41", { url: hookUrl("nvp-twice") });
    const source = await createSource(org);
    const body = await versionBody(versionData());
    const first = (await (await postAsFlagsmith(source, body, source.secret, "?environment=41")).json()) as { event_id: string };
    const second = (await (await postAsFlagsmith(source, body, source.secret, "?environment=41")).json()) as { event_id: string };
    expect(second).toEqual(first);
    await deliveriesOf(org, first.event_id, 1);
    await eventually(async () => (await mentions("nvp-twice", UUID)).length === 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await countRows("audit_entries", "org_id = ? and related_object_uuid = ?", org.orgId, UUID)).toBe(1);
    expect(await mentions("nvp-twice", UUID)).toHaveLength(1);
  });

  it("without ?environment= is still accepted (Flagsmith never resends a refusal): audited with no environment, relayed to organisation webhooks that chose it", async () => {
    const org = await createOrganisation();
    await webhook(org, "/api/v1/environments/41", { url: hookUrl("nvp-no-env-env") });
    await webhook(org, `/api/v1/organisations/${org.orgId}`, { url: hookUrl("nvp-no-env-org"), event_types: ["AUDIT_LOG_CREATED", "NEW_VERSION_PUBLISHED"] });
    const source = await createSource(org);
    // Published through an API key: Flagsmith's schema dumps published_by as null.
    const body = await versionBody(versionData({ published_by: null }));
    const res = await postAsFlagsmith(source, body, source.secret);
    expect(res.status).toBe(202);
    const { event_id } = (await res.json()) as { event_id: string };
    const status = await deliveriesOf(org, event_id, 1);
    const entry = (await (await call(`/api/v1/audit/${status.audit_entry_id}`, { headers: org.auth })).json()) as Record<string, unknown>;
    expect(entry).toMatchObject({ environment: null, author: null, is_system_event: false, related_object_uuid: UUID });
    const [relayed] = await eventually(async () => (await mentions("nvp-no-env-org", UUID)).length === 1 && mentions("nvp-no-env-org", UUID));
    expect(relayed.body).toBe(body);
    expect((await mailbox("nvp-no-env-env")).count).toBe(0);
  });

  it("is read by one pure function into the version it publishes (flag history reads relayed bodies the same way)", async () => {
    expect(publishedVersion(versionData())).toEqual({
      uuid: UUID,
      feature: { id: 4321, name: "checkout_v2" },
      publishedBy: { id: 7, email: "ana@example.com" },
      featureStates: [
        { enabled: true, value: "blue", multivariate_feature_state_values: [{ id: 91, multivariate_feature_option: { id: 12, value: "green" }, percentage_allocation: 50 }] },
        { enabled: false, value: null, multivariate_feature_state_values: [] },
      ],
    });
    // Before Flagsmith PR 7496 the states carried no variants; published_by is null for an API key.
    expect(publishedVersion({ uuid: UUID, feature: { id: 1, name: "f" }, published_by: null, feature_states: [{ enabled: true, value: 3 }] })).toEqual({
      uuid: UUID,
      feature: { id: 1, name: "f" },
      publishedBy: null,
      featureStates: [{ enabled: true, value: 3, multivariate_feature_state_values: [] }],
    });
    expect(publishedVersion({ changed_by: "x", timestamp: "" })).toBeNull();
  });
});
