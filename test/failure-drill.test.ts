// Failure drills (SPEC 5, 9): a receiver that fails, times out, resets and throttles; the delivery
// consumer dying before it acks; D1 failing in the middle of a delivery batch. Nothing accepted is
// lost, nothing is delivered again after it succeeded, and every attempt is in the attempt log.
//
// The queues are driven by the test (DrivenQueue below, handed to the real Worker as its bindings) so
// that the consumers run with a compressed retry schedule and waits pass on the injectable clock.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, now, resetClock } from "../src/domain/clock";
import type { DeliveryMessage } from "../src/queues";
import { sweep } from "../src/delivery/sweeper";
import type { IngestMessage } from "../src/queues";
import { createOrganisation, mailbox, receiverUrl, scriptMailbox } from "./helpers";

afterEach(() => resetClock());

/** Events ingested by the drill; each fans out to two environment webhooks, so twice as many deliveries. */
const EVENTS = 1_000;
const DELIVERY_BATCH = 10; // max_batch_size of flaghook-deliveries in wrangler.toml
const CONCURRENT_BATCHES = 4;

/**
 * A queue binding the test drives: a message waits out its delaySeconds on the test's clock, and
 * the test hands due messages to worker.queue() itself, duplicating some as at-least-once queues do.
 * The local queue cannot hand one message to two concurrent consumer runs, nor run on the test's
 * clock; the consumer, D1 and the receiver are the real ones, and webhooks-e2e and no-loss cover
 * the real local queues end to end.
 */
class DrivenQueue<T> {
  private waiting: { body: T; at: number }[] = [];

  async send(body: T, options?: { delaySeconds?: number }) {
    this.waiting.push({ body, at: now() + (options?.delaySeconds ?? 0) * 1000 });
  }

  async sendBatch(items: Iterable<{ body: T; delaySeconds?: number }>) {
    for (const item of items) await this.send(item.body, item);
  }

  get size() {
    return this.waiting.length;
  }

  /** Up to `limit` messages that are due, oldest first. */
  take(limit = Infinity): T[] {
    const due = this.waiting.filter((m) => m.at <= now()).slice(0, limit);
    this.waiting = this.waiting.filter((m) => !due.includes(m));
    return due.map((m) => m.body);
  }

  /** Moves the clock to the next message's due time. */
  skipToNext() {
    const next = Math.min(...this.waiting.map((m) => m.at));
    if (next > now()) advanceClock(next - now());
  }
}

/** The Worker's env with driven queues and a compressed schedule: 11 attempts about a second apart. */
function drillEnv() {
  const ingest = new DrivenQueue<IngestMessage>();
  const delivery = new DrivenQueue<DeliveryMessage>();
  const workerEnv = {
    ...env,
    RETRY_SCHEDULE: "1,1,1,1,1,1,1,1,1,1",
    RETRY_THROTTLE_FLOOR_SECONDS: "1",
    // Loose enough that a prompt answer is never late, even with 250 attempts in flight on a loaded
    // 2-core machine; the chaos "timeouts" reply after 4000 ms.
    DELIVERY_TIMEOUT_MS: "3000",
    INGEST_QUEUE: ingest as unknown as Queue<IngestMessage>,
    DELIVERY_QUEUE: delivery as unknown as Queue<DeliveryMessage>,
  };
  return { ingest, delivery, workerEnv };
}
type DrillEnv = ReturnType<typeof drillEnv>["workerEnv"];

async function request(workerEnv: DrillEnv, path: string, init: { method: string; headers: Record<string, string>; json?: unknown }) {
  const req = new Request(`http://flaghook.test${path}`, {
    method: init.method,
    headers: { ...init.headers, ...(init.json === undefined ? {} : { "content-type": "application/json" }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  return worker.fetch(req, workerEnv, createExecutionContext());
}

let batches = 0;
/** One consumer invocation, as the runtime makes it; answers what it acked. */
async function consume<T>(queue: "flaghook-ingest" | "flaghook-deliveries", bodies: T[], workerEnv: DrillEnv) {
  const batch = createMessageBatch<T>(
    queue,
    bodies.map((body, i) => ({ id: `b${++batches}-${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<never>, workerEnv, ctx);
  return getQueueResult(batch, ctx);
}

async function environmentHook(workerEnv: DrillEnv, auth: Record<string, string>, environment: number, box: string) {
  const res = await request(workerEnv, `/api/v1/environments/${environment}/webhooks`, {
    method: "POST",
    headers: auth,
    json: { url: `${receiverUrl()}/hooks/${box}` },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const flagEvent = (environment: number, i: number) => ({
  id: `drill-${i}`,
  type: "FLAG_STATE_UPDATED",
  project: { id: 1, name: "Drill" },
  environment: { id: environment, name: "Chaos" },
  feature: { id: i, name: `drill_${i}` },
  new_state: { enabled: i % 2 === 0, feature_state_value: `value ${i}` },
});

interface AttemptRow {
  delivery_id: string;
  number: number;
  status_code: number | null;
  error: string | null;
}

describe("failure drill: a receiver that fails 30%, times out 10%, resets 10% and throttles 10%", () => {
  it(`delivers all ${2 * EVENTS} deliveries exactly once after success, recording every attempt, with no audit entry twice`, async () => {
    const { ingest, delivery, workerEnv } = drillEnv();
    const { orgId, auth } = await createOrganisation("Failure drill");
    const environment = 4242;
    const boxes = [`drill-a-${Date.now()}`, `drill-b-${Date.now()}`];
    const chaos = { fail: 0.3, timeout: 0.1, reset: 0.1, throttle: 0.1, timeoutDelayMs: 4000, retryAfter: 2, calmAfter: 10 };
    for (const [i, box] of boxes.entries()) {
      await fetch(`${receiverUrl()}/_control/${box}`, { method: "PUT", body: JSON.stringify({ chaos: { seed: `drill-${i}`, ...chaos } }) });
    }
    const hooks = [];
    for (const box of boxes) hooks.push(await environmentHook(workerEnv, auth, environment, box));

    // Ingest: 10 batches of 100 through the API; the ingest queue delivers one batch twice.
    const accepted: string[] = [];
    for (let start = 0; start < EVENTS; start += 100) {
      const events = Array.from({ length: 100 }, (_, k) => flagEvent(environment, start + k));
      const res = await request(workerEnv, "/api/v1/events/batch", { method: "POST", headers: auth, json: { events } });
      expect(res.status).toBe(202);
      accepted.push(...((await res.json()) as { results: { event_id: string }[] }).results.map((r) => r.event_id));
    }
    const ingestMessages = ingest.take();
    expect(ingestMessages).toHaveLength(EVENTS + hooks.length); // and the two "Webhook created" system events
    for (let i = 0; i < ingestMessages.length; i += 100) {
      const result = await consume("flaghook-ingest", ingestMessages.slice(i, i + 100), workerEnv);
      expect(result.ackAll).toBe(true);
    }
    expect((await consume("flaghook-ingest", ingestMessages.slice(300, 400), workerEnv)).ackAll).toBe(true);

    // Deliveries: rounds of concurrent batches. Every 10th message also arrives in a concurrent batch,
    // every 15th again in a later round (a consumer that died before acking).
    let taken = 0;
    while (delivery.size) {
      const round = delivery.take(DELIVERY_BATCH * CONCURRENT_BATCHES);
      if (!round.length) {
        delivery.skipToNext();
        continue;
      }
      const groups: DeliveryMessage[][] = Array.from({ length: Math.ceil(round.length / DELIVERY_BATCH) }, () => []);
      for (const [i, message] of round.entries()) {
        const group = Math.floor(i / DELIVERY_BATCH);
        groups[group].push(message);
        taken++;
        if (taken % 10 === 0) groups[(group + 1) % groups.length].push(message);
        if (taken % 15 === 0) await delivery.send(message);
      }
      const results = await Promise.all(groups.map((g) => consume("flaghook-deliveries", g, workerEnv)));
      expect(results.every((r) => r.ackAll)).toBe(true);
    }

    // Every delivery ended delivered.
    const rows = (
      await env.DB.prepare("select id, status, attempt_count, payload from deliveries where org_id = ?").bind(orgId).all<{
        id: string;
        status: string;
        attempt_count: number;
        payload: string;
      }>()
    ).results;
    expect(rows).toHaveLength(2 * EVENTS);
    expect(rows.filter((d) => d.status !== "delivered")).toEqual([]);

    // Every attempt is in the log: numbers 1..attempt_count, one 2xx and it is the last.
    const attempts = (
      await env.DB.prepare(
        `select a.delivery_id, a.number, a.status_code, a.error from attempts a join deliveries d on d.id = a.delivery_id
         where d.org_id = ? order by a.delivery_id, a.number`,
      )
        .bind(orgId)
        .all<AttemptRow>()
    ).results;
    const byDelivery = new Map<string, AttemptRow[]>(rows.map((d) => [d.id, []]));
    for (const a of attempts) byDelivery.get(a.delivery_id)!.push(a);
    for (const d of rows) {
      const log = byDelivery.get(d.id)!;
      expect(log.map((a) => a.number)).toEqual(Array.from({ length: d.attempt_count }, (_, i) => i + 1));
      expect(log.filter((a) => a.status_code === 200).map((a) => a.number)).toEqual([d.attempt_count]);
    }

    // The receiver saw exactly the attempts, in order, each answered as the log says; nothing after a
    // success, and the same bytes every time.
    const seen = new Map<string, { chaos: string; body: string }[]>();
    for (const box of boxes) {
      for (const r of (await mailbox(box)).requests as (Awaited<ReturnType<typeof mailbox>>["requests"][number] & { chaos: string })[]) {
        const id = r.headers["webhook-id"];
        seen.set(id, [...(seen.get(id) ?? []), r]);
      }
    }
    expect([...seen.keys()].sort()).toEqual(rows.map((d) => d.id).sort());
    const recordedAs = (a: AttemptRow) =>
      a.status_code === 200 ? "ok"
      : a.status_code === 500 ? "fail"
      : a.status_code === 429 ? "throttle"
      : a.error === "timed out after 3000 ms" ? "timeout"
      : a.error?.startsWith("closed before answering") ? "reset"
      : `unexpected ${a.status_code} ${a.error}`;
    const tally: Record<string, number> = {};
    for (const d of rows) {
      const requests = seen.get(d.id)!;
      expect(byDelivery.get(d.id)!.map(recordedAs)).toEqual(requests.map((r) => r.chaos));
      expect(requests.filter((r) => r.chaos === "ok")).toHaveLength(1);
      expect(requests.every((r) => r.body === d.payload)).toBe(true);
      for (const r of requests) tally[r.chaos] = (tally[r.chaos] ?? 0) + 1;
    }
    // The drill did inject every fault: about 1,500 failures and 500 of each other fault in ~5,000 requests.
    for (const fault of ["fail", "timeout", "reset", "throttle"]) expect(tally[fault]).toBeGreaterThan(200);
    expect(tally.ok).toBe(2 * EVENTS);

    // One audit entry per accepted event, none twice, though one ingest batch was consumed twice.
    const entries = (
      await env.DB.prepare("select event_id from audit_entries where org_id = ? and type = 'FLAG_STATE_UPDATED'").bind(orgId).all<{
        event_id: string;
      }>()
    ).results.map((e) => e.event_id);
    expect(entries.sort()).toEqual([...accepted].sort());
    expect(new Set(accepted).size).toBe(EVENTS);

    // Nothing is left for the sweeper.
    advanceClock(10 * 60_000);
    expect((await sweep(workerEnv)).requeued).toBe(0);
  }, 240_000);
});

/** A D1 binding whose `batch` call number `failing` (1-based) fails, as a D1 outage mid-invocation would. */
function d1FailingAtBatch(failing: number): D1Database {
  let calls = 0;
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "batch" && ++calls === failing) return () => Promise.reject(new Error("D1_ERROR: simulated outage"));
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** An organisation with an environment webhook on a scripted mailbox, and `count` deliveries to it waiting in the driven queue. */
async function pendingDeliveries(count: number, script: { responses?: unknown[]; default?: unknown }) {
  const drill = drillEnv();
  const { orgId, auth } = await createOrganisation("Consumer drill");
  const box = `consumer-drill-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  await scriptMailbox(box, script);
  await environmentHook(drill.workerEnv, auth, 31, box);
  const events = Array.from({ length: count }, (_, i) => flagEvent(31, i));
  expect((await request(drill.workerEnv, "/api/v1/events/batch", { method: "POST", headers: auth, json: { events } })).status).toBe(202);
  expect((await consume("flaghook-ingest", drill.ingest.take(), drill.workerEnv)).ackAll).toBe(true);
  const messages = drill.delivery.take();
  const refs = messages.flatMap((m) => m.deliveries);
  expect(refs).toHaveLength(count);
  return { ...drill, orgId, box, messages, refs };
}

const deliveryRows = (orgId: number) =>
  env.DB.prepare("select id, status, attempt_count from deliveries where org_id = ? order by id").bind(orgId).all<{
    id: string;
    status: string;
    attempt_count: number;
  }>().then((r) => r.results);
const attemptLog = (orgId: number) =>
  env.DB.prepare(
    `select a.delivery_id, a.number, a.status_code, a.error from attempts a join deliveries d on d.id = a.delivery_id
     where d.org_id = ? order by a.delivery_id, a.number`,
  )
    .bind(orgId)
    .all<AttemptRow>()
    .then((r) => r.results);
const requestsPerDelivery = async (box: string) => {
  const counts: Record<string, number> = {};
  for (const r of (await mailbox(box)).requests) counts[r.headers["webhook-id"]] = (counts[r.headers["webhook-id"]] ?? 0) + 1;
  return counts;
};

describe("failure drill: the delivery consumer", () => {
  it("dying before it acks: the redelivered messages send nothing more, before or beside the retry", async () => {
    const drill = await pendingDeliveries(1, { responses: [{ status: 500 }], default: { status: 200 } });
    const [first] = drill.refs;
    const message = { deliveries: [first] };
    expect((await consume("flaghook-deliveries", [message], drill.workerEnv)).ackAll).toBe(true);
    // The ack was lost: the queue hands the same message over again, alone...
    await consume("flaghook-deliveries", [message], drill.workerEnv);
    expect((await mailbox(drill.box)).count).toBe(1);
    // ...and again beside the retry that the first attempt scheduled.
    drill.delivery.skipToNext();
    const retries = drill.delivery.take();
    expect(retries).toEqual([{ deliveries: [{ id: first.id, attempt: 1 }] }]);
    await consume("flaghook-deliveries", [message, ...retries, message], drill.workerEnv);
    // The retry's ack is lost too.
    await consume("flaghook-deliveries", retries, drill.workerEnv);

    expect((await mailbox(drill.box)).count).toBe(2);
    expect(await deliveryRows(drill.orgId)).toEqual([{ id: first.id, status: "delivered", attempt_count: 2 }]);
    expect(await attemptLog(drill.orgId)).toEqual([
      { delivery_id: first.id, number: 1, status_code: 500, error: "HTTP 500 Internal Server Error (empty response)" },
      { delivery_id: first.id, number: 2, status_code: 200, error: null },
    ]);
    expect(drill.delivery.size).toBe(0);
  });

  it("D1 failing while the rate limit counts: nothing is claimed or sent, and the retried batch delivers each once", async () => {
    const drill = await pendingDeliveries(3, { default: { status: 200 } });
    const broken = { ...drill.workerEnv, DB: d1FailingAtBatch(1) };
    await expect(consume("flaghook-deliveries", drill.messages, broken)).rejects.toThrow("D1_ERROR: simulated outage");
    expect((await mailbox(drill.box)).count).toBe(0);
    expect((await deliveryRows(drill.orgId)).map((d) => [d.status, d.attempt_count])).toEqual([["pending", 0], ["pending", 0], ["pending", 0]]);
    expect((await consume("flaghook-deliveries", drill.messages, drill.workerEnv)).ackAll).toBe(true);
    expect((await deliveryRows(drill.orgId)).map((d) => [d.status, d.attempt_count])).toEqual([["delivered", 1], ["delivered", 1], ["delivered", 1]]);
    expect((await mailbox(drill.box)).count).toBe(3);
  });

  it("D1 failing after the sends: the claims hold until their lease ends, then the sweeper re-enqueues and each delivery arrives with at most one extra request", async () => {
    const drill = await pendingDeliveries(3, { default: { status: 200 } });
    const broken = { ...drill.workerEnv, DB: d1FailingAtBatch(3) }; // 1: the rate limit's counts, 2: the claims, 3: the attempts and results

    await expect(consume("flaghook-deliveries", drill.messages, broken)).rejects.toThrow("D1_ERROR: simulated outage");
    expect(Object.values(await requestsPerDelivery(drill.box))).toEqual([1, 1, 1]);
    const held = await deliveryRows(drill.orgId);
    expect(held.map((d) => [d.status, d.attempt_count])).toEqual([["pending", 1], ["pending", 1], ["pending", 1]]);
    expect(await attemptLog(drill.orgId)).toEqual([]);

    // The runtime retries the failed batch: the claims are held, so nothing is sent twice.
    expect((await consume("flaghook-deliveries", drill.messages, drill.workerEnv)).ackAll).toBe(true);
    expect((await mailbox(drill.box)).count).toBe(3);
    // Nor does the sweeper take them back before the lease (timeout + 60 s) and its own grace have passed.
    advanceClock(60_000);
    expect((await sweep(drill.workerEnv)).requeued).toBe(0);

    advanceClock(3 * 60_000);
    expect((await sweep(drill.workerEnv)).requeued).toBe(3);
    const requeued = drill.delivery.take();
    expect(requeued.flatMap((m) => m.deliveries).map((r) => r.attempt)).toEqual([1, 1, 1]);
    expect((await consume("flaghook-deliveries", requeued, drill.workerEnv)).ackAll).toBe(true);

    expect(await requestsPerDelivery(drill.box)).toEqual(Object.fromEntries(held.map((d) => [d.id, 2])));
    expect(await deliveryRows(drill.orgId)).toEqual(held.map((d) => ({ id: d.id, status: "delivered", attempt_count: 2 })));
    // The attempt whose result D1 lost is in the log as such; the one that landed is there as sent.
    expect(await attemptLog(drill.orgId)).toEqual(
      held.flatMap((d) => [
        { delivery_id: d.id, number: 1, status_code: null, error: "outcome unknown: the worker stopped before recording this attempt" },
        { delivery_id: d.id, number: 2, status_code: 200, error: null },
      ]),
    );
    advanceClock(10 * 60_000);
    expect((await sweep(drill.workerEnv)).requeued).toBe(0);
  });
});
