// One HTTP attempt: POST with a timeout, no redirects, and a record of what came back, its error in
// words a person can act on (domain/attempt-errors.ts).
import { httpError, noAnswer } from "../domain/attempt-errors";
import { classify, type Outcome } from "../domain/retry";
import { explainNoAnswer } from "./diagnose";

export const USER_AGENT = "flaghook/0.1.0";
const RESPONSE_EXCERPT_BYTES = 2048;

export interface AttemptResult {
  attemptedAt: number;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseBody: string | null;
  outcome: Outcome;
  /** Not sent: the URL policy refused it (its duration says nothing). */
  refused?: boolean;
}

export interface SendOptions {
  timeoutMs: number;
  /** The DNS-over-HTTPS resolver that tells an unresolvable host from other failures. */
  resolverUrl: string;
}

export async function sendAttempt(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: SendOptions,
  attemptedAt: number,
): Promise<AttemptResult> {
  const started = Date.now();
  const signal = AbortSignal.timeout(options.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json", "User-Agent": USER_AGENT, ...headers },
      redirect: "manual",
      signal,
    });
  } catch (err) {
    const durationMs = Date.now() - started;
    const timedOut = signal.aborted;
    const error = timedOut ? noAnswer.timedOut(options.timeoutMs) : await explainNoAnswer(new URL(url), err, options.resolverUrl);
    return { attemptedAt, statusCode: null, durationMs, error, responseBody: null, outcome: classify(null, error, null, timedOut) };
  }
  let responseBody: string | null = null;
  let cutOff = false;
  try {
    responseBody = await readExcerpt(res);
  } catch {
    // A timeout while the body streams in is a timeout like any other; else the receiver hung up mid-answer.
    if (signal.aborted) {
      const error = noAnswer.timedOut(options.timeoutMs);
      return { attemptedAt, statusCode: null, durationMs: Date.now() - started, error, responseBody: null, outcome: classify(null, error, null, true) };
    }
    cutOff = true;
  }
  const ok = res.status >= 200 && res.status < 300;
  const error = ok
    ? null
    : cutOff
      ? noAnswer.cutOff(res.status)
      : httpError({ status: res.status, body: responseBody, location: res.headers.get("location"), server: res.headers.get("server") });
  return {
    attemptedAt,
    statusCode: res.status,
    durationMs: Date.now() - started,
    error,
    responseBody,
    outcome: classify(res.status, error, res.headers.get("retry-after"), false),
  };
}

/** An attempt that was not sent: no status, no body, and a duration of 0 that tells nothing apart. */
export function refusedAttempt(error: string, attemptedAt: number): AttemptResult {
  return { attemptedAt, statusCode: null, durationMs: 0, error, responseBody: null, outcome: classify(null, error, null, false), refused: true };
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
