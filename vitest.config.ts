import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/** Base64 of the bytes 0x00 .. 0x1f: the tests' checkpoint signing key, never a deployment's. */
export const TEST_AUDIT_SIGNING_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        main: "./src/index.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // A second, empty database for testing migrations on data stored before them; DB_2 holds the
          // audit logs of organisations placed there (test/placement.test.ts, README "Past one database").
          d1Databases: { DB: "00000000-0000-0000-0000-000000000000", MIGRATION_DB: "migration-test", DB_2: "flaghook-2" },
          bindings: {
            TEST_MIGRATIONS: migrations,
            ADMIN_TOKEN: "test-admin-token",
            SECRETS_KEY: "test-secrets-key-not-for-production",
            ALLOW_PRIVATE_WEBHOOK_URLS: "true",
            RETRY_SCHEDULE: "1,1,1",
            RETRY_THROTTLE_FLOOR_SECONDS: "2",
            DELIVERY_TIMEOUT_MS: "2000",
            // A fixed Ed25519 seed (base64 of 32 bytes) and origin, so tests can check signatures.
            AUDIT_SIGNING_KEY: TEST_AUDIT_SIGNING_KEY,
            AUDIT_LOG_ORIGIN: "flaghook.test",
          },
          // The local simulation of Cloudflare's Rate Limiting binding, bound under a name the Worker
          // does not read: test/operator-guessing.test.ts passes it as OPERATOR_AUTH_LIMITER.
          ratelimits: { TEST_OPERATOR_AUTH_LIMITER: { simple: { limit: 3, period: 60 } } },
          // The local simulation of Workers Analytics Engine, under a name the Worker does not read:
          // test/delivery-health.test.ts passes it on as DELIVERY_ANALYTICS.
          analyticsEngineDatasets: { TEST_DELIVERY_ANALYTICS: { dataset: "flaghook_deliveries_test" } },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      exclude: ["test/browser/**", "test/node/**"],
      setupFiles: ["./test/setup/apply-migrations.ts"],
      globalSetup: ["./test/setup/receiver.ts"],
      testTimeout: 30_000,
    },
  };
});
