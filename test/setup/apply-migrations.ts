import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// Every database an organisation can be placed in has the whole schema (src/db/placement.ts).
await applyD1Migrations(env.DB_2, env.TEST_MIGRATIONS);
