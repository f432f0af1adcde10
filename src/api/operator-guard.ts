// Slowing down guesses of the operator token. Each wrong Bearer token is logged (never the token)
// and counted per client (CF-Connecting-IP): by Cloudflare's Rate Limiting binding when
// OPERATOR_AUTH_LIMITER is bound (shared by the isolates of a location), else in this isolate
// (OPERATOR_AUTH_FAILURES_PER_MINUTE). A client over the limit is refused with 429, even with the
// right token, until its minute is over, so a guess that happens to be right tells it nothing.
import { now } from "../domain/clock";
import { ApiError } from "../domain/errors";

const WINDOW_MS = 60_000;
const MAX_CLIENTS = 10_000;

/** Per client: failures in the current window, and until when it is refused. */
const clients = new Map<string, { windowStart: number; failures: number; blockedUntil: number }>();

export const clientOf = (req: Request) => req.headers.get("cf-connecting-ip") ?? "unknown";

const tooMany = (untilMs: number, at: number) => {
  const seconds = Math.max(1, Math.ceil((untilMs - at) / 1000));
  return new ApiError(429, "too_many_failures", `too many wrong operator tokens from this client; try again in ${seconds} s`, [], { "Retry-After": String(seconds) });
};

/** Throws 429 while the client is refused. */
export function refuseBlockedClient(client: string): void {
  const at = now();
  const state = clients.get(client);
  if (state && state.blockedUntil > at) throw tooMany(state.blockedUntil, at);
}

/** Logs and counts a wrong token; throws 429 once the client is over the limit. */
export async function countFailure(client: string, where: string, perMinute: number, limiter: RateLimit | undefined): Promise<void> {
  const at = now();
  let state = clients.get(client);
  if (!state || at - state.windowStart >= WINDOW_MS) {
    if (clients.size >= MAX_CLIENTS) clients.clear();
    state = { windowStart: at, failures: 0, blockedUntil: 0 };
    clients.set(client, state);
  }
  state.failures++;
  console.warn(`operator token refused: client ${client}, ${where}, failure ${state.failures} this minute`);
  const over = limiter ? !(await limiter.limit({ key: `operator:${client}` })).success : perMinute > 0 && state.failures > perMinute;
  if (over) {
    state.blockedUntil = limiter ? at + WINDOW_MS : state.windowStart + WINDOW_MS;
    console.warn(`operator token guessing: client ${client} refused until ${new Date(state.blockedUntil).toISOString()}`);
    throw tooMany(state.blockedUntil, at);
  }
}
