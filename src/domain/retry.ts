// When to try a delivery again (SPEC 5): the schedule, jitter, Retry-After, and what is final.

export type Outcome =
  | { kind: "delivered"; status: number }
  | { kind: "gone" } // 410: the receiver asks us to stop
  | { kind: "retryable"; status: number | null; error: string | null; retryAfterSeconds: number | null; slow: boolean };

/** Classifies one attempt. `slow` marks 429s and timeouts, which wait at least 60 s. */
export function classify(status: number | null, error: string | null, retryAfter: string | null, timedOut: boolean): Outcome {
  if (status !== null && status >= 200 && status < 300) return { kind: "delivered", status };
  if (status === 410) return { kind: "gone" };
  return {
    kind: "retryable",
    status,
    error,
    retryAfterSeconds: parseRetryAfter(retryAfter),
    slow: status === 429 || timedOut,
  };
}

/** Retry-After as seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - nowMs) / 1000));
}

/**
 * Seconds to wait before attempt `attemptsMade + 1`, or null when the schedule is exhausted.
 * The scheduled delay gets +-20% jitter; Retry-After is honoured within [delay, 2 x delay];
 * 429s and timeouts wait at least `slowFloorSeconds` (60 s unless configured).
 */
export function nextDelaySeconds(
  schedule: readonly number[],
  attemptsMade: number,
  outcome: Extract<Outcome, { kind: "retryable" }>,
  slowFloorSeconds: number,
  random: () => number = Math.random,
): number | null {
  const base = schedule[attemptsMade - 1];
  if (base === undefined) return null;
  let delay = base * (0.8 + 0.4 * random());
  if (outcome.retryAfterSeconds !== null) delay = Math.min(Math.max(outcome.retryAfterSeconds, delay), 2 * delay);
  if (outcome.slow) delay = Math.max(delay, slowFloorSeconds);
  return Math.ceil(delay);
}
