// Delivery health (SPEC 12), pure: the hourly roll-up's latency histogram and the percentiles read
// from it, a webhook's health, and a window's figures from its hours. The consumer writes the hours
// (src/health/rollup.ts); src/health/stats.ts reads them.

export const HOUR_MS = 3_600_000;

/** The windows stats are asked for, in hours. */
export const HEALTH_WINDOWS = { "24h": 24, "7d": 168 } as const;
export type HealthWindow = keyof typeof HEALTH_WINDOWS;

/** The start of the hour (UTC) holding `ms`. */
export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;

/**
 * Upper bounds (ms, inclusive) of the attempt-duration histogram's buckets; a last bucket holds what
 * is slower. About 1.5x apart, so a percentile read from it is off by at most half a bucket.
 */
export const LATENCY_BOUNDS_MS = [10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2500, 5000, 10000] as const;
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;
/** The roll-up's column of each bucket: le_10 ... le_10000 (at most that many ms), then gt_10000. */
export const LATENCY_COLUMNS = [...LATENCY_BOUNDS_MS.map((b) => `le_${b}`), `gt_${LATENCY_BOUNDS_MS.at(-1)}`];

/** The bucket an attempt of `ms` falls in. */
export function latencyBucket(ms: number): number {
  let i = 0;
  while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]) i++;
  return i;
}

/**
 * The q-quantile (0..1) of the durations counted in `buckets`, interpolated linearly inside its
 * bucket (the open last bucket answers its lower bound); null when nothing was counted.
 */
export function quantileMs(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i];
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      if (i >= LATENCY_BOUNDS_MS.length) return lower;
      return Math.round(lower + ((LATENCY_BOUNDS_MS[i] - lower) * (rank - below)) / n);
    }
    below += n;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}

export type WebhookHealth = "healthy" | "failing" | "disabled";

/**
 * `disabled` when the webhook is; `failing` from the first attempt that fails (the consumer sets
 * failing_since) until one succeeds; `healthy` otherwise, including before any attempt.
 */
export const webhookHealth = (w: { enabled: boolean; failingSince: number | null }): WebhookHealth =>
  !w.enabled ? "disabled" : w.failingSince !== null ? "failing" : "healthy";

/** One webhook's hour of the roll-up. */
export interface HealthHour {
  hour: number;
  /** Deliveries that succeeded, and that failed for good (their last attempt), in the hour. */
  delivered: number;
  failed: number;
  attempts: number;
  /** Attempts that did not succeed, refusals included; and those the URL policy refused (never sent). */
  attemptsFailed: number;
  attemptsRefused: number;
  /** Sent attempts by duration, LATENCY_BUCKETS counts. */
  latency: number[];
}

/** What the stats answer says besides the hours: the backlog now, and the last success and failure. */
export interface HealthNow {
  pending: number;
  oldestPendingAt: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastFailure: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A window's figures as GET .../stats answers them. `hours` may be sparse (an hour without attempts
 * has no row); by_hour lists every hour of the window, oldest first, the current one last.
 */
export function windowStats(window: HealthWindow, hours: readonly HealthHour[], now: HealthNow, at: number) {
  const span = HEALTH_WINDOWS[window];
  const last = hourOf(at);
  const first = last - (span - 1) * HOUR_MS;
  const byHour = new Map(hours.filter((h) => h.hour >= first && h.hour <= last).map((h) => [h.hour, h]));
  const sum = (pick: (h: HealthHour) => number) => [...byHour.values()].reduce((a, h) => a + pick(h), 0);
  const latency = Array.from({ length: LATENCY_BUCKETS }, (_, i) => sum((h) => h.latency[i] ?? 0));
  const succeeded = sum((h) => h.delivered);
  const failed = sum((h) => h.failed);
  return {
    window,
    deliveries: succeeded + failed + now.pending,
    succeeded,
    failed,
    pending: now.pending,
    success_rate: succeeded + failed ? Math.round((succeeded / (succeeded + failed)) * 10_000) / 10_000 : null,
    attempts: sum((h) => h.attempts),
    attempts_failed: sum((h) => h.attemptsFailed),
    attempts_refused: sum((h) => h.attemptsRefused),
    p50_ms: quantileMs(latency, 0.5),
    p95_ms: quantileMs(latency, 0.95),
    last_success_at: iso(now.lastSuccessAt),
    last_failure_at: iso(now.lastFailureAt),
    last_failure: now.lastFailure,
    oldest_pending_at: iso(now.oldestPendingAt),
    by_hour: Array.from({ length: span }, (_, i) => {
      const hour = first + i * HOUR_MS;
      const h = byHour.get(hour);
      return { hour: iso(hour)!, succeeded: h?.delivered ?? 0, failed: h?.failed ?? 0, attempts: h?.attempts ?? 0, attempts_failed: h?.attemptsFailed ?? 0 };
    }),
  };
}

export type WindowStats = ReturnType<typeof windowStats>;
