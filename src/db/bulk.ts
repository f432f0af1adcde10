// Statements over many rows or ids that bind one JSON value, read by SQLite's json_each.
// Drizzle builds a statement by testing every bound value against its entity classes; in recording
// and delivery that was about a third of the Worker's JavaScript time. One bound value also keeps
// these statements under D1's 100 parameters without chunking.
import { sql, type Column, type SQL } from "drizzle-orm";
import { getTableConfig, type SQLiteTable } from "drizzle-orm/sqlite-core";

/** `column IN (values)`, bound as one JSON array. */
export const inJson = (column: Column, values: readonly (string | number)[]): SQL =>
  sql`${column} in (select value from json_each(${JSON.stringify(values)}))`;

/** JSON text a bulk statement binds at most (D1 takes 2 MB a value; rows stay well under). */
const MAX_JSON_CHARS = 500_000;

/**
 * INSERT … ON CONFLICT DO NOTHING of `rows` (values in the order of `columns`), a statement per
 * 500 KB of JSON. `expressions` may replace a column's `value ->> i` with SQL over it (as text), and
 * over `key`, the row's position in its statement; `where` (SQL over `value`) skips rows. With
 * `onConflict: "fail"`, a row breaking a unique index fails the statement instead of being skipped.
 */
export function insertRows(
  table: SQLiteTable,
  columns: readonly Column[],
  rows: readonly unknown[][],
  options: {
    expressions?: Partial<Record<string, string>>;
    returning?: readonly Column[];
    where?: string;
    onConflict?: "nothing" | "fail";
  } = {},
): SQL[] {
  if (!rows.length) return [];
  const names = columns.map((c) => `"${c.name}"`).join(", ");
  const values = columns.map((c, i) => options.expressions?.[c.name] ?? `value ->> ${i}`).join(", ");
  const returning = options.returning ? ` returning ${options.returning.map((c) => `"${c.name}"`).join(", ")}` : "";
  // Each row as JSONB, parsed once: reading its columns from JSON text would parse it once per column.
  const head = sql.raw(`insert into "${getTableConfig(table).name}" (${names}) select ${values} from (select key, jsonb(value) as value from json_each(`);
  const onConflict = options.onConflict === "fail" ? "" : " on conflict do nothing";
  const tail = sql.raw(`)) where ${options.where ?? "true"}${onConflict}${returning}`);
  return jsonChunks(rows).map((json) => sql.join([head, sql`${json}`, tail]));
}

/** `rows` as JSON arrays of at most 500 KB each, to bind as one value a statement (none for no rows). */
export function jsonChunks(rows: readonly unknown[]): string[] {
  const chunks: string[] = [];
  let part: string[] = [];
  let size = 0;
  const flush = () => {
    chunks.push(`[${part.join(",")}]`);
    part = [];
    size = 0;
  };
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (part.length && size + json.length > MAX_JSON_CHARS) flush();
    part.push(json);
    size += json.length + 1;
  }
  if (part.length) flush();
  return chunks;
}
