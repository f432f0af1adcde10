// Attempt errors a person can act on (issue 13): each failure against a real local receiver, through
// the delivery consumer and the synchronous test send, stores an error that says what happened: the
// host does not resolve, the connection is refused, the TLS handshake failed, the answer took too long,
// the receiver hung up before answering, or its HTTP status with the first bytes it sent.
import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import worker from "../src/index";
import type { DeliveryMessage } from "../src/queues";
import { createOrganisation, receiverUrl, scriptMailbox } from "./helpers";

let n = 0;
const receiverPort = () => Number(new URL(receiverUrl()).port);
/** Development settings (private URLs allowed), with the test receiver as the DNS resolver. */
const development = () => ({ ...env, DNS_RESOLVER_URL: `${receiverUrl()}/dns-query` });
/** Production settings: the URL policy on, DNS answered by the test receiver. */
const production = () => ({ ...development(), ALLOW_PRIVATE_WEBHOOK_URLS: "false" });

function request(workerEnv: typeof env, path: string, init: RequestInit & { json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  return worker.fetch(new Request(`http://flaghook.test${path}`, { ...init, headers, body }), workerEnv, createExecutionContext());
}

/** An environment webhook to `url` (saved in development) with one pending delivery; `attempt()` makes its first attempt. */
async function deliveryTo(url: string) {
  const { auth } = await createOrganisation();
  const environmentId = 60_000 + ++n;
  const res = await request(development(), `/api/v1/environments/${environmentId}/webhooks`, { method: "POST", headers: auth, json: { url } });
  expect(res.status).toBe(201);
  const hook = (await res.json()) as { id: string };
  const id = `dlv_errors${n}x${Date.now()}`;
  const { org_id } = (await env.DB.prepare("select org_id from webhooks where id = ?").bind(hook.id).first<{ org_id: number }>())!;
  await env.DB.prepare(
    `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, created_at, updated_at)
     values (?, ?, ?, 'FLAG_UPDATED', '{"data": {}, "event_type": "FLAG_UPDATED"}', 'pending', 0, 0, ?, ?, ?)`,
  )
    .bind(id, org_id, hook.id, Date.now(), Date.now(), Date.now())
    .run();
  const attempt = async (workerEnv: typeof env = development()) => {
    const batch = createMessageBatch<DeliveryMessage>("flaghook-deliveries", [
      { id: `msg-${id}`, timestamp: new Date(), attempts: 1, body: { deliveries: [{ id, attempt: 0 }] } },
    ]);
    await worker.queue(batch, workerEnv, createExecutionContext());
    return (await env.DB.prepare("select status_code, duration_ms, error, response_body from attempts where delivery_id = ? and number = 1").bind(id).first<{
      status_code: number | null;
      duration_ms: number;
      error: string | null;
      response_body: string | null;
    }>())!;
  };
  const test = async () =>
    (await (await request(development(), `/api/v1/environments/${environmentId}/webhooks/${hook.id}/test`, { method: "POST", headers: auth })).json()) as {
      ok: boolean;
      status_code: number | null;
      error: string | null;
    };
  return { id, attempt, test };
}

const mailboxUrl = (box: string) => `${receiverUrl()}/hooks/${box}`;

describe("attempt errors a person can act on", () => {
  it("a closed port: connection refused, naming the host and port", async () => {
    const port = inject("closedPort");
    const d = await deliveryTo(`http://127.0.0.1:${port}/hook`);
    const expected = `connection refused: nothing accepts connections on 127.0.0.1:${port}`;
    expect(await d.attempt()).toMatchObject({ status_code: null, error: expected, response_body: null });
    expect(await d.test()).toMatchObject({ ok: false, status_code: null, error: expected });
  });

  it("a receiver that hangs up in the middle of its answer's headers: closed before answering", async () => {
    const box = `hangup-headers-${++n}`;
    await scriptMailbox(box, { default: { hangUp: "HTTP/1.1 200 OK\r\nContent-Ty" } });
    const d = await deliveryTo(mailboxUrl(box));
    const expected = `closed before answering: 127.0.0.1:${receiverPort()} accepted the request, then closed the connection without an HTTP answer`;
    expect(await d.attempt()).toMatchObject({ status_code: null, error: expected });
    expect((await d.test()).error).toBe(expected);
  });

  it("a receiver that drops the connection without a byte: closed before answering too", async () => {
    const box = `reset-${++n}`;
    await scriptMailbox(box, { default: { reset: true } });
    const d = await deliveryTo(mailboxUrl(box));
    expect((await d.attempt()).error).toBe(`closed before answering: 127.0.0.1:${receiverPort()} accepted the request, then closed the connection without an HTTP answer`);
  });

  it("a receiver that hangs up in the middle of its answer's body: its status, and that the body was cut off", async () => {
    const box = `hangup-body-${++n}`;
    await scriptMailbox(box, { default: { hangUp: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nupstream is dow" } });
    const d = await deliveryTo(mailboxUrl(box));
    expect(await d.attempt()).toMatchObject({ status_code: 503, error: "HTTP 503, then the connection closed before the response body ended", response_body: null });
  });

  it("a name the configured DoH resolver does not know: could not resolve the host, with the URL policy on or off", async () => {
    const host = `nowhere-${++n}.example.test`;
    const d = await deliveryTo(`http://${host}/hook`);
    // Development: the URL policy does not look the name up; the failed fetch is explained by asking the resolver.
    expect(await d.attempt()).toMatchObject({ status_code: null, error: `could not resolve the host ${host}: the DNS has no address for it` });
    const https = `gone-${++n}.example.test`;
    await fetch(`${receiverUrl()}/_dns/${https}`, { method: "PUT", body: JSON.stringify({ addresses: ["93.184.216.34"] }) });
    const p = await deliveryTo(`https://${https}/hook`);
    await fetch(`${receiverUrl()}/_dns/${https}`, { method: "PUT", body: JSON.stringify({ addresses: [] }) });
    // Production: the URL policy's own lookup finds no address, and the attempt is not sent.
    const refused = await p.attempt(production());
    expect(refused).toMatchObject({ status_code: null, duration_ms: 0, error: `refused by URL policy: could not resolve the host ${https}: the DNS has no address for it` });
  });

  it("https to a port that does not speak TLS: a TLS failure", async () => {
    const d = await deliveryTo(`https://127.0.0.1:${receiverPort()}/hooks/tls-${++n}`);
    const expected = `TLS failure: 127.0.0.1:${receiverPort()} accepts connections but the TLS handshake failed (its certificate or TLS setup)`;
    expect(await d.attempt()).toMatchObject({ status_code: null, error: expected });
    expect((await d.test()).error).toBe(expected);
  });

  it("a slow answer: timed out after DELIVERY_TIMEOUT_MS", async () => {
    const box = `slow-${++n}`;
    await scriptMailbox(box, { default: { status: 200, delayMs: 3000 } }); // DELIVERY_TIMEOUT_MS is 2000 in tests
    const d = await deliveryTo(mailboxUrl(box));
    const attempt = await d.attempt();
    expect(attempt).toMatchObject({ status_code: null, error: "timed out after 2000 ms", response_body: null });
    expect(attempt.duration_ms).toBeGreaterThanOrEqual(1900);
  });

  it("an HTTP error: its status and reason, and the first bytes of the body on one line", async () => {
    const box = `status-${++n}`;
    await scriptMailbox(box, {
      responses: [
        { status: 500, body: '{"error": "database\n  is down"}' },
        { status: 404, body: "" },
        { status: 422, body: `invalid payload: ${"x".repeat(300)}` },
      ],
    });
    const d = await deliveryTo(mailboxUrl(box));
    expect(await d.attempt()).toMatchObject({ status_code: 500, error: 'HTTP 500 Internal Server Error: {"error": "database is down"}', response_body: '{"error": "database\n  is down"}' });
    expect((await d.test()).error).toBe("HTTP 404 Not Found (empty response)");
    expect((await d.test()).error).toBe(`HTTP 422 Unprocessable Content: invalid payload: ${"x".repeat(200 - "invalid payload: ".length)}…`);
  });

  it("Cloudflare's own error answers (what a deployed Worker gets instead of a connection error) say what they mean", async () => {
    const box = `cloudflare-${++n}`;
    await scriptMailbox(box, {
      responses: [
        { status: 521, headers: { server: "cloudflare" }, body: "error code: 521" },
        { status: 526, headers: { server: "cloudflare" }, body: "error code: 526" },
        { status: 521, body: "a receiver's own 521" },
      ],
    });
    const d = await deliveryTo(mailboxUrl(box));
    expect((await d.attempt()).error).toBe("HTTP 521 from Cloudflare: the receiver's server refused the connection: error code: 521");
    expect((await d.test()).error).toBe("HTTP 526 from Cloudflare: the receiver's server presented an invalid TLS certificate: error code: 526");
    // Not from Cloudflare's edge: only the status and body.
    expect((await d.test()).error).toBe("HTTP 521: a receiver's own 521");
  });

  it("a redirect: its status and where it pointed, not followed", async () => {
    const box = `redirect-${++n}`;
    await scriptMailbox(box, { default: { status: 301, headers: { location: "https://elsewhere.example/hook" } } });
    const d = await deliveryTo(mailboxUrl(box));
    expect((await d.attempt()).error).toBe("HTTP 301 Moved Permanently: redirect to https://elsewhere.example/hook not followed");
  });

  it("a success stores no error", async () => {
    const box = `ok-${++n}`;
    await scriptMailbox(box, { default: { status: 204 } });
    const d = await deliveryTo(mailboxUrl(box));
    expect(await d.attempt()).toMatchObject({ status_code: 204, error: null });
  });
});
