// The scheduled check of the signed logs: each run verifies a window of a few organisations' logs,
// moving on every minute, so the whole of every log is read again in turn. A failure is recorded as
// a system audit entry (delivered as AUDIT_LOG_CREATED), an AUDIT_VERIFICATION_FAILED event and an
// error log line, once a day per distinct failure.
import { and, eq, gt } from "drizzle-orm";
import { isoMicro, isoTime, now } from "../domain/clock";
import { database, runBatch, type Db } from "../db/client";
import { auditEntries } from "../db/schema";
import { config, type Env } from "../env";
import { recordSystemEvent } from "../ingest/system-events";
import { enqueueDeliveries } from "../queues";
import { logEventDeliveries } from "./events";
import { logHeads } from "./seal";
import { loadSigner } from "./signer";
import { verifyLog, type Verification } from "./verify";

/** Entries checked per organisation per run: a log of 1M entries is read again every ~16 hours. */
export const WATCH_WINDOW = 1024;
/** Organisations checked per run. */
const WATCH_LOGS = 20;
const MINUTE = 60_000;
const DAY = 86_400_000;

export async function watchLogs(env: Env): Promise<{ orgId: number; result: Verification }[]> {
  const signing = loadSigner(config(env).auditSigningKey);
  if (!signing) return [];
  const signer = await signing;
  const at = now();
  const turn = Math.floor(at / MINUTE);
  const sealed = (await logHeads(env)).filter((h) => h.sealed > 0);
  const chosen = sealed.length <= WATCH_LOGS ? sealed : Array.from({ length: WATCH_LOGS }, (_, i) => sealed[(turn * WATCH_LOGS + i) % sealed.length]);
  const results = [];
  for (const head of chosen) {
    const windows = Math.ceil(head.sealed / WATCH_WINDOW);
    const from = (turn % windows) * WATCH_WINDOW + 1;
    try {
      const result = await verifyLog(head.db, env.AUDIT_BUCKET, signer, head.orgId, { from, limit: WATCH_WINDOW });
      if (!result.ok) await alert(env, head.db, head.orgId, result, at);
      results.push({ orgId: head.orgId, result });
    } catch (err) {
      console.error(`verifying the audit log of organisation ${head.orgId} failed: ${String(err)}`);
    }
  }
  return results;
}

async function alert(env: Env, db: Db, orgId: number, result: Verification, at: number): Promise<void> {
  const [first] = result.problems;
  const log = `Audit log verification failed: ${first.seq === null ? "" : `entry ${first.seq}: `}${first.problem}${result.problems.length > 1 ? ` (and ${result.problems.length - 1} more)` : ""}`;
  console.error(JSON.stringify({ alert: "audit_log_verification_failed", organisation: orgId, tree_size: result.tree_size, problems: result.problems.slice(0, 20) }));
  const [seen] = await db
    .select({ seq: auditEntries.seq })
    .from(auditEntries)
    .where(
      and(
        eq(auditEntries.orgId, orgId),
        eq(auditEntries.relatedObjectType, "AUDIT_LOG"),
        gt(auditEntries.sortTime, isoMicro(at - DAY)),
        eq(auditEntries.log, log),
      ),
    )
    .limit(1);
  if (seen) return;
  await recordSystemEvent(env, orgId, { log, relatedType: "AUDIT_LOG" });
  // The deliveries live in DB, whichever database holds the log (src/db/placement.ts).
  const primary = database(env.DB);
  const event = await logEventDeliveries(
    primary,
    orgId,
    "AUDIT_VERIFICATION_FAILED",
    {
      organisation: orgId,
      tree_size: result.tree_size,
      checked_from: result.from,
      checked_to: result.to,
      problems: result.problems.slice(0, 20),
      detected_at: isoTime(at),
    },
    `verification:${orgId}:${at}`,
    at,
  );
  await runBatch(primary, event.writes);
  await enqueueDeliveries(env, event.queued);
}
