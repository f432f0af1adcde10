// Flagsmith's v2 feature versioning: the NEW_VERSION_PUBLISHED body, and the published version it
// describes. Shapes from api/features/versioning/schemas.py (EnvironmentFeatureVersionWebhookDataSerializer)
// and api/features/versioning/tasks.py (trigger_update_version_webhooks), Flagsmith 2.265.
import { z } from "@hono/zod-openapi";

const id = z.number().int().nonnegative();

/** One feature state of a version: enabled, value, and (since Flagsmith PR 7496) its variants. */
const versionFeatureState = z.looseObject({
  enabled: z.boolean(),
  value: z.unknown().optional(),
  multivariate_feature_state_values: z.array(z.looseObject({})).optional(),
});

export const flagsmithVersionData = z
  .looseObject({
    uuid: z.string().min(1).max(64),
    feature: z.looseObject({ id, name: z.string() }),
    published_by: z.looseObject({ id: id.nullable().optional(), email: z.string().nullable().optional() }).nullable().optional(),
    feature_states: z.array(versionFeatureState),
  })
  .openapi("FlagsmithVersionData");

export interface PublishedFeatureState {
  enabled: boolean;
  value: unknown;
  /** As Flagsmith sent them; [] when the body has none (Flagsmith before 2.265 sent none). */
  multivariate_feature_state_values: unknown[];
}

export interface PublishedVersion {
  uuid: string;
  feature: { id: number; name: string };
  /** The person who published it; null when an API key did (Flagsmith sends no user then). */
  publishedBy: { id: number | null; email: string | null } | null;
  featureStates: PublishedFeatureState[];
}

/**
 * The version a NEW_VERSION_PUBLISHED `data` publishes, or null when it is not one. Pure: flag
 * history reads relayed bodies through this too. Flagsmith's body names neither the environment
 * nor which state is the default and which a segment override: it lists the version's states.
 */
export function publishedVersion(data: unknown): PublishedVersion | null {
  const parsed = flagsmithVersionData.safeParse(data);
  if (!parsed.success) return null;
  const d = parsed.data;
  return {
    uuid: d.uuid,
    feature: { id: d.feature.id, name: d.feature.name },
    publishedBy: d.published_by ? { id: d.published_by.id ?? null, email: d.published_by.email ?? null } : null,
    featureStates: d.feature_states.map((s) => ({
      enabled: s.enabled,
      value: s.value ?? null,
      multivariate_feature_state_values: s.multivariate_feature_state_values ?? [],
    })),
  };
}

/** Flagsmith's audit message for a published version (api/audit/constants.py, ENVIRONMENT_FEATURE_VERSION_PUBLISHED_MESSAGE). */
export const versionPublishedLog = (featureName: string) => `New version published for feature: ${featureName}`;
