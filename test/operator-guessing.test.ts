// Operator token guessing (issue 14, point 9): wrong Bearer tokens are logged and counted per client
// (CF-Connecting-IP). Past the limit the client is refused with 429 and Retry-After, even with the
// right token, until its minute is over; other clients are not affected. Counted by Cloudflare's
// Rate Limiting binding when OPERATOR_AUTH_LIMITER is bound (here its local simulation, 3 a minute),
// else in the isolate (OPERATOR_AUTH_FAILURES_PER_MINUTE, 10 by default).
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import { ADMIN, expectError } from "./helpers";

afterEach(() => {
  resetClock();
  vi.restoreAllMocks();
});

let clients = 0;
const newClient = () => `203.0.113.${++clients}`;

function listOrganisations(client: string, authorization: string, workerEnv: typeof env = env) {
  const req = new Request("http://flaghook.test/api/v1/organisations", { headers: { authorization, "cf-connecting-ip": client } });
  return worker.fetch(req, workerEnv, createExecutionContext());
}

describe("guessing the operator token", () => {
  it("in the isolate: the 11th wrong token in a minute answers 429, and so does the right one, until the minute is over", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const guesser = newClient();
    for (let i = 0; i < 10; i++) await expectError(await listOrganisations(guesser, `Bearer guess-${i}`), 401, "unauthorized");
    const refused = await listOrganisations(guesser, "Bearer guess-10");
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    await expectError(refused, 429, "too_many_failures");
    // The right token is refused too: a right guess now would tell the guesser nothing.
    await expectError(await listOrganisations(guesser, ADMIN.Authorization), 429, "too_many_failures");
    // Someone else is not affected.
    expect((await listOrganisations(newClient(), ADMIN.Authorization)).status).toBe(200);
    // A minute later the guesser's client may try again.
    advanceClock(61_000);
    expect((await listOrganisations(guesser, ADMIN.Authorization)).status).toBe(200);

    const lines = warn.mock.calls.map((args) => String(args[0]));
    expect(lines.filter((l) => l.startsWith(`operator token refused: client ${guesser}, GET /api/v1/organisations`))).toHaveLength(11);
    expect(lines.some((l) => l.startsWith(`operator token guessing: client ${guesser} refused until`))).toBe(true);
    expect(lines.join("\n")).not.toContain("guess-");
  });

  it("OPERATOR_AUTH_FAILURES_PER_MINUTE sets the limit", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const strict = { ...env, OPERATOR_AUTH_FAILURES_PER_MINUTE: "2" };
    const guesser = newClient();
    for (let i = 0; i < 2; i++) await expectError(await listOrganisations(guesser, `Bearer wrong-${i}`, strict), 401, "unauthorized");
    await expectError(await listOrganisations(guesser, "Bearer wrong-2", strict), 429, "too_many_failures");
  });

  it("with Cloudflare's Rate Limiting binding: the 4th wrong token answers 429, and so does the right one", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const bound = { ...env, OPERATOR_AUTH_LIMITER: env.TEST_OPERATOR_AUTH_LIMITER };
    const guesser = newClient();
    for (let i = 0; i < 3; i++) await expectError(await listOrganisations(guesser, `Bearer guess-${i}`, bound), 401, "unauthorized");
    await expectError(await listOrganisations(guesser, "Bearer guess-3", bound), 429, "too_many_failures");
    await expectError(await listOrganisations(guesser, ADMIN.Authorization, bound), 429, "too_many_failures");
    expect((await listOrganisations(newClient(), ADMIN.Authorization, bound)).status).toBe(200);
  });

  it("a request without a Bearer token is refused, not counted as a guess", async () => {
    const client = newClient();
    for (let i = 0; i < 15; i++) await expectError(await listOrganisations(client, "Api-Key fh_0000000000_" + "A".repeat(43)), 401, "unauthorized");
    expect((await listOrganisations(client, ADMIN.Authorization)).status).toBe(200);
  });
});
