import type { D1Migration } from "cloudflare:test";
import type { Env as FlaghookEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends FlaghookEnv {
      TEST_MIGRATIONS: D1Migration[];
      TEST_OPERATOR_AUTH_LIMITER: RateLimit;
      TEST_DELIVERY_ANALYTICS: AnalyticsEngineDataset;
      MIGRATION_DB: D1Database;
      DB_2: D1Database;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
