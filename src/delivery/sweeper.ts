// The scheduled sweeper: what a lost queue message or a crash left behind is picked up here,
// and old deliveries are pruned (audit retention: src/audit/archive.ts).
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import { now } from "../domain/clock";
import { inJson } from "../db/bulk";
import { database, runBatch } from "../db/client";
import { attempts, auditEntries, deliveries, relayedEvents, uiSessions, webhookHealth } from "../db/schema";
import { config, type Env } from "../env";
import { logDatabases } from "../db/placement";
import { fanOutEntries, fanOutEntry } from "../ingest/record";
import { enqueueDeliveries } from "../queues";

/** A pending delivery this overdue has lost its queue message (or its worker). */
const OVERDUE_MS = 120_000;
/** Re-enqueued deliveries are left alone this long, so a busy queue is not flooded with copies. */
const REENQUEUE_BACKOFF_MS = 300_000;
const SWEEP_LIMIT = 1000;
const DAY = 86_400_000;
const HEALTH_DAYS = 8;

export async function sweep(env: Env): Promise<{ requeued: number; fannedOut: number; pruned: number }> {
  const db = database(env.DB);
  const cfg = config(env);
  const at = now();

  // Entries are looked for in every database holding logs (src/db/placement.ts).
  const stranded = [];
  for (const [logDb, orgIds] of await logDatabases(env)) {
    const rows = await logDb
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.fannedOut, false), lt(auditEntries.recordedAt, at - OVERDUE_MS), inJson(auditEntries.orgId, orgIds)))
      .limit(100);
    stranded.push(...rows);
  }
  await fanOutEntries(env, stranded.map(fanOutEntry));

  // Read through deliveries_pending, which holds only pending deliveries: a scan of the backlog (each
  // pending row read for its next_attempt_at, which the index leaves out), not the table.
  const [due] = await runBatch(db, [
    sql`select id, attempt_count from ${deliveries} indexed by deliveries_pending where status = 'pending' and next_attempt_at < ${at - OVERDUE_MS} limit ${SWEEP_LIMIT}`,
  ]);
  const overdue = due.map((row) => ({ id: String(row.id), attempt: Number(row.attempt_count) }));
  for (let i = 0; i < overdue.length; i += 90) {
    const ids = overdue.slice(i, i + 90).map((d) => d.id);
    await db
      .update(deliveries)
      .set({ nextAttemptAt: at + REENQUEUE_BACKOFF_MS })
      .where(and(inArray(deliveries.id, ids), eq(deliveries.status, "pending")));
  }
  await enqueueDeliveries(env, overdue);

  const cutoff = at - cfg.deliveryRetentionDays * DAY;
  // The oldest finished deliveries are the first in rowid order (a row's rowid is the largest yet,
  // plus one, when it is inserted, at its created_at): the head of the table is read, no index on
  // created_at kept (it cost a row written per delivery). Bounded: SWEEP_LIMIT finished rows, and
  // the pending ones among them.
  const [old] = await runBatch(db, [
    sql`select id from (select id, created_at from ${deliveries} where status != 'pending' order by rowid limit ${SWEEP_LIMIT}) where created_at < ${cutoff}`,
  ]);
  for (let i = 0; i < old.length; i += 90) {
    const ids = old.slice(i, i + 90).map((d) => String(d.id));
    await db.batch([db.delete(attempts).where(inArray(attempts.deliveryId, ids)), db.delete(deliveries).where(inArray(deliveries.id, ids))]);
  }
  // The health roll-up is kept as long as deliveries, and a week at least (the stats' longest window).
  await db.delete(webhookHealth).where(lt(webhookHealth.hour, at - Math.max(cfg.deliveryRetentionDays, HEALTH_DAYS) * DAY));
  // Relayed Flagsmith flag events are remembered only to drop Flagsmith's resends; their deliveries go too.
  await db.delete(relayedEvents).where(lt(relayedEvents.recordedAt, cutoff));
  // Expired admin-page sessions are refused when read; their rows go here.
  await db.delete(uiSessions).where(lt(uiSessions.expiresAt, at));
  return { requeued: overdue.length, fannedOut: stranded.length, pruned: old.length };
}
