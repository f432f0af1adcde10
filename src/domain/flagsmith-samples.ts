// The bodies Flagsmith's "Test webhook" button sends: fixed samples, recognised so that a test is
// answered 200 and leaves no audit entry and no delivery. From api/webhooks/webhooks.py
// (send_test_request_to_webhook, generate_environment_sample_webhook_data,
// generate_organisation_sample_webhook_data) and api/environments/models.py
// (Webhook.generate_webhook_feature_state_data), Flagsmith 2.265.
import type { WebhookEventType } from "./fanout";

const sampleFeature = {
  created_date: "2021-02-10T20:03:43.348556Z",
  default_enabled: false,
  description: "This is a description",
  id: 1,
  initial_value: null,
  name: "test_feature",
  project: { id: 1, name: "Test Project" },
  type: "CONFIG",
};

const sampleState = (enabled: boolean, value: string) => ({
  enabled,
  environment: { id: 1, name: "Development" },
  feature: sampleFeature,
  feature_segment: null,
  feature_state_value: value,
  identity: 1,
  identity_identifier: "test_identity",
});

/** The environment webhook's sample (FLAG_UPDATED), without multivariate_feature_state_values. */
export const ENVIRONMENT_TEST_SAMPLE = {
  changed_by: "user@domain.com",
  new_state: sampleState(true, "feature_state_value"),
  previous_state: sampleState(false, "old_feature_state_value"),
  timestamp: "2021-06-18T07:50:26.595298Z",
};

/** The organisation webhook's sample (AUDIT_LOG_CREATED). */
export const ORGANISATION_TEST_SAMPLE = {
  author: { email: "user@domain.com", first_name: "Jane", id: 1, last_name: "Doe" },
  created_date: "2020-02-23T17:30:57.006318Z",
  environment: null,
  log: "New Flag / Remote Config created: my_feature",
  project: { id: 1, name: "Test Project", organisation: 1 },
  related_object_id: 1,
  related_object_type: "FEATURE",
};

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Since Flagsmith PR 6666 (2.214) a feature state carries multivariate_feature_state_values, which
 * the sample builds from no variants; whatever it holds, the rest of the sample identifies it.
 */
function withoutVariants(data: Record<string, unknown>): Record<string, unknown> {
  const strip = (state: unknown) => {
    if (typeof state !== "object" || state === null) return state;
    const { multivariate_feature_state_values: _ignored, ...rest } = state as Record<string, unknown>;
    return rest;
  };
  return { ...data, new_state: strip(data.new_state), previous_state: strip(data.previous_state) };
}

/**
 * True when a body is one of the "Test webhook" samples: every field equal to the sample's (dates in
 * 2020 and 2021, "test_feature", "Jane Doe"), so a real change cannot be taken for one.
 */
export function isFlagsmithTestSample(eventType: WebhookEventType, data: Record<string, unknown>): boolean {
  if (eventType === "AUDIT_LOG_CREATED") return sameJson(data, ORGANISATION_TEST_SAMPLE);
  if (eventType === "FLAG_UPDATED") return sameJson(withoutVariants(data), ENVIRONMENT_TEST_SAMPLE);
  return false;
}
