// Where an organisation's audit log lives: the one place that decides (README, "Past one
// database"). Everything else of flaghook lives in the D1 binding DB: organisations, keys,
// sessions, webhooks, deliveries, the catalogue of projects and environments. The audit log (its
// entries and their search index and event ids, the Merkle tree, checkpoints, the archive's index,
// retention) of an organisation lives in the binding named by its `database` column, chosen when the
// operator creates it (null: DB), so one deployment can spread its logs over several databases.
import { eq } from "drizzle-orm";
import type { Env } from "../env";
import { ApiError } from "../domain/errors";
import { database, type Db } from "./client";
import { organisations } from "./schema";

export const PRIMARY = "DB";
/** The names a database binding may have: DB, or DB_ and a suffix (DB_2, DB_EU). */
export const DATABASE_BINDING = /^DB(_[A-Z0-9_]{1,32})?$/;

/** The D1 binding called `name`, if the Worker has one. */
export function binding(env: Env, name: string): D1Database | undefined {
  if (!DATABASE_BINDING.test(name)) return undefined;
  const value = (env as unknown as Record<string, unknown>)[name];
  return value && typeof value === "object" && "prepare" in value && "batch" in value ? (value as D1Database) : undefined;
}

/** Every database binding of the Worker, DB first. */
export function databaseBindings(env: Env): string[] {
  return [PRIMARY, ...Object.keys(env).filter((k) => k !== PRIMARY && binding(env, k)).sort()];
}

/** An organisation's database never changes once created: kept per isolate, read once. */
const placed = new Map<number, string>();

/** The name of the binding holding the organisation's log (DB for an organisation not found). */
export async function databaseName(env: Env, orgId: number): Promise<string> {
  const known = placed.get(orgId);
  if (known) return known;
  const [row] = await database(env.DB).select({ database: organisations.database }).from(organisations).where(eq(organisations.id, orgId));
  if (!row) return PRIMARY; // not kept: the organisation may yet be created
  const name = row.database ?? PRIMARY;
  placed.set(orgId, name);
  return name;
}

/** The drizzle handle of the database holding the organisation's audit log. */
export async function logDatabase(env: Env, orgId: number): Promise<Db> {
  const name = await databaseName(env, orgId);
  const d1 = binding(env, name);
  if (!d1) throw new Error(`organisation ${orgId} lives in database ${name}, which this Worker has no binding for`);
  return database(d1);
}

/** Organisations grouped by the database holding their logs: what scheduled work runs per database. */
export async function byDatabase(env: Env, orgIds: readonly number[]): Promise<Map<Db, number[]>> {
  const groups = new Map<Db, number[]>();
  for (const orgId of orgIds) {
    const db = await logDatabase(env, orgId);
    groups.set(db, [...(groups.get(db) ?? []), orgId]);
  }
  return groups;
}

/**
 * Every organisation grouped by the database holding its log, for the scheduled work (sealing,
 * checking, archiving, retention, the sweeper) that runs over all logs. An organisation placed in a
 * database this Worker has no binding for is left out with an error logged, never read from DB.
 */
export async function logDatabases(env: Env): Promise<[Db, number[]][]> {
  const rows = await database(env.DB).select({ id: organisations.id, database: organisations.database }).from(organisations);
  const groups = new Map<string, number[]>();
  for (const row of rows) {
    const name = row.database ?? PRIMARY;
    groups.set(name, [...(groups.get(name) ?? []), row.id]);
  }
  const out: [Db, number[]][] = [];
  for (const [name, orgIds] of groups) {
    const d1 = binding(env, name);
    if (d1) out.push([database(d1), orgIds]);
    else console.error(`organisations ${orgIds.join(", ")} live in database ${name}, which this Worker has no binding for: their logs are skipped`);
  }
  return out;
}

/** The `database` asked for a new organisation, checked against the Worker's bindings (null: DB). */
export function placementFor(env: Env, requested: string | undefined): string | null {
  if (requested === undefined || requested === PRIMARY) return null;
  if (!binding(env, requested)) {
    const known = databaseBindings(env);
    throw new ApiError(400, "validation_failed", `database ${requested} is not one of this Worker's D1 bindings (${known.join(", ")})`, [
      { field: "database", message: `one of ${known.join(", ")}` },
    ]);
  }
  return requested;
}

/** Whether the organisation's log lives in DB itself (then its writes can share DB's batches). */
export const inPrimary = async (env: Env, orgId: number) => (await databaseName(env, orgId)) === PRIMARY;
