// One HTTP attempt: POST with a timeout, no redirects, and a record of what came back.
import { classify, type Outcome } from "../domain/retry";

export const USER_AGENT = "flaghook/0.1.0";
const RESPONSE_EXCERPT_BYTES = 2048;

export interface AttemptResult {
  attemptedAt: number;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseBody: string | null;
  outcome: Outcome;
}

export async function sendAttempt(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  attemptedAt: number,
): Promise<AttemptResult> {
  const started = Date.now();
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json", "User-Agent": USER_AGENT, ...headers },
      redirect: "manual",
      signal,
    });
    const responseBody = await readExcerpt(res);
    const error = res.status >= 300 && res.status < 400 ? `redirect to ${res.headers.get("location") ?? "?"} not followed` : null;
    return {
      attemptedAt,
      statusCode: res.status,
      durationMs: Date.now() - started,
      error,
      responseBody,
      outcome: classify(res.status, error, res.headers.get("retry-after"), false),
    };
  } catch (err) {
    const timedOut = signal.aborted;
    const error = timedOut ? `timed out after ${timeoutMs} ms` : `connection failed: ${errorMessage(err)}`;
    return {
      attemptedAt,
      statusCode: null,
      durationMs: Date.now() - started,
      error,
      responseBody: null,
      outcome: classify(null, error, null, timedOut),
    };
  }
}

/** An attempt that was not sent: no status, no body, and a duration of 0 that tells nothing apart. */
export function refusedAttempt(error: string, attemptedAt: number): AttemptResult {
  return { attemptedAt, statusCode: null, durationMs: 0, error, responseBody: null, outcome: classify(null, error, null, false) };
}

/** The first 2 KiB of the response, read without buffering the rest. */
async function readExcerpt(res: Response): Promise<string | null> {
  if (!res.body) return null;
  // A short body of known length (most receivers answer a few bytes) is read in one go.
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length <= RESPONSE_EXCERPT_BYTES) return res.text();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < RESPONSE_EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(Math.min(size, RESPONSE_EXCERPT_BYTES));
  let offset = 0;
  for (const c of chunks) {
    const part = c.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
    if (offset >= bytes.length) break;
  }
  return new TextDecoder().decode(bytes);
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
