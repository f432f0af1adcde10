// Tables that triggers keep from audit_entries, created by hand-written migrations because
// drizzle-kit writes neither FTS5 nor WITHOUT ROWID tables: declared here for queries only.
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The FTS5 trigram index of entries' search text (migration issue16_audit_search), contentless:
 * rowid (org_id << 32) | seq; `backdated` is "yes" for an entry that arrived out of time order.
 */
export const auditSearch = sqliteTable("audit_search", { rowid: integer("rowid"), log: text("log"), backdated: text("backdated") });

/**
 * Every event id an organisation's log has recorded, with its entry's seq (migration
 * issue16_audit_event_ids), WITHOUT ROWID. It stays when the entry moves to the archive.
 */
export const auditEventIds = sqliteTable("audit_event_ids", {
  orgId: integer("org_id").notNull(),
  eventId: text("event_id").notNull(),
  seq: integer("seq").notNull(),
});
