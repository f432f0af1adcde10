// The per-webhook attempt rate limit (WEBHOOK_ATTEMPTS_PER_SECOND, counted over 10-second windows),
// so one tenant's fan-out cannot take every consumer lane. Attempts over the limit are deferred to
// the next window: rescheduled, never dropped, never counted as failed attempts.
import { sql } from "drizzle-orm";
import { runBatch, type Db } from "../db/client";
import { webhooks } from "../db/schema";

export const RATE_WINDOW_MS = 10_000;

/**
 * Asks D1 for `wanted` attempts of each webhook in the current window; answers how many each may
 * make now. One statement per webhook, in one batch: the count is shared by every isolate.
 */
export async function grantAttempts(db: Db, wanted: ReadonlyMap<string, number>, perSecond: number, at: number): Promise<Map<string, number>> {
  const granted = new Map(wanted);
  if (perSecond <= 0 || !wanted.size) return granted;
  const window = Math.floor(at / RATE_WINDOW_MS);
  const limit = Math.floor((perSecond * RATE_WINDOW_MS) / 1000);
  const ids = [...wanted.keys()];
  // The count adds what is asked for, granted or not; what was granted follows from the count after.
  const results = await runBatch(
    db,
    ids.map(
      (id) => sql`update ${webhooks} set attempt_window_count = case when attempt_window = ${window} then attempt_window_count + ${wanted.get(id)!} else ${wanted.get(id)!} end, attempt_window = ${window} where id = ${id} returning attempt_window_count as count`,
    ),
  );
  ids.forEach((id, i) => {
    const asked = wanted.get(id)!;
    const count = Number(results[i][0]?.count ?? asked);
    granted.set(id, Math.max(0, Math.min(asked, limit - (count - asked))));
  });
  return granted;
}

/** When attempts deferred now may be made: the start of the next window. */
export const nextWindowAt = (at: number) => (Math.floor(at / RATE_WINDOW_MS) + 1) * RATE_WINDOW_MS;
