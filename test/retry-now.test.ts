// "Retry now" (issue 13): POST /api/v1/deliveries/{id}/retry makes a pending delivery's next attempt
// at once, keeps every earlier attempt, and never sends a delivery twice: not beside an attempt in
// flight, and not again when the message that was already queued for that attempt arrives.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { advanceClock, resetClock } from "../src/domain/clock";
import { Browser } from "./ui-client";
import { call, countRows, createOrganisation, eventually, expectError, mailbox, scriptMailbox } from "./helpers";
import { consume, deliveryRow, pendingDelivery, webhookOn } from "./health-support";

afterEach(() => resetClock());

const attemptsOf = (id: string) =>
  env.DB.prepare("select number, status_code, error from attempts where delivery_id = ? order by number").bind(id).all().then((r) => r.results);

/** A delivery whose first attempt failed and whose next is an hour away. */
async function waitingAnHour() {
  const org = await createOrganisation();
  const hook = await webhookOn(org);
  await scriptMailbox(hook.box, { responses: [{ status: 503, body: "down" }], default: { status: 200, body: "back" } });
  const d = await pendingDelivery(hook);
  await consume([d]);
  await env.DB.prepare("update deliveries set next_attempt_at = ? where id = ?").bind(Date.now() + 3_600_000, d.id).run();
  return { org, hook, id: d.id };
}

describe("retry now", () => {
  it("makes the next attempt at once and keeps the earlier ones; the message queued for that attempt then sends nothing", async () => {
    const { org, hook, id } = await waitingAnHour();
    const res = await call(`/api/v1/deliveries/${id}/retry`, { method: "POST", headers: org.auth });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { status: string; attempt_count: number; next_attempt_at: string; test: boolean };
    expect(body).toMatchObject({ status: "pending", attempt_count: 1, test: false });
    expect(Date.parse(body.next_attempt_at)).toBeLessThanOrEqual(Date.now());
    // The queue runs the attempt in the background.
    await eventually(async () => (await deliveryRow(id))!.status === "delivered");
    expect(await attemptsOf(id)).toEqual([
      { number: 1, status_code: 503, error: "HTTP 503 Service Unavailable: down" },
      { number: 2, status_code: 200, error: null },
    ]);
    // The retry scheduled an hour ahead arrives in its time and finds its attempt made.
    await consume([{ id, attempt: 1 }]);
    expect((await mailbox(hook.box)).count).toBe(2);
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and log like 'Delivery retried now: %'", org.orgId)) === 1);
  });

  it("is refused while an attempt is in flight, and nothing is sent beside it", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    await scriptMailbox(hook.box, { default: { status: 200, delayMs: 1500 } });
    const d = await pendingDelivery(hook);
    const running = consume([d]);
    await eventually(async () => (await deliveryRow(d.id))!.attempt_count === 1); // claimed: the attempt is under way
    await expectError(await call(`/api/v1/deliveries/${d.id}/retry`, { method: "POST", headers: org.auth }), 409, "attempt_in_flight");
    await running;
    expect((await deliveryRow(d.id))!.status).toBe("delivered");
    await new Promise((r) => setTimeout(r, 500));
    expect((await mailbox(hook.box)).count).toBe(1);
  });

  it("after a claimed attempt's lease has run out (its worker died), retries, and the lost attempt stays in the log", async () => {
    const org = await createOrganisation();
    const hook = await webhookOn(org);
    const d = await pendingDelivery(hook);
    // Claimed for attempt 1 (lease: timeout + 60 s), never recorded.
    await env.DB.prepare("update deliveries set attempt_count = 1, next_attempt_at = ? where id = ?").bind(Date.now() + 62_000, d.id).run();
    await expectError(await call(`/api/v1/deliveries/${d.id}/retry`, { method: "POST", headers: org.auth }), 409, "attempt_in_flight");
    advanceClock(63_000);
    expect((await call(`/api/v1/deliveries/${d.id}/retry`, { method: "POST", headers: org.auth })).status).toBe(202);
    await eventually(async () => (await deliveryRow(d.id))!.status === "delivered");
    expect((await attemptsOf(d.id)).map((a) => [a.number, a.error])).toEqual([
      [1, "outcome unknown: the worker stopped before recording this attempt"],
      [2, null],
    ]);
  });

  it("is for pending deliveries of enabled webhooks: finished ones are redelivered, a disabled webhook enabled first", async () => {
    const { org, hook, id } = await waitingAnHour();
    const other = await createOrganisation();
    await expectError(await call(`/api/v1/deliveries/${id}/retry`, { method: "POST", headers: other.auth }), 404, "not_found");
    await call(hook.path, { method: "PATCH", headers: org.auth, json: { enabled: false } });
    await expectError(await call(`/api/v1/deliveries/${id}/retry`, { method: "POST", headers: org.auth }), 409, "webhook_disabled");
    expect((await deliveryRow(id))!.next_attempt_at).toBeGreaterThan(Date.now() + 3_000_000); // untouched
    await call(hook.path, { method: "PATCH", headers: org.auth, json: { enabled: true } });
    expect((await call(`/api/v1/deliveries/${id}/retry`, { method: "POST", headers: org.auth })).status).toBe(202);
    await eventually(async () => (await deliveryRow(id))!.status === "delivered");
    await expectError(await call(`/api/v1/deliveries/${id}/retry`, { method: "POST", headers: org.auth }), 409, "delivery_not_pending");
    // And a pending one is not "redelivered": the error says to retry it now.
    const pending = await pendingDelivery(hook, { ageMs: 0 });
    const res = await call(`/api/v1/deliveries/${pending.id}/redeliver`, { method: "POST", headers: org.auth });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "delivery_pending", message: expect.stringContaining("/retry") });
  });
});

describe("retry now in the admin pages", () => {
  async function signedIn(org: Awaited<ReturnType<typeof createOrganisation>>) {
    const browser = new Browser();
    const page = await (await browser.get("/ui/sign-in")).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1];
    await browser.post("/ui/sign-in", { csrf, key: org.key });
    return { browser, token: await browser.token() };
  }

  it("offers Retry now on a pending delivery, and a disabled one that says why while an attempt is in flight", async () => {
    const { org, hook, id } = await waitingAnHour();
    const { browser, token } = await signedIn(org);
    const page = await (await browser.get(`/ui/webhooks/${hook.id}/deliveries`)).text();
    expect(page).toMatch(new RegExp(`action="/ui/deliveries/${id}/retry"><input[^>]+><button type="submit" class="secondary">Retry now</button>`));
    const res = await browser.post(`/ui/deliveries/${id}/retry`, { csrf: token });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/ui/webhooks/${hook.id}/deliveries?done=retried`);
    expect(await (await browser.get(res.headers.get("location")!)).text()).toContain("Retry queued");
    await eventually(async () => (await deliveryRow(id))!.status === "delivered");
    // A finished delivery is offered Redeliver instead.
    expect(await (await browser.get(`/ui/deliveries/${id}`)).text()).toContain(`action="/ui/deliveries/${id}/redeliver"`);

    // In flight: claimed for its next attempt, not recorded yet.
    const busy = await pendingDelivery(hook);
    await env.DB.prepare("update deliveries set attempt_count = 1, next_attempt_at = ? where id = ?").bind(Date.now() + 60_000, busy.id).run();
    const detail = await (await browser.get(`/ui/deliveries/${busy.id}`)).text();
    expect(detail).toMatch(/<button type="submit" disabled="" aria-describedby="why-[^"]+">Retry now<\/button><span class="why small muted" id="why-[^"]+">An attempt is being made right now; wait for its outcome\.<\/span>/);
    const refused = await browser.post(`/ui/deliveries/${busy.id}/retry`, { csrf: token });
    expect(refused.headers.get("location")).toBe(`/ui/webhooks/${hook.id}/deliveries?refused=attempt_in_flight`);
    expect(await (await browser.get(refused.headers.get("location")!)).text()).toContain("it was not sent twice");
  });
});
