// The delivery queue consumer: claim, sign, POST, record the attempt, schedule what comes next.
import { and, eq, sql, type Column } from "drizzle-orm";
import { now } from "../domain/clock";
import { groupBy } from "../domain/collections";
import { nextDelaySeconds } from "../domain/retry";
import { inJson, insertRows } from "../db/bulk";
import { database, runBatch, type Db, type Statement } from "../db/client";
import { attempts, deliveries, webhooks, type DeliveryRow, type WebhookRow } from "../db/schema";
import { config, type Env } from "../env";
import { writeAttemptPoint } from "../health/analytics";
import { deliveryFailed, noticeDeliveries, webhookDisabled, webhookRecovered, type Notice } from "../health/operational";
import { HealthRollup } from "../health/rollup";
import { recordSystemEvents } from "../ingest/system-events";
import { enqueueDeliveries, type DeliveryRef } from "../queues";
import { grantAttempts, nextWindowAt } from "./rate-limit";
import { decryptSecret } from "./secrets";
import { refusedAttempt, sendAttempt, type AttemptResult } from "./send";
import { signatureHeaders, type SigningSecrets } from "./sign";
import { urlPolicyRefusal } from "./url-check";

/** The attempt columns written, in the order of the rows `settle` builds. */
const attemptColumns: Column[] = [
  attempts.deliveryId, attempts.number, attempts.attemptedAt, attempts.statusCode, attempts.durationMs, attempts.error, attempts.responseBody,
];

/**
 * Attempts a consumer run makes at once. On Cloudflare an invocation has at most six connections
 * waiting for response headers (the rest queue); `wrangler dev` has no such cap, and 250 attempts
 * at once cost it a connection each and slowed ingest sharing its thread.
 */
const LANES = 16;

/** What the log says of an attempt that was claimed (and perhaps sent) but whose result was never stored. */
const LOST_ATTEMPT = "outcome unknown: the worker stopped before recording this attempt";

/** How long a claimed attempt may take before the sweeper assumes the worker died. */
const leaseMs = (timeoutMs: number) => timeoutMs + 60_000;

export async function processDeliveries(env: Env, refs: readonly DeliveryRef[]): Promise<void> {
  const db = database(env.DB);
  const cfg = config(env);
  const ids = [...new Set(refs.map((m) => m.id))];
  const rows = await db
    .select({ delivery: deliveries, webhook: webhooks })
    .from(deliveries)
    .leftJoin(webhooks, eq(webhooks.id, deliveries.webhookId))
    .where(inJson(deliveries.id, ids));
  const at = now();
  // A batch may hold a stale copy of a message beside the current one for the same delivery: the
  // delivery is due if any of them names its current attempt.
  const expected = new Set(refs.map((m) => `${m.id}:${m.attempt}`));
  const due = rows.filter(({ delivery }) => delivery.status === "pending" && expected.has(`${delivery.id}:${delivery.attemptCount}`));
  if (!due.length) return;

  const disabled = due.filter(({ webhook }) => !webhook?.enabled);
  const { live, deferred } = await withinRateLimit(db, due.filter(({ webhook }) => webhook?.enabled), cfg.webhookAttemptsPerSecond, at);
  // Claim: only the message whose attempt number still matches may send; duplicates find 0 rows.
  // One statement per attempt number (nearly always one: first attempts).
  const claims = [...groupBy(live, ({ delivery }) => delivery.attemptCount)].map(([attemptCount, group]) =>
    claim(db, group.map(({ delivery }) => delivery.id), attemptCount, at, cfg.deliveryTimeoutMs),
  );
  const retryAt = nextWindowAt(at);
  const defer = [...groupBy(deferred, ({ delivery }) => delivery.attemptCount)].map(([attemptCount, group]) =>
    db
      .update(deliveries)
      .set({ nextAttemptAt: retryAt })
      .where(and(inJson(deliveries.id, group.map(({ delivery }) => delivery.id)), eq(deliveries.status, "pending"), eq(deliveries.attemptCount, attemptCount))),
  );
  const failDisabled = disabled.map(({ delivery, webhook }) =>
    db
      .update(deliveries)
      .set({ status: "failed", lastError: webhook ? "webhook is disabled" : "webhook was deleted", nextAttemptAt: null, updatedAt: at })
      .where(and(eq(deliveries.id, delivery.id), eq(deliveries.status, "pending"))),
  );
  const claimed = new Set(
    (await runBatch(db, [...claims, ...failDisabled, ...defer]))
      .slice(0, claims.length)
      .flatMap((rows) => rows.map((row) => row.id as string)),
  );
  const delaySeconds = Math.ceil((retryAt - at) / 1000);
  await enqueueDeliveries(env, deferred.map(({ delivery }) => ({ id: delivery.id, attempt: delivery.attemptCount, delaySeconds })));
  const work = live.filter(({ delivery }) => claimed.has(delivery.id));
  const results = await inLanes(work, ({ delivery, webhook }) => attempt(env, delivery, webhook!, at));
  await settle(env, db, work.map((w, i) => ({ ...w, webhook: w.webhook!, result: results[i] })));
}

type Due = { delivery: DeliveryRow; webhook: WebhookRow | null };

/** Splits due attempts into those the per-webhook rate limit lets through now (oldest first) and those deferred. */
async function withinRateLimit(db: Db, due: Due[], perSecond: number, at: number): Promise<{ live: Due[]; deferred: Due[] }> {
  if (perSecond <= 0 || !due.length) return { live: due, deferred: [] };
  const wanted = new Map<string, number>();
  for (const { webhook } of due) wanted.set(webhook!.id, (wanted.get(webhook!.id) ?? 0) + 1);
  const left = await grantAttempts(db, wanted, perSecond, at);
  const live: Due[] = [];
  const deferred: Due[] = [];
  for (const item of [...due].sort((a, b) => a.delivery.createdAt - b.delivery.createdAt)) {
    const n = left.get(item.webhook!.id)!;
    left.set(item.webhook!.id, n - 1);
    (n > 0 ? live : deferred).push(item);
  }
  return { live, deferred };
}

function claim(db: Db, ids: string[], attemptCount: number, at: number, timeoutMs: number) {
  return db
    .update(deliveries)
    .set({ attemptCount: sql`${deliveries.attemptCount} + 1`, nextAttemptAt: at + leaseMs(timeoutMs), updatedAt: at })
    .where(and(inJson(deliveries.id, ids), eq(deliveries.status, "pending"), eq(deliveries.attemptCount, attemptCount)))
    .returning({ id: deliveries.id });
}

/** `run` over `items`, LANES at a time; results in the order of `items`. */
async function inLanes<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await run(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LANES, items.length) }, lane));
  return results;
}

/**
 * Checks the URL policy, then signs and sends one attempt with the webhook's secrets of this moment
 * (a rotation's included). A refused attempt records no status, body or duration.
 */
export async function attempt(env: Env, delivery: DeliveryRow, webhook: WebhookRow, at: number): Promise<AttemptResult> {
  const cfg = config(env);
  const refusal = await urlPolicyRefusal(cfg, webhook.url);
  if (refusal) return refusedAttempt(refusal, at);
  const secrets = await webhookSecrets(cfg.secretsKey!, webhook, at);
  const headers = await signatureHeaders(secrets, delivery.id, Math.floor(at / 1000), delivery.payload);
  return sendAttempt(webhook.url, delivery.payload, headers, { timeoutMs: cfg.deliveryTimeoutMs, resolverUrl: cfg.dnsResolverUrl }, at);
}

/**
 * During a rotation's grace period the previous secret signs webhook-signature too; during a staged
 * rotation it also keeps signing X-Flagsmith-Signature, until the owner confirms or the grace ends.
 */
export async function webhookSecrets(secretsKey: string, webhook: WebhookRow, at: number): Promise<SigningSecrets> {
  const current = await decryptSecret(secretsKey, webhook.secret);
  if (!webhook.previousSecret || (webhook.previousSecretExpiresAt ?? 0) <= at) return { flagsmith: current, standard: [current] };
  const previous = await decryptSecret(secretsKey, webhook.previousSecret);
  return { flagsmith: webhook.stagedRotation ? previous : current, standard: [current, previous] };
}

interface Settled {
  delivery: DeliveryRow;
  webhook: WebhookRow;
  result: AttemptResult;
}

/** What a consumer run's attempts say about one webhook. */
interface WebhookOutcome {
  webhook: WebhookRow;
  ok: boolean;
  gone: boolean;
  failedAt: number;
  /** An attempt of a change's delivery (not only of notifications) was among them. */
  byChanges: boolean;
}

interface StateChange {
  outcome: WebhookOutcome;
  notice: Notice;
  /** Why it is disabled (disabling only). */
  reason?: string;
}

/**
 * What a run's attempts change of each webhook: failing from its first failure, healthy again at its
 * first success, disabled on a 410 or after failing `disableMs`. The recover and disable updates
 * answer the rows they changed (at `recoverAt` and `disableAt` in `stateWrites`): of two runs racing
 * to make the same change, only the one that made it raises the event.
 */
function webhookChanges(db: Db, disableMs: number, outcomes: Iterable<WebhookOutcome>, at: number) {
  const disabling: StateChange[] = [];
  const recovering: StateChange[] = [];
  const stateWrites: Statement[] = [];
  for (const o of outcomes) {
    const { webhook } = o;
    const disable = (reason: string) => disabling.push({ outcome: o, reason, notice: webhookDisabled(webhook, reason, at) });
    if (o.gone) {
      disable("receiver answered 410 Gone");
    } else if (o.ok) {
      if (webhook.failingSince !== null) recovering.push({ outcome: o, notice: webhookRecovered(webhook, at) });
    } else if (webhook.failingSince !== null && at - webhook.failingSince >= disableMs) {
      disable(`every delivery failed for ${Math.round(disableMs / 86_400_000)} days`);
    } else if (webhook.failingSince === null) {
      stateWrites.push(db.update(webhooks).set({ failingSince: o.failedAt }).where(and(eq(webhooks.id, webhook.id), sql`failing_since is null`)));
    }
  }
  const recoverAt = stateWrites.length;
  for (const { outcome } of recovering) {
    stateWrites.push(
      db.update(webhooks).set({ failingSince: null }).where(and(eq(webhooks.id, outcome.webhook.id), sql`failing_since is not null`)).returning({ id: webhooks.id }),
    );
  }
  const disableAt = stateWrites.length;
  for (const { outcome, reason } of disabling) {
    stateWrites.push(
      db
        .update(webhooks)
        .set({ enabled: false, disabledReason: reason, updatedAt: at })
        .where(and(eq(webhooks.id, outcome.webhook.id), eq(webhooks.enabled, true)))
        .returning({ id: webhooks.id }),
    );
  }
  return { stateWrites, recovering, disabling, recoverAt, disableAt };
}

/**
 * Records attempts, moves deliveries on, rolls the run up into the webhooks' health, applies what the
 * receivers said to their webhooks, and raises the operational events that follow. Everything is
 * written in one D1 batch; events and their audit entries only cost anything when they happen.
 */
export async function settle(env: Env, db: Db, done: readonly Settled[]): Promise<void> {
  if (!done.length) return;
  const cfg = config(env);
  const writes: Statement[] = [];
  const retries: (DeliveryRef & { delaySeconds: number })[] = [];
  const outcomes = new Map<string, WebhookOutcome>();
  const attemptRows: unknown[][] = [];
  const delivered: { id: string; number: number; statusCode: number }[] = [];
  const rollup = new HealthRollup();
  const notices: Notice[] = [];
  const at = now();

  for (const { delivery, webhook, result } of done) {
    const number = delivery.attemptCount + 1;
    // An attempt claimed but never recorded (its worker died, or D1 failed, after the claim) stays in
    // the log as such; when the previous attempt is stored, this insert is a no-op.
    if (delivery.attemptCount > 0) {
      attemptRows.push([delivery.id, delivery.attemptCount, delivery.updatedAt, null, 0, LOST_ATTEMPT, null]);
    }
    attemptRows.push([delivery.id, number, result.attemptedAt, result.statusCode, result.durationMs, result.error, result.responseBody]);
    const { outcome } = result;
    let final: "delivered" | "failed" | null = null;
    if (outcome.kind === "delivered") {
      final = "delivered";
      delivered.push({ id: delivery.id, number, statusCode: outcome.status });
    } else {
      const base = { attemptCount: number, lastStatusCode: result.statusCode, lastError: result.error, updatedAt: at };
      let update: Partial<DeliveryRow>;
      if (outcome.kind === "gone") {
        final = "failed";
        update = { ...base, status: "failed", nextAttemptAt: null, lastError: "receiver answered 410 Gone; webhook disabled" };
      } else {
        const delay = nextDelaySeconds(cfg.retrySchedule, number - delivery.cycleStart, outcome, cfg.throttleFloorSeconds);
        if (delay === null) {
          final = "failed";
          update = { ...base, status: "failed", nextAttemptAt: null };
        } else {
          update = { ...base, nextAttemptAt: result.attemptedAt + delay * 1000 };
          retries.push({ id: delivery.id, attempt: number, delaySeconds: delay });
        }
      }
      writes.push(
        db
          .update(deliveries)
          .set(update)
          .where(and(eq(deliveries.id, delivery.id), eq(deliveries.attemptCount, number))),
      );
    }
    writeAttemptPoint(env.DELIVERY_ANALYTICS, {
      webhookId: webhook.id,
      orgId: webhook.orgId,
      deliveryId: delivery.id,
      eventType: delivery.eventType,
      kind: delivery.kind,
      outcome: final === "delivered" ? "delivered" : result.refused ? "refused" : final === "failed" ? "failed" : "retrying",
      statusCode: result.statusCode,
      durationMs: result.durationMs,
      number,
      error: result.error,
    });
    // A test sent again by hand tells nothing about the webhook's health.
    if (delivery.kind === "test") continue;
    const ok = final === "delivered";
    rollup.add({ webhookId: webhook.id, attemptedAt: result.attemptedAt, durationMs: result.durationMs, ok, refused: result.refused === true, final, error: result.error });
    const o = outcomes.get(webhook.id) ?? { webhook, ok: false, gone: false, failedAt: result.attemptedAt, byChanges: false };
    o.ok ||= ok;
    o.gone ||= outcome.kind === "gone";
    o.byChanges ||= delivery.kind === "event";
    outcomes.set(webhook.id, o);
    // A notification that fails for good raises nothing: notifications cannot cause notifications.
    if (final === "failed" && delivery.kind === "event") {
      notices.push(deliveryFailed(delivery, webhook, { number, attemptedAt: result.attemptedAt, statusCode: result.statusCode, durationMs: result.durationMs, error: result.error }, at));
    }
  }
  // The common case, written a statement per (attempt number, status code).
  for (const group of groupBy(delivered, (d) => `${d.number}:${d.statusCode}`).values()) {
    const { number, statusCode } = group[0];
    writes.push(
      db
        .update(deliveries)
        .set({ status: "delivered", attemptCount: number, lastStatusCode: statusCode, lastError: null, nextAttemptAt: null, updatedAt: at })
        .where(and(inJson(deliveries.id, group.map((d) => d.id)), eq(deliveries.attemptCount, number))),
    );
  }
  writes.unshift(...insertRows(attempts, attemptColumns, attemptRows));
  writes.push(...rollup.statements());

  const { stateWrites, recovering, disabling, recoverAt, disableAt } = webhookChanges(db, cfg.failureDisableMs, outcomes.values(), at);
  notices.push(...recovering.filter((r) => r.outcome.byChanges).map((r) => r.notice));
  notices.push(...disabling.filter((d) => d.outcome.byChanges).map((d) => d.notice));
  // A change made by notifications' attempts alone is made (and a disabling audited) but sends no event.
  // Each event's deliveries are inserted before the change it reports, on condition it is still to be made.
  const notifications = await noticeDeliveries(db, notices, at);
  const results = await runBatch(db, [...writes, ...notifications.writes, ...stateWrites]);
  const changed = (i: number) => (results[writes.length + notifications.writes.length + i]?.length ?? 0) > 0;
  const recovered = recovering.filter((_, i) => changed(recoverAt + i));
  const disabled = disabling.filter((_, i) => changed(disableAt + i));

  const happened = new Set<Notice>([
    ...notices.filter((n) => n.type === "DELIVERY_FAILED"),
    ...recovered.map((r) => r.notice),
    ...disabled.map((d) => d.notice),
  ]);
  await enqueueDeliveries(env, [...retries, ...[...notifications.queued].flatMap(([notice, refs]) => (happened.has(notice) ? refs : []))]);
  // Audited: every failed delivery and disabling; a recovery when a change's delivery made it.
  const audited = [
    ...notices.filter((n) => n.type === "DELIVERY_FAILED"),
    ...disabled.map((d) => d.notice),
    ...recovered.filter((r) => r.outcome.byChanges).map((r) => r.notice),
  ];
  for (const [orgId, group] of groupBy(audited, (n) => n.webhook.orgId)) {
    await recordSystemEvents(env, orgId, group.map((n) => n.change));
  }
}
