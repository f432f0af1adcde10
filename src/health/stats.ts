// A webhook's delivery health over a window (GET .../webhooks/{id}/stats, and its admin page): the
// hourly roll-up's rows of the window, the backlog now and the last success and failure, read in one
// D1 batch. What it reads grows with the window's hours and the pending backlog, never with the
// number of attempts a webhook ever made.
import { sql } from "drizzle-orm";
import { HEALTH_WINDOWS, HOUR_MS, hourOf, LATENCY_COLUMNS, webhookHealth, windowStats, type HealthHour, type HealthWindow } from "../domain/health";
import { runBatch, type Db } from "../db/client";
import type { WebhookRow } from "../db/schema";

type Row = Record<string, unknown>;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function webhookStats(db: Db, webhook: WebhookRow, window: HealthWindow, at: number) {
  const first = hourOf(at) - (HEALTH_WINDOWS[window] - 1) * HOUR_MS;
  const [hours, backlog, success, failure] = await runBatch(db, [
    sql`select * from webhook_health where webhook_id = ${webhook.id} and hour >= ${first}`,
    // deliveries_pending holds exactly the pending deliveries, by webhook and creation.
    sql`select count(*) as pending, min(created_at) as oldest from deliveries where webhook_id = ${webhook.id} and status = 'pending'`,
    sql`select max(last_success_at) as at from webhook_health where webhook_id = ${webhook.id}`,
    sql`select last_failure_at as at, last_failure as error from webhook_health where webhook_id = ${webhook.id} and last_failure_at is not null order by hour desc limit 1`,
  ]);
  const stats = windowStats(
    window,
    hours.map(hourFrom),
    {
      pending: Number(backlog[0]?.pending ?? 0),
      oldestPendingAt: num(backlog[0]?.oldest),
      lastSuccessAt: num(success[0]?.at),
      lastFailureAt: num(failure[0]?.at),
      lastFailure: (failure[0]?.error as string | null | undefined) ?? null,
    },
    at,
  );
  return { ...stats, health: webhookHealth(webhook) };
}

function hourFrom(row: Row): HealthHour {
  return {
    hour: Number(row.hour),
    delivered: Number(row.delivered),
    failed: Number(row.failed),
    attempts: Number(row.attempts),
    attemptsFailed: Number(row.attempts_failed),
    attemptsRefused: Number(row.attempts_refused),
    latency: LATENCY_COLUMNS.map((c) => Number(row[c])),
  };
}

export type WebhookStats = Awaited<ReturnType<typeof webhookStats>>;

/** The last 24 hours of several webhooks at once (the webhooks page): one grouped read of the roll-up. */
export interface DaySummary {
  delivered: number;
  failed: number;
  attempts: number;
  attemptsFailed: number;
  lastFailure: string | null;
}

export async function lastDay(db: Db, webhookIds: readonly string[], at: number): Promise<Map<string, DaySummary>> {
  const out = new Map<string, DaySummary>();
  if (!webhookIds.length) return out;
  const since = hourOf(at) - 23 * HOUR_MS;
  const [rows] = await runBatch(db, [
    sql`select webhook_id, sum(delivered) as delivered, sum(failed) as failed, sum(attempts) as attempts, sum(attempts_failed) as attempts_failed,
        (select h.last_failure from webhook_health h where h.webhook_id = w.webhook_id and h.hour >= ${since} and h.last_failure_at is not null order by h.hour desc limit 1) as last_failure
        from webhook_health w where webhook_id in (select value from json_each(${JSON.stringify(webhookIds)})) and hour >= ${since} group by webhook_id`,
  ]);
  for (const r of rows) {
    out.set(String(r.webhook_id), {
      delivered: Number(r.delivered),
      failed: Number(r.failed),
      attempts: Number(r.attempts),
      attemptsFailed: Number(r.attempts_failed),
      lastFailure: (r.last_failure as string | null) ?? null,
    });
  }
  return out;
}
