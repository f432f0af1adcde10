import { drizzle } from "drizzle-orm/d1";
import { is, SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import * as schema from "./schema";

export type Db = ReturnType<typeof database>;

const handles = new WeakMap<D1Database, ReturnType<typeof drizzle<typeof schema>>>();

/** One drizzle handle per D1 binding, reused across requests of an isolate. */
export function database(d1: D1Database) {
  let db = handles.get(d1);
  if (!db) {
    db = drizzle(d1, { schema });
    handles.set(d1, db);
  }
  return db;
}

/** A statement for `runBatch`: a drizzle query, or SQL such as src/db/bulk.ts builds. */
export type Statement = { toSQL(): { sql: string; params: unknown[] } } | SQL;

const dialect = new SQLiteAsyncDialect();

/**
 * Runs statements as one D1 batch (a single transaction); an empty list does nothing. Answers each
 * statement's rows as SQLite names them (a RETURNING clause's, or a select's), without drizzle's
 * mapping. (drizzle's own batch cannot take raw SQL with parameters.)
 */
export async function runBatch(db: Db, items: readonly Statement[]): Promise<Record<string, unknown>[][]> {
  if (!items.length) return [];
  const statements = items.map((item) => {
    const query = is(item, SQL) ? dialect.sqlToQuery(item) : item.toSQL();
    return db.$client.prepare(query.sql).bind(...query.params);
  });
  const results = await db.$client.batch<Record<string, unknown>>(statements);
  return results.map((r) => r.results ?? []);
}
