// The hourly roll-up of delivery health (table webhook_health), written by the delivery consumer with
// the attempts it records: one row per webhook and hour touched by a consumer run, upserted by one
// statement in the run's one D1 batch, never a write per attempt. Stats read these rows, never attempts.
import { sql, type SQL } from "drizzle-orm";
import { hourOf, LATENCY_BUCKETS, LATENCY_COLUMNS as LATENCY, latencyBucket } from "../domain/health";

/** The roll-up's columns in the order of a row; the latency histogram's follow the counters. */
const COUNTERS = ["delivered", "failed", "attempts", "attempts_failed", "attempts_refused"];
const COLUMNS = ["webhook_id", "hour", ...COUNTERS, ...LATENCY, "last_success_at", "last_failure_at", "last_failure"];
const at = (name: string) => COLUMNS.indexOf(name);

const UPSERT = (() => {
  const values = COLUMNS.map((_, i) => `value ->> ${i}`).join(", ");
  const add = [...COUNTERS, ...LATENCY].map((c) => `${c} = ${c} + excluded.${c}`).join(", ");
  const latest = (c: string) => `${c} = coalesce(max(${c}, excluded.${c}), ${c}, excluded.${c})`;
  return {
    head: `insert into webhook_health (${COLUMNS.join(", ")}) select ${values} from json_each(`,
    // "where true" lets SQLite read the upsert clause after a SELECT.
    tail:
      `) where true on conflict (webhook_id, hour) do update set ${add}, ${latest("last_success_at")}, ` +
      "last_failure = case when excluded.last_failure_at >= coalesce(last_failure_at, 0) then excluded.last_failure else last_failure end, " +
      `${latest("last_failure_at")}`,
  };
})();

/** One attempt as the roll-up counts it. */
export interface RolledAttempt {
  webhookId: string;
  attemptedAt: number;
  durationMs: number;
  ok: boolean;
  /** Not sent: refused by the URL policy (its duration is not a latency). */
  refused: boolean;
  /** The delivery's fate decided by this attempt: delivered, failed for good, or neither (retried). */
  final: "delivered" | "failed" | null;
  error: string | null;
}

/** The rows of one consumer run, summed in memory. */
export class HealthRollup {
  private readonly rows = new Map<string, unknown[]>();

  add(a: RolledAttempt): void {
    const hour = hourOf(a.attemptedAt);
    const key = `${a.webhookId}:${hour}`;
    let row = this.rows.get(key);
    if (!row) {
      row = [a.webhookId, hour, ...new Array<number>(COUNTERS.length + LATENCY_BUCKETS).fill(0), null, null, null];
      this.rows.set(key, row);
    }
    const bump = (column: string) => (row[at(column)] = (row[at(column)] as number) + 1);
    bump("attempts");
    if (a.final === "delivered") bump("delivered");
    if (a.final === "failed") bump("failed");
    if (a.refused) bump("attempts_refused");
    else bump(LATENCY[latencyBucket(a.durationMs)]);
    if (a.ok) {
      row[at("last_success_at")] = Math.max(a.attemptedAt, (row[at("last_success_at")] as number | null) ?? 0);
    } else {
      bump("attempts_failed");
      if (a.attemptedAt >= ((row[at("last_failure_at")] as number | null) ?? 0)) {
        row[at("last_failure_at")] = a.attemptedAt;
        row[at("last_failure")] = a.error;
      }
    }
  }

  /** The upsert of every row (none when no attempt was counted). */
  statements(): SQL[] {
    if (!this.rows.size) return [];
    return [sql.join([sql.raw(UPSERT.head), sql`${JSON.stringify([...this.rows.values()])}`, sql.raw(UPSERT.tail)])];
  }
}
