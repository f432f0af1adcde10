// The URL policy at every attempt (issue 14, point 1): a webhook that passed the policy when it was
// saved is checked again, against the policy in force and its host's DNS answer now, before each
// attempt, retry, redelivery, recovery and test. A refused attempt stores only "refused by URL
// policy" (no status, no body, no duration), so nothing tells an open port from a closed one.
// DNS answers come from the test receiver's DoH endpoint, set per name and changed mid-test.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import type { DeliveryMessage } from "../src/queues";
import { countRows, createOrganisation, expectError, mailbox, receiverUrl, scriptMailbox } from "./helpers";

/** Production settings: private URLs refused, DNS answered by the test receiver's DoH endpoint. */
const production = () => ({ ...env, ALLOW_PRIVATE_WEBHOOK_URLS: "false", DNS_RESOLVER_URL: `${receiverUrl()}/dns-query`, RETRY_SCHEDULE: "5,300" });
const development = () => ({ ...env, RETRY_SCHEDULE: "5,300" });
let n = 0;
const unique = (label: string) => `${label}-${++n}-${Date.now()}`;

afterEach(() => resetClock());

async function setDns(name: string, answer: { addresses?: string[]; ttl?: number; status?: number; body?: string; delayMs?: number }) {
  await fetch(`${receiverUrl()}/_dns/${name}`, { method: "PUT", body: JSON.stringify(answer) });
}
const dnsQueries = async (name: string) => ((await (await fetch(`${receiverUrl()}/_dns/${name}`)).json()) as { queries: number }).queries;

function request(workerEnv: typeof env, path: string, init: RequestInit & { json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  return worker.fetch(new Request(`http://flaghook.test${path}`, { ...init, headers, body }), workerEnv, createExecutionContext());
}

/** An environment webhook saved under `saveEnv` (no system audit delivery of its own), with one pending delivery. */
async function webhookWithDelivery(url: string, saveEnv: typeof env, attemptCount = 0) {
  const { orgId, auth } = await createOrganisation();
  const environmentId = 90_000 + ++n;
  const res = await request(saveEnv, `/api/v1/environments/${environmentId}/webhooks`, { method: "POST", headers: auth, json: { url } });
  expect(res.status).toBe(201);
  const hook = (await res.json()) as { id: string };
  const id = `dlv_policy${n}x${Date.now()}`;
  await env.DB.prepare(
    `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
     values (?, ?, ?, 'FLAG_UPDATED', '{"data": {}, "event_type": "FLAG_UPDATED"}', 'pending', ?, 0, ?, ?, ?)`,
  )
    .bind(id, orgId, hook.id, attemptCount, Date.now(), Date.now(), Date.now())
    .run();
  return { id, hookId: hook.id, orgId, auth, environmentId, attemptCount };
}

async function consume(deliveryId: string, attempt: number, workerEnv: typeof env = production()) {
  const batch = createMessageBatch<DeliveryMessage>("flaghook-deliveries", [
    { id: `msg-${deliveryId}-${attempt}`, timestamp: new Date(), attempts: 1, body: { deliveries: [{ id: deliveryId, attempt }] } },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, workerEnv, ctx);
  return getQueueResult(batch, ctx);
}

const attempts = (id: string) =>
  env.DB.prepare("select number, status_code, duration_ms, error, response_body from attempts where delivery_id = ? order by number")
    .bind(id)
    .all<{ number: number; status_code: number | null; duration_ms: number; error: string | null; response_body: string | null }>()
    .then((r) => r.results);
const delivery = (id: string) =>
  env.DB.prepare("select status, attempt_count, next_attempt_at, last_status_code, last_error from deliveries where id = ?")
    .bind(id)
    .first<{ status: string; attempt_count: number; next_attempt_at: number | null; last_status_code: number | null; last_error: string | null }>();

const REFUSED = /^refused by URL policy(: .*)?$/;

describe("the URL policy at every attempt", () => {
  it("DNS rebinding: a name that resolved to a public address when saved, and to 127.0.0.1 now, is not sent to", async () => {
    const host = `${unique("rebind")}.example.test`;
    await setDns(host, { addresses: ["93.184.216.34"], ttl: 60 });
    const d = await webhookWithDelivery(`https://${host}/hook`, production());
    await setDns(host, { addresses: ["127.0.0.1"], ttl: 0 });
    advanceClock(31_000); // past the longest a resolution is cached

    await consume(d.id, 0);

    const [attempt] = await attempts(d.id);
    expect(attempt).toEqual({ number: 1, status_code: null, duration_ms: 0, error: expect.stringMatching(REFUSED), response_body: null });
    expect(attempt.error).toBe("refused by URL policy: its host resolves to a private address");
    // Retried later on the schedule, like any failed attempt.
    expect(await delivery(d.id)).toMatchObject({ status: "pending", attempt_count: 1, last_status_code: null, last_error: attempt.error });
  });

  it("IPv6 answers that embed a private IPv4 address are refused at attempt time too", async () => {
    for (const address of ["::7f00:1", "2002:7f00:1::1", "::ffff:0:7f00:1", "64:ff9b::a9fe:a9fe", "fec0::1", "100::1"]) {
      const host = `${unique("v6")}.example.test`;
      await setDns(host, { addresses: ["2606:4700::1111"], ttl: 60 });
      const d = await webhookWithDelivery(`https://${host}/hook`, production());
      await setDns(host, { addresses: [address] });
      advanceClock(31_000);
      await consume(d.id, 0);
      expect((await attempts(d.id))[0].error, address).toBe("refused by URL policy: its host resolves to a private address");
    }
  });

  it("webhooks saved as http://127.0.0.1 while private URLs were allowed receive nothing once they are not, and an open port looks like a closed one", async () => {
    const box = unique("policy-loopback");
    await scriptMailbox(box, { default: { status: 200, body: "open port answered" } });
    const open = await webhookWithDelivery(`${receiverUrl()}/hooks/${box}`, development());
    const closed = await webhookWithDelivery("http://127.0.0.1:1/hooks/closed", development());
    const tls = await webhookWithDelivery(`${receiverUrl().replace("http:", "https:")}/hooks/${box}`, development());

    for (const d of [open, closed, tls]) await consume(d.id, 0);

    expect((await mailbox(box)).count).toBe(0);
    const stored = await Promise.all([open, closed, tls].map(async (d) => (await attempts(d.id))[0]));
    for (const attempt of stored) {
      expect(attempt).toEqual({ number: 1, status_code: null, duration_ms: 0, error: expect.stringMatching(REFUSED), response_body: null });
    }
    // http is refused for its scheme; the https one for its IP address. Neither says what the port did.
    expect(stored[0]).toEqual(stored[1]);
    expect(stored[2].error).toBe("refused by URL policy: the URL host 127.0.0.1 is an IP address; use a DNS name");
    // The same webhook delivers again as soon as the policy allows it (development).
    await consume(open.id, 1, development());
    expect((await mailbox(box)).count).toBe(1);
    expect(await delivery(open.id)).toMatchObject({ status: "delivered", attempt_count: 2 });
  });

  it("retries are checked: a delivery on its third attempt is refused like a first", async () => {
    const box = unique("policy-retry");
    const d = await webhookWithDelivery(`${receiverUrl()}/hooks/${box}`, development(), 2);
    await consume(d.id, 2, { ...production(), RETRY_SCHEDULE: "5,300,1800" });
    expect((await mailbox(box)).count).toBe(0);
    expect((await attempts(d.id)).at(-1)).toMatchObject({ number: 3, status_code: null, duration_ms: 0, error: expect.stringMatching(REFUSED) });
  });

  it("a DNS lookup that fails refuses the attempt (fails closed), stores why, and retries later; the next lookup is asked again", async () => {
    const host = `${unique("dns-down")}.example.test`;
    await setDns(host, { addresses: ["93.184.216.34"], ttl: 60 });
    const d = await webhookWithDelivery(`https://${host}/hook`, production());
    advanceClock(31_000);
    // A resolver that fails, answers what is not DNS JSON, answers SERVFAIL, or answers after the 3 s timeout.
    for (const failure of [{ status: 503 }, { body: "<html>not DNS JSON</html>" }, { body: '{"Status": 2}' }, { addresses: ["93.184.216.34"], delayMs: 4000 }]) {
      await setDns(host, failure);
      const before = (await delivery(d.id))!.attempt_count;
      await consume(d.id, before);
      const last = (await attempts(d.id)).at(-1)!;
      expect(last).toEqual({
        number: before + 1,
        status_code: null,
        duration_ms: 0,
        error: "refused by URL policy: the DNS lookup of its host failed or timed out; will retry",
        response_body: null,
      });
      await env.DB.prepare("update deliveries set status = 'pending' where id = ?").bind(d.id).run();
    }
    expect(await delivery(d.id)).toMatchObject({ status: "pending", attempt_count: 4 });
  }, 30_000);

  it("a name that no longer resolves is refused", async () => {
    const host = `${unique("gone")}.example.test`;
    await setDns(host, { addresses: ["93.184.216.34"], ttl: 60 });
    const d = await webhookWithDelivery(`https://${host}/hook`, production());
    await setDns(host, { addresses: [] });
    advanceClock(31_000);
    await consume(d.id, 0);
    expect((await attempts(d.id))[0].error).toBe(`refused by URL policy: could not resolve the host ${host}: the DNS has no address for it`);
  });

  it("a resolution is cached briefly per isolate: attempts within its TTL ask once, later ones ask again", async () => {
    const host = `${unique("cached")}.example.test`;
    await setDns(host, { addresses: ["93.184.216.34"], ttl: 10 });
    const d = await webhookWithDelivery(`https://${host}/a`, production());
    expect(await dnsQueries(host)).toBe(2); // A and AAAA, when the webhook was saved
    await setDns(host, { addresses: ["10.0.0.1"], ttl: 10 });
    advanceClock(11_000);
    const again = async (expectedQueries: number) => {
      const { attempt_count } = (await delivery(d.id))!;
      await consume(d.id, attempt_count);
      await env.DB.prepare("update deliveries set status = 'pending' where id = ?").bind(d.id).run();
      expect(await dnsQueries(host)).toBe(expectedQueries);
      expect((await attempts(d.id)).at(-1)!.error).toBe("refused by URL policy: its host resolves to a private address");
    };
    await again(4);
    // Within the 10 s TTL the cached answer stands, even though the name has moved back.
    await setDns(host, { addresses: ["10.0.0.2"], ttl: 10 });
    advanceClock(9_000);
    await again(4);
    advanceClock(2_000);
    await again(6);
  });

  it("redeliver and recover answer 400 url_not_allowed when the URL is refused now, and change nothing", async () => {
    const box = unique("policy-redeliver");
    const d = await webhookWithDelivery(`${receiverUrl()}/hooks/${box}`, development());
    await consume(d.id, 0, development());
    await env.DB.prepare("update deliveries set status = 'failed' where id = ?").bind(d.id).run();
    const before = await delivery(d.id);
    const hookPath = `/api/v1/environments/${d.environmentId}/webhooks/${d.hookId}`;

    await expectError(await request(production(), `/api/v1/deliveries/${d.id}/redeliver`, { method: "POST", headers: d.auth }), 400, "url_not_allowed", "url");
    await expectError(
      await request(production(), `${hookPath}/recover`, { method: "POST", headers: d.auth, json: { since: "2000-01-01T00:00:00Z" } }),
      400,
      "url_not_allowed",
      "url",
    );
    expect(await delivery(d.id)).toEqual(before);
    expect(await countRows("attempts", "delivery_id = ?", d.id)).toBe(1);
    expect((await mailbox(box)).count).toBe(1);
  });

  it("on the admin pages, a redelivery refused by the URL policy says why on the deliveries page", async () => {
    const box = unique("policy-redeliver-page");
    const d = await webhookWithDelivery(`${receiverUrl()}/hooks/${box}`, development());
    await consume(d.id, 0, development());
    await env.DB.prepare("update deliveries set status = 'failed' where id = ?").bind(d.id).run();
    // Sign in with the organisation's key (the Authorization header holds it).
    const apiKey = d.auth.Authorization.replace(/^Api-Key /, "");
    const form = await request(production(), "/ui/sign-in");
    const signInCookie = form.headers.get("set-cookie")!.split(";")[0];
    const token = /name="csrf" value="([^"]+)"/.exec(await form.text())![1];
    const ORIGIN = "http://flaghook.test";
    const formHeaders = (cookie: string) => ({ cookie, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" });
    const signedIn = await request(production(), "/ui/sign-in", { method: "POST", headers: formHeaders(signInCookie), body: new URLSearchParams({ csrf: token, key: apiKey, next: "/ui/webhooks" }).toString() });
    const session = signedIn.headers.getSetCookie().find((c) => c.startsWith("flaghook_session="))!.split(";")[0];
    const page = await request(production(), `/ui/deliveries/${d.id}`, { headers: { cookie: session } });
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1];

    const res = await request(production(), `/ui/deliveries/${d.id}/redeliver`, { method: "POST", redirect: "manual", headers: formHeaders(session), body: new URLSearchParams({ csrf }).toString() });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/ui/webhooks/${d.hookId}/deliveries?refused=url_not_allowed`);
    const notice = await (await request(production(), res.headers.get("location")!, { headers: { cookie: session } })).text();
    expect(notice).toContain("refused by the URL policy now");
    expect((await delivery(d.id))!.status).toBe("failed");
  });

  it("a test send to a name rebound to a private address is refused before anything is sent", async () => {
    const host = `${unique("rebind-test")}.example.test`;
    await setDns(host, { addresses: ["93.184.216.34"], ttl: 60 });
    const d = await webhookWithDelivery(`https://${host}/hook`, production());
    await setDns(host, { addresses: ["169.254.169.254"] });
    advanceClock(31_000);
    const res = await request(production(), `/api/v1/environments/${d.environmentId}/webhooks/${d.hookId}/test`, { method: "POST", headers: d.auth });
    await expectError(res, 400, "url_not_allowed", "url");
  });
});
