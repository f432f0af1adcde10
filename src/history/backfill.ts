// Audit entries recorded before the flag history existed are projected by the scheduled handler, a
// slice a run, through the same writes the recorder uses (a replayed slice adds nothing).
// Flagsmith's relayed FLAG_UPDATED / FLAG_DELETED of that time have no audit entry and stay out.
import { and, asc, eq, gt, lte } from "drizzle-orm";
import type { ChangeEvent } from "../domain/event";
import { database, runBatch } from "../db/client";
import { auditEntries, historyBackfill } from "../db/schema";
import type { Env } from "../env";
import { flagHistoryWrites } from "./record";

const SLICE = 1000;

/** Projects the next slice of old entries; answers how many it read (0 once done). */
export async function backfillFlagHistory(env: Env, at: number): Promise<number> {
  const db = database(env.DB);
  const [progress] = await db.select().from(historyBackfill).where(eq(historyBackfill.name, "flag_history"));
  if (!progress || progress.doneThrough >= progress.upto) return 0;
  const rows = await db
    .select({ id: auditEntries.id, orgId: auditEntries.orgId, eventId: auditEntries.eventId, createdDate: auditEntries.createdDate, receivedAt: auditEntries.receivedAt, event: auditEntries.event })
    .from(auditEntries)
    .where(and(gt(auditEntries.id, progress.doneThrough), lte(auditEntries.id, progress.upto)))
    .orderBy(asc(auditEntries.id))
    .limit(SLICE);
  // The entry's created_date is the time the recorder used: occurred_at, else receipt.
  const messages = rows.map((r) => ({ orgId: r.orgId, eventId: r.eventId, receivedAt: r.receivedAt, event: { ...(JSON.parse(r.event) as ChangeEvent), occurred_at: r.createdDate } }));
  const through = rows.length < SLICE ? progress.upto : rows.at(-1)!.id;
  await runBatch(db, [
    ...flagHistoryWrites(messages, at),
    db.update(historyBackfill).set({ doneThrough: through }).where(eq(historyBackfill.name, "flag_history")),
  ]);
  return rows.length;
}
