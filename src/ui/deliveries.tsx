// Deliveries of one webhook with every attempt, one delivery with its payload, redeliver and recover.
import { Hono, type Context } from "hono";
import { decodeCursor, encodeCursor } from "../api/schemas";
import { now } from "../domain/clock";
import { ApiError, invalid } from "../domain/errors";
import { timestamp } from "../domain/event";
import { database } from "../db/client";
import {
  attemptOut,
  attemptsOf,
  deliveryOut,
  deliveryWithAttempts,
  findDelivery,
  listDeliveries,
  attemptInFlight,
  recover,
  redeliver,
  retryNow,
  type DeliveryCursor,
  type DeliveryStatus,
} from "../manage/deliveries";
import { findOrganisationWebhook, webhookListed } from "../manage/webhooks";
import { webhookStats } from "../health/stats";
import { HealthBadge, HealthPanel } from "./health";
import { Csrf, Notice, PostButton, StatusBadge, Time, render } from "./layout";
import { sessionSubmitter, type Session, type UiEnv } from "./session";
import { DONE } from "./webhooks";

const STATUSES: DeliveryStatus[] = ["pending", "delivered", "failed"];
const PAGE = 20;
const EXCERPT = 240;

type Attempt = ReturnType<typeof attemptOut>;

/** Why a redeliver or recover was refused, by the stable error code of src/manage/deliveries. */
const REFUSED: Record<string, string> = {
  webhook_disabled: "The webhook is disabled: enable it before sending to it again.",
  delivery_pending: "That delivery is still pending: use Retry now to make its next attempt at once.",
  delivery_not_pending: "That delivery is no longer pending (delivered or failed): use Redeliver to send it again.",
  attempt_in_flight: "An attempt of that delivery was being made right then; it was not sent twice. Wait for its outcome.",
  test_delivery: "A test is sent once; send a new test from the webhooks page instead.",
  delivery_busy: "That delivery changed while it was being queued again; try again.",
  url_not_allowed: "The webhook's URL is refused by the URL policy now (see its last attempts): edit the webhook before sending to it again.",
};

function Attempts({ attempts }: { attempts: Attempt[] }) {
  if (!attempts.length) return <p class="muted small">No attempt yet.</p>;
  // An error column that is empty on every row only costs a phone its width.
  const anyError = attempts.some((a) => a.error);
  return (
    <div class="scroll stacked">
      <table class="attempts stack">
        <thead>
          <tr>
            <th>#</th>
            <th class="nowrap">Time (UTC)</th>
            <th>Status</th>
            <th class="nowrap">Duration</th>
            {anyError && <th>Error</th>}
            <th>Response</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((a) => (
            <tr data-attempt={String(a.number)}>
              <td data-label="Attempt">{a.number}</td>
              <td class="nowrap small">
                <Time iso={a.attempted_at} />
              </td>
              <td>
                <span class={`badge ${a.status_code !== null && a.status_code >= 200 && a.status_code < 300 ? "ok" : "bad"}`}>{a.status_code ?? "—"}</span>
              </td>
              <td class="nowrap small">{a.duration_ms} ms</td>
              {anyError && (
                <td class="small wrap full" data-label="Error">
                  {a.error ?? ""}
                </td>
              )}
              <td class="small wrap full" data-label="Response">
                {a.response_body ? (
                  a.response_body.length > EXCERPT ? (
                    <details>
                      <summary class="mono">{a.response_body.slice(0, EXCERPT)}…</summary>
                      <pre>{a.response_body}</pre>
                    </details>
                  ) : (
                    <code>{a.response_body}</code>
                  )
                ) : (
                  <span class="muted">empty</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** In flight: claimed for its next attempt, whose result is not stored yet (manage/deliveries.ts). */
const inFlight = (d: ReturnType<typeof deliveryOut>, attempts: Attempt[]) =>
  attemptInFlight(
    { status: d.status, attemptCount: d.attempt_count, nextAttemptAt: d.next_attempt_at ? Date.parse(d.next_attempt_at) : null },
    attempts.at(-1)?.number ?? null,
    now(),
  );

/** "Retry now" for a pending delivery, "Redeliver" for a finished one; a disabled one says why. */
function DeliveryActions(props: { delivery: ReturnType<typeof deliveryOut>; attempts: Attempt[]; session: Session; hookEnabled: boolean; primary?: boolean }) {
  const d = props.delivery;
  const kind = props.primary ? undefined : "secondary";
  if (d.status === "pending") {
    const why = !props.hookEnabled
      ? "The webhook is disabled: enable it first."
      : d.test
        ? "A test is sent once; send a new test instead."
        : inFlight(d, props.attempts)
          ? "An attempt is being made right now; wait for its outcome."
          : undefined;
    return <PostButton action={`/ui/deliveries/${d.id}/retry`} session={props.session} label="Retry now" kind={kind} disabled={why !== undefined} why={why} />;
  }
  const why = props.hookEnabled ? undefined : "The webhook is disabled: enable it before sending to it again.";
  return <PostButton action={`/ui/deliveries/${d.id}/redeliver`} session={props.session} label="Redeliver" kind={kind} disabled={why !== undefined} why={why} />;
}

function DeliveryCard(props: { delivery: ReturnType<typeof deliveryOut>; attempts: Attempt[]; session: Session; hookEnabled: boolean }) {
  const d = props.delivery;
  return (
    <article class={`card delivery ${d.status}`} data-delivery={d.id} data-status={d.status}>
      <div class="hook-head">
        <h3>
          <span class="mono">{d.event_type}</span> <StatusBadge status={d.status} />
        </h3>
        <a class="small mono" href={`/ui/deliveries/${d.id}`}>
          {d.id}
        </a>
      </div>
      <p class="small muted">
        {d.test && (
          <>
            <span class="badge info" data-test="">
              test
            </span>{" "}
          </>
        )}
        Created <Time iso={d.created_at} /> · {d.attempt_count} attempt{d.attempt_count === 1 ? "" : "s"}
        {d.next_attempt_at && (
          <>
            {" "}
            · next <Time iso={d.next_attempt_at} />
          </>
        )}
        {d.audit_entry_id !== null && (
          <>
            {" "}
            · audit entry <a href={`/ui/audit/${d.audit_entry_id}`}>{d.audit_entry_id}</a>
          </>
        )}
      </p>
      <Attempts attempts={props.attempts} />
      <div class="actions">
        <DeliveryActions delivery={d} attempts={props.attempts} session={props.session} hookEnabled={props.hookEnabled} />
      </div>
    </article>
  );
}

/** Redirects back to the deliveries page with a fixed notice, or with why the change was refused. */
async function thenBack(c: Context<UiEnv>, webhookId: string, change: () => Promise<string>) {
  try {
    const done = await change();
    return c.redirect(`/ui/webhooks/${webhookId}/deliveries?${done}`, 303);
  } catch (err) {
    if (err instanceof ApiError && REFUSED[err.code]) return c.redirect(`/ui/webhooks/${webhookId}/deliveries?refused=${err.code}`, 303);
    throw err;
  }
}

export const deliveryPages = new Hono<UiEnv>();

deliveryPages.get("/webhooks/:id/deliveries", async (c) => {
  const session = c.get("session");
  const db = database(c.env.DB);
  const row = await findOrganisationWebhook(db, session.orgId, c.req.param("id"));
  const hook = webhookListed(row);
  const url = new URL(c.req.url);
  const windowParam = url.searchParams.get("window") ?? "24h";
  if (windowParam !== "24h" && windowParam !== "7d") throw invalid("window must be 24h or 7d", "window");
  const stats = await webhookStats(db, row, windowParam, now());
  const statusParam = url.searchParams.get("status") ?? "";
  const status = STATUSES.find((s) => s === statusParam);
  if (statusParam && !status) throw invalid(`status must be one of ${STATUSES.join(", ")}`, "status");
  const cursor = url.searchParams.get("cursor");
  const after = cursor ? decodeCursor<DeliveryCursor>(cursor, ["number", "string"]) : undefined;
  const { rows, next } = await listDeliveries(c.env, hook.id, { status, limit: PAGE, after });
  const attempts = await attemptsOf(db, rows.map((r) => r.id));
  const done = DONE[url.searchParams.get("done") ?? ""];
  const refused = REFUSED[url.searchParams.get("refused") ?? ""];
  const recovered = url.searchParams.get("n");
  const base = `/ui/webhooks/${hook.id}/deliveries`;
  const filterQuery = status ? `?status=${status}` : "";
  const since = new Date(now() - 24 * 3_600_000).toISOString().slice(0, 16);
  return render(
    c,
    `Deliveries of ${hook.name}`,
    <>
      <p class="small">
        <a href={`/ui/webhooks#${hook.id}`}>← Webhooks</a>
      </p>
      <h1>
        Deliveries of “{hook.name}” <HealthBadge health={hook.health} />
      </h1>
      <p class="mono small url">{hook.url}</p>
      {!hook.enabled && hook.disabled_reason && <p class="small">Disabled: {hook.disabled_reason}</p>}
      {done && (
        <Notice kind="ok">
          {done}
          {recovered && /^\d+$/.test(recovered) && ` (${recovered})`}
        </Notice>
      )}
      {refused && <Notice kind="bad">{refused}</Notice>}
      <HealthPanel stats={stats} base={base} />
      <div class="card">
        <div class="toolbar">
          <form method="get" action={base} aria-label="Filter by status">
            <label for="d-status">Status</label>
            <div class="actions tight">
              <select id="d-status" name="status">
                <option value="">Every status</option>
                {STATUSES.map((s) => (
                  <option value={s} selected={s === status}>
                    {s}
                  </option>
                ))}
              </select>
              <button type="submit" class="secondary">
                Filter
              </button>
            </div>
          </form>
          <form method="post" action={`/ui/webhooks/${hook.id}/recover`} aria-label="Recover failed deliveries">
            <Csrf session={session} />
            <label for="d-since">Redeliver every failed delivery since (UTC)</label>
            <div class="actions tight">
              <input id="d-since" type="datetime-local" name="since" value={since} required />
              <button type="submit" class="secondary" disabled={!hook.enabled} aria-describedby={hook.enabled ? undefined : "why-recover"}>
                Recover
              </button>
            </div>
            {!hook.enabled && (
              <p class="why small muted" id="why-recover">
                The webhook is disabled: enable it to recover its deliveries. Test sends are never recovered.
              </p>
            )}
          </form>
        </div>
      </div>
      {rows.length ? (
        rows.map((row) => <DeliveryCard delivery={deliveryOut(row)} attempts={attempts.get(row.id) ?? []} session={session} hookEnabled={hook.enabled} />)
      ) : (
        <p class="card muted">{status ? `No ${status} deliveries.` : "No deliveries yet. Send a test from the webhooks page."}</p>
      )}
      <nav class="pager" aria-label="Pages">
        {cursor ? (
          <a class="button secondary" href={`${base}${filterQuery}`}>
            ← Newest deliveries
          </a>
        ) : (
          <span />
        )}
        {next && (
          <a class="button secondary" rel="next" href={`${base}?${new URLSearchParams({ ...(status ? { status } : {}), cursor: encodeCursor(next) })}`}>
            Older deliveries →
          </a>
        )}
      </nav>
    </>,
    { section: "webhooks" },
  );
});

deliveryPages.post("/webhooks/:id/recover", async (c) => {
  const session = c.get("session");
  const hook = await findOrganisationWebhook(database(c.env.DB), session.orgId, c.req.param("id"));
  const form = await c.req.parseBody();
  const since = timestamp.safeParse(typeof form.since === "string" ? form.since : "");
  if (!since.success) throw invalid("since: a date and time, e.g. 2024-05-01T10:00", "since");
  return thenBack(c, hook.id, async () => {
    const { recovered } = await recover(c.env, hook.id, Date.parse(since.data), sessionSubmitter(session));
    return `done=recovered&n=${recovered}`;
  });
});

deliveryPages.get("/deliveries/:id", async (c) => {
  const session = c.get("session");
  const db = database(c.env.DB);
  const delivery = await deliveryWithAttempts(c.env, session.orgId, c.req.param("id"));
  const hook = webhookListed(await findOrganisationWebhook(db, session.orgId, delivery.webhook_id));
  let payload = delivery.payload;
  try {
    payload = JSON.stringify(JSON.parse(delivery.payload), null, 2);
  } catch {
    // shown as stored
  }
  return render(
    c,
    `Delivery ${delivery.id}`,
    <>
      <p class="small">
        <a href={`/ui/webhooks/${hook.id}/deliveries`}>← Deliveries of “{hook.name}”</a>
      </p>
      <h1>
        <span class="mono">{delivery.event_type}</span> <StatusBadge status={delivery.status} />
        {delivery.test && (
          <>
            {" "}
            <span class="badge info" data-test="">
              test
            </span>
          </>
        )}
      </h1>
      <div class="card">
        <dl class="facts">
          <dt>Delivery (webhook-id)</dt>
          <dd class="mono">{delivery.id}</dd>
          <dt>Webhook</dt>
          <dd>
            {hook.name} <span class="mono small">{hook.url}</span>
          </dd>
          <dt>Created</dt>
          <dd>
            <Time iso={delivery.created_at} />
          </dd>
          <dt>Attempts</dt>
          <dd>{delivery.attempt_count}</dd>
          {delivery.next_attempt_at && (
            <>
              <dt>Next attempt</dt>
              <dd>
                <Time iso={delivery.next_attempt_at} />
              </dd>
            </>
          )}
          {delivery.audit_entry_id !== null && (
            <>
              <dt>Audit entry</dt>
              <dd>
                <a href={`/ui/audit/${delivery.audit_entry_id}`}>{delivery.audit_entry_id}</a>
              </dd>
            </>
          )}
        </dl>
        <div class="actions">
          <DeliveryActions delivery={delivery} attempts={delivery.attempts} session={session} hookEnabled={hook.enabled} primary />
        </div>
      </div>
      <h2>Attempts</h2>
      <div class="card">
        <Attempts attempts={delivery.attempts} />
      </div>
      <h2>Payload</h2>
      <p class="small muted">Indented here for reading; every attempt sends the same bytes, shown exactly below.</p>
      <pre>{payload}</pre>
      <details class="card">
        <summary>The exact bytes sent</summary>
        <pre>{delivery.payload}</pre>
      </details>
    </>,
    { section: "webhooks" },
  );
});

deliveryPages.post("/deliveries/:id/retry", async (c) => {
  const session = c.get("session");
  const delivery = await findDelivery(c.env, session.orgId, c.req.param("id"));
  return thenBack(c, delivery.webhookId, async () => {
    await retryNow(c.env, session.orgId, delivery.id, sessionSubmitter(session));
    return "done=retried";
  });
});

deliveryPages.post("/deliveries/:id/redeliver", async (c) => {
  const session = c.get("session");
  const delivery = await findDelivery(c.env, session.orgId, c.req.param("id"));
  return thenBack(c, delivery.webhookId, async () => {
    await redeliver(c.env, session.orgId, delivery.id, sessionSubmitter(session));
    return "done=redelivered";
  });
});
