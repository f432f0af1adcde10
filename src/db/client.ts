import { drizzle } from "drizzle-orm/d1";
import type { BatchItem } from "drizzle-orm/batch";
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

/** D1 allows 100 bound parameters a statement; keep IN lists and multi-row inserts under it. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs statements as one D1 batch (a single transaction); an empty list does nothing. */
export async function runBatch(db: Db, items: readonly BatchItem<"sqlite">[]): Promise<unknown[]> {
  if (!items.length) return [];
  return db.batch(items as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
}
