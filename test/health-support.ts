// Support for the delivery health tests: webhooks on the real receiver, pending deliveries written
// straight to D1, and consumer runs handed to worker.queue() as the runtime would.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../src/index";
import type { DeliveryMessage, DeliveryRef } from "../src/queues";
import { call, createOrganisation, receiverUrl } from "./helpers";

let n = 0;
export const unique = (label: string) => `${label}-${++n}-${Date.now()}`;

export type Org = Awaited<ReturnType<typeof createOrganisation>>;

export interface Hook {
  id: string;
  /** The webhook's API path, under its owner. */
  path: string;
  box: string;
  orgId: number;
  auth: Record<string, string>;
}

/** A webhook to a fresh mailbox: an environment one (no system entries of its own reach it) unless `organisation`. */
export async function webhookOn(org: Org, opts: { organisation?: boolean; eventTypes?: string[]; url?: string; name?: string } = {}): Promise<Hook> {
  const box = unique("health");
  const owner = opts.organisation ? `/api/v1/organisations/${org.orgId}` : `/api/v1/environments/${50_000 + ++n}`;
  const res = await call(`${owner}/webhooks`, {
    method: "POST",
    headers: org.auth,
    json: { url: opts.url ?? `${receiverUrl()}/hooks/${box}`, name: opts.name ?? box, ...(opts.eventTypes ? { event_types: opts.eventTypes } : {}) },
  });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  return { id, path: `${owner}/webhooks/${id}`, box, orgId: org.orgId, auth: org.auth };
}

/** A pending delivery of a change to `hook`, as if fanned out `ageMs` ago, `attempts` attempts in. */
export async function pendingDelivery(hook: Hook, opts: { attempts?: number; ageMs?: number; body?: string; kind?: string } = {}) {
  const id = `dlv_health${++n}x${Date.now()}`;
  const at = Date.now() - (opts.ageMs ?? 0);
  await env.DB.prepare(
    `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, next_attempt_at, kind, created_at, updated_at)
     values (?, ?, ?, 'FLAG_UPDATED', ?, 'pending', ?, 0, ?, ?, ?, ?)`,
  )
    .bind(id, hook.orgId, hook.id, opts.body ?? `{"data": {"n": ${n}}, "event_type": "FLAG_UPDATED"}`, opts.attempts ?? 0, at, opts.kind ?? "event", at, at)
    .run();
  return { id, attempt: opts.attempts ?? 0 };
}

/** One consumer run over `refs`, in one queue batch. */
export async function consume(refs: DeliveryRef[], workerEnv: typeof env = env) {
  const batch = createMessageBatch<DeliveryMessage>(
    "flaghook-deliveries",
    refs.map((ref, i) => ({ id: `msg-${n}-${i}`, timestamp: new Date(), attempts: 1, body: { deliveries: [ref] } })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, workerEnv, ctx);
  return getQueueResult(batch, ctx);
}

export async function statsOf(hook: Hook, window = "24h") {
  const res = await call(`${hook.path}/stats?window=${window}`, { headers: hook.auth });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown> & {
    by_hour: { hour: string; succeeded: number; failed: number; attempts: number; attempts_failed: number }[];
  };
}

export const deliveryRow = (id: string) =>
  env.DB.prepare("select status, attempt_count, next_attempt_at, last_error, kind from deliveries where id = ?").bind(id).first<{
    status: string;
    attempt_count: number;
    next_attempt_at: number | null;
    last_error: string | null;
    kind: string;
  }>();
