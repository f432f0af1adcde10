// The webhooks page: the organisation's webhooks and each environment's; create, edit, enable,
// disable, delete, rotate the secret (shown once) and send a test, all through src/manage/webhooks.
import { Hono, type Context } from "hono";
import { ApiError, invalid } from "../domain/errors";
import { DEFAULT_EVENT_TYPES, SCOPE_EVENT_TYPES, type WebhookEventType, type WebhookScope } from "../domain/fanout";
import { maskedUrl } from "../domain/masked-url";
import type { ChangedByFormat } from "../domain/payload";
import { database } from "../db/client";
import type { WebhookRow } from "../db/schema";
import { environmentsOf } from "../manage/catalog";
import {
  confirmSecret,
  createWebhook,
  deleteWebhook,
  findOrganisationWebhook,
  listWebhooks,
  resolveEnvironment,
  rotateSecret,
  testWebhook,
  updateWebhook,
  webhookListed,
  webhookOut,
  type WebhookInput,
  type WebhookOwner,
} from "../manage/webhooks";
import { now } from "../domain/clock";
import { lastDay, type DaySummary } from "../health/stats";
import { HealthBadge } from "./health";
import { Csrf, Notice, PostButton, Time, render } from "./layout";
import { sessionSubmitter, type Session, type UiEnv } from "./session";

type Webhook = ReturnType<typeof webhookOut>;
type Environment = Awaited<ReturnType<typeof environmentsOf>>[number];

/** What a redirect after a change says; fixed texts, so a link cannot put words on the page. */
export const DONE: Record<string, string> = {
  updated: "Webhook saved.",
  enabled: "Webhook enabled.",
  disabled: "Webhook disabled: nothing is sent to it until it is enabled again.",
  deleted: "Webhook deleted, with its deliveries.",
  switched: "Secret switched: X-Flagsmith-Signature and webhook-signature use the new secret only.",
  redelivered: "Delivery queued again: same body, same webhook-id.",
  retried: "Retry queued: the delivery's next attempt is being made now.",
  recovered: "Failed deliveries queued again.",
};

const envLabel = (e: Pick<Environment, "id" | "name"> | undefined, id: number | null) =>
  e?.name ? `${e.name} (environment ${id})` : `Environment ${id}`;

const sameAsFlagsmith = (scope: WebhookScope, types: readonly WebhookEventType[]) =>
  types.length === DEFAULT_EVENT_TYPES[scope].length && DEFAULT_EVENT_TYPES[scope].every((t) => types.includes(t));

function EventTypes({ hook }: { hook: Webhook }) {
  return (
    <span class="small">
      {hook.event_types.join(", ")} {sameAsFlagsmith(hook.scope, hook.event_types) && <span class="muted">(same as Flagsmith)</span>}
    </span>
  );
}

/** A rotation under way, said plainly, with the owner's switch. */
function Rotation({ hook, session }: { hook: Webhook; session: Session }) {
  const r = hook.secret_rotation;
  if (!r) return null;
  const until = <Time iso={r.previous_secret_expires_at} />;
  return (
    <div class="notice info" role="status" data-rotation={r.x_flagsmith_signature}>
      {r.staged ? (
        <>
          Secret rotation staged: <code>X-Flagsmith-Signature</code> still uses the previous secret and <code>webhook-signature</code> carries
          both, until you confirm the switch or {until}.
        </>
      ) : (
        <>
          New secret in use; the previous one also signs <code>webhook-signature</code> until {until}.
        </>
      )}
      <PostButton action={`/ui/webhooks/${hook.id}/rotate-secret/confirm`} session={session} label="Confirm switch to the new secret" kind="secondary" />
    </div>
  );
}

function WebhookCard({ hook, session, day }: { hook: Webhook; session: Session; day?: DaySummary }) {
  const base = `/ui/webhooks/${hook.id}`;
  return (
    <article class="card" id={hook.id} data-webhook={hook.id}>
      <div class="hook-head">
        <h3>
          {hook.name} <HealthBadge health={hook.health} />
        </h3>
        <span class="muted small mono">{hook.id}</span>
      </div>
      <p class="mono url">{hook.url}</p>
      {!hook.enabled && hook.disabled_reason && <p class="small">Disabled: {hook.disabled_reason}</p>}
      {hook.health === "failing" && (
        <p class="small" data-failing-since={hook.failing_since}>
          Failing since <Time iso={hook.failing_since} />
          {day?.lastFailure && <span class="break">: {day.lastFailure}</span>}
        </p>
      )}
      <p class="small muted" data-day={hook.id}>
        Last 24 hours:{" "}
        {day && day.attempts
          ? `${day.delivered.toLocaleString("en")} delivered, ${day.failed.toLocaleString("en")} failed, ${day.attemptsFailed.toLocaleString("en")} of ${day.attempts.toLocaleString("en")} attempts failed`
          : "no attempts"}{" "}
        · <a href={`${base}/deliveries`}>health and deliveries</a>
      </p>
      <p class="small muted">
        Events: <EventTypes hook={hook} /> · changed_by: {hook.changed_by === "email" ? "email" : "first last"} · created <Time iso={hook.created_at} />
      </p>
      <Rotation hook={hook} session={session} />
      <div class="inline-forms">
        <a class="button" href={`${base}/deliveries`}>
          Deliveries
        </a>
        <PostButton action={`${base}/test`} session={session} label="Send test" kind="secondary" />
        <a class="button secondary" href={`${base}/edit`}>
          Edit
        </a>
        {hook.enabled ? (
          <PostButton action={`${base}/disable`} session={session} label="Disable" kind="secondary" />
        ) : (
          <PostButton action={`${base}/enable`} session={session} label="Enable" kind="secondary" />
        )}
        <PostButton action={`${base}/rotate-secret`} session={session} label="Rotate secret" kind="secondary" />
        <a class="button secondary" href={`${base}/delete`}>
          Delete…
        </a>
      </div>
    </article>
  );
}

interface FormValues {
  name: string;
  url: string;
  event_types: readonly WebhookEventType[] | null;
  changed_by: ChangedByFormat;
  enabled: boolean;
}

/** The create and edit form: the owner is fixed by the page, the fields are the webhook's. */
function WebhookForm(props: { action: string; scope: WebhookScope; values: FormValues; session: Session; hidden?: Record<string, string>; submit: string; error?: ApiError; isNew: boolean }) {
  const { values, scope } = props;
  const chosen = new Set(values.event_types ?? DEFAULT_EVENT_TYPES[scope]);
  const fieldError = (field: string) => props.error?.details.find((d) => d.field === field)?.message;
  return (
    <form method="post" action={props.action} class="card">
      <Csrf session={props.session} />
      {Object.entries(props.hidden ?? {}).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      {props.error && <Notice kind="bad">{props.error.message}</Notice>}
      <div class="fields">
        <div class="wide">
          <label for="w-url">URL the payloads are POSTed to</label>
          <input id="w-url" type="url" name="url" required maxlength={2048} value={values.url} placeholder="https://example.com/flagsmith-webhook" aria-invalid={fieldError("url") ? "true" : undefined} />
        </div>
        <div class="wide">
          <label for="w-name">Name</label>
          <input id="w-name" type="text" name="name" maxlength={200} value={values.name} placeholder="defaults to the URL's host" />
        </div>
        <fieldset class="wide">
          <legend class="small muted">Events sent</legend>
          <p class="small muted" id="same-as-flagsmith">
            Ticked below, and chosen when nothing is: the same as Flagsmith sends {scope === "organisation" ? "an audit log webhook" : "an environment webhook"} ({DEFAULT_EVENT_TYPES[scope].join(", ")}).
          </p>
          {SCOPE_EVENT_TYPES[scope].map((t) => (
            <label class="check">
              <input type="checkbox" name="event_types" value={t} checked={chosen.has(t)} /> <span class="mono">{t}</span>
              {DEFAULT_EVENT_TYPES[scope].includes(t) && <span class="muted small">(same as Flagsmith)</span>}
            </label>
          ))}
        </fieldset>
        <div class="wide">
          <label for="w-changed-by">changed_by in FLAG_UPDATED / FLAG_DELETED of flaghook's own events</label>
          <select id="w-changed-by" name="changed_by">
            <option value="name" selected={values.changed_by !== "email"}>
              first last (the documentation's sample)
            </option>
            <option value="email" selected={values.changed_by === "email"}>
              email (what Flagsmith sends since 2022)
            </option>
          </select>
        </div>
        {props.isNew && (
          <div class="wide">
            <label for="w-secret">Secret (optional)</label>
            <input id="w-secret" type="text" name="secret" maxlength={256} autocomplete="off" placeholder="leave empty to generate whsec_…, or paste the one your receiver checks" />
          </div>
        )}
        <label class="check wide">
          <input type="checkbox" name="enabled" value="true" checked={values.enabled} /> Enabled
        </label>
      </div>
      <div class="actions">
        <button type="submit">{props.submit}</button>
        <a class="button secondary" href="/ui/webhooks">
          Cancel
        </a>
      </div>
    </form>
  );
}

type Form = Record<string, string | File | (string | File)[]>;
const one = (form: Form, key: string) => {
  const v = form[key];
  return typeof v === "string" ? v : "";
};

/** The form as a WebhookInput; createWebhook/updateWebhook check the URL policy and event types. */
function inputFrom(form: Form, scope: WebhookScope): WebhookInput & { url: string } {
  const url = one(form, "url").trim();
  if (!url) throw invalid("url: enter the URL to deliver to", "url");
  if (url.length > 2048) throw invalid("url: at most 2048 characters", "url");
  const name = one(form, "name").trim();
  if (name.length > 200) throw invalid("name: at most 200 characters", "name");
  const raw = form.event_types;
  const types = (Array.isArray(raw) ? raw : raw ? [raw] : []).filter((t): t is string => typeof t === "string") as WebhookEventType[];
  const secret = one(form, "secret");
  if (secret.length > 256) throw invalid("secret: at most 256 characters", "secret");
  const changedBy = one(form, "changed_by") || "name";
  if (changedBy !== "name" && changedBy !== "email") throw invalid("changed_by: name or email", "changed_by");
  return {
    url,
    name: name || undefined,
    // Nothing ticked: the same as Flagsmith (the scope's default).
    event_types: types.length ? types : null,
    changed_by: changedBy,
    enabled: one(form, "enabled") === "true",
    secret: secret || undefined,
  };
}

function valuesFrom(form: Form): FormValues {
  const raw = form.event_types;
  const types = (Array.isArray(raw) ? raw : raw ? [raw] : []).filter((t): t is string => typeof t === "string") as WebhookEventType[];
  const changedBy = one(form, "changed_by") === "email" ? "email" : "name";
  return { url: one(form, "url"), name: one(form, "name"), event_types: types, changed_by: changedBy, enabled: one(form, "enabled") === "true" };
}

/** The secret is in this page only: never cached, never in a URL. */
function SecretShown(props: { title: string; hook: Webhook; secret: string; note?: string; session?: Session }) {
  const staged = props.hook.secret_rotation?.staged;
  return (
    <>
      <h1>{props.title}</h1>
      <div class="card">
        <Notice kind="ok">
          Copy the secret now: it is shown only this once. Receivers check <code>X-Flagsmith-Signature</code> and{" "}
          <code>webhook-signature</code> with it.
        </Notice>
        <label for="secret">Secret of “{props.hook.name}”</label>
        <code id="secret" class="secret">
          {props.secret}
        </code>
        {props.note && <p class="small muted">{props.note}</p>}
        {staged && props.session && (
          <div class="card" id="confirm-switch">
            <p class="small">
              A receiver written for Flagsmith checks only <code>X-Flagsmith-Signature</code>, which keeps using the previous secret for now.
              Give the receiver the new secret (best: have it accept both for a while), then confirm: from then on every delivery is signed
              with the new secret only. Deliveries that fail in between are retried.
            </p>
            <PostButton action={`/ui/webhooks/${props.hook.id}/rotate-secret/confirm`} session={props.session} label="Confirm switch to the new secret" />
          </div>
        )}
        <div class="actions">
          <a class="button" href={`/ui/webhooks#${props.hook.id}`}>
            Back to webhooks
          </a>
          <a class="button secondary" href={`/ui/webhooks/${props.hook.id}/deliveries`}>
            Deliveries
          </a>
        </div>
      </div>
    </>
  );
}

async function hookOf(c: Context<UiEnv>): Promise<WebhookRow> {
  return findOrganisationWebhook(database(c.env.DB), c.get("session").orgId, c.req.param("id") ?? "");
}

export const webhookPages = new Hono<UiEnv>();

webhookPages.get("/webhooks", async (c) => {
  const session = c.get("session");
  const db = database(c.env.DB);
  const orgHooks = await listWebhooks(db, { orgId: session.orgId, scope: "organisation", environmentId: null });
  // Environment scope without an environment: every environment webhook of the organisation.
  const envHooks = await listWebhooks(db, { orgId: session.orgId, scope: "environment", environmentId: null });
  const environments = await environmentsOf(db, session.orgId);
  const byId = new Map(environments.map((e) => [e.id, e]));
  const envIds = [...new Set([...environments.map((e) => e.id), ...envHooks.map((h) => h.environment!)])].sort((a, b) => a - b);
  const days = await lastDay(db, [...orgHooks, ...envHooks].map((h) => h.id), now());
  const done = DONE[c.req.query("done") ?? ""];
  return render(
    c,
    "Webhooks",
    <>
      <h1>Webhooks</h1>
      {done && <Notice kind="ok">{done}</Notice>}
      <section aria-labelledby="org-hooks">
        <div class="hook-head">
          <h2 id="org-hooks">Organisation webhooks</h2>
          <a class="button" href="/ui/webhooks/new?scope=organisation">
            Add organisation webhook
          </a>
        </div>
        <p class="muted small">Flagsmith's audit log webhooks: one AUDIT_LOG_CREATED per audit entry, and every flag change (FLAG_UPDATED, FLAG_DELETED), as Flagsmith sends them.</p>
        {orgHooks.length ? orgHooks.map((h) => <WebhookCard hook={h} session={session} day={days.get(h.id)} />) : <p class="card muted">No organisation webhooks yet.</p>}
      </section>
      <h2>Environment webhooks</h2>
      <p class="muted small">Flagsmith's environment webhooks: FLAG_UPDATED, FLAG_DELETED and NEW_VERSION_PUBLISHED for the flags of one environment.</p>
      {envIds.map((id) => {
        const hooks = envHooks.filter((h) => h.environment === id);
        return (
          <section aria-label={envLabel(byId.get(id), id)} data-environment={String(id)}>
            <div class="hook-head">
              <h3>{envLabel(byId.get(id), id)}</h3>
              <a class="button secondary" href={`/ui/webhooks/new?environment=${id}`}>
                Add webhook
              </a>
            </div>
            {hooks.length ? hooks.map((h) => <WebhookCard hook={h} session={session} day={days.get(h.id)} />) : <p class="muted small">No webhooks for this environment.</p>}
          </section>
        );
      })}
      <form method="get" action="/ui/webhooks/new" class="card">
        <label for="other-env">Add a webhook to another environment (its id or API key)</label>
        <div class="actions">
          <input id="other-env" type="text" name="environment" required maxlength={200} placeholder="e.g. 23 or ser.abc…" />
          <button type="submit" class="secondary">
            Continue
          </button>
        </div>
      </form>
    </>,
    { section: "webhooks" },
  );
});

/** The owner a new webhook hangs on, from ?scope=organisation or ?environment=<id or api_key>. */
async function ownerFrom(c: Context<UiEnv>, ref: { scope?: string; environment?: string }): Promise<WebhookOwner & { label: string }> {
  const orgId = c.get("session").orgId;
  if (ref.scope === "organisation" || !ref.environment) return { orgId, scope: "organisation", environmentId: null, label: "the organisation" };
  if (ref.environment.length > 200) throw invalid("environment: an id or an API key", "environment");
  const db = database(c.env.DB);
  const environmentId = await resolveEnvironment(db, orgId, ref.environment.trim());
  const known = (await environmentsOf(db, orgId)).find((e) => e.id === environmentId);
  return { orgId, scope: "environment", environmentId, label: envLabel(known, environmentId) };
}

const newPage = (c: Context<UiEnv>, owner: WebhookOwner & { label: string }, values: FormValues, error?: ApiError) =>
  render(
    c,
    "New webhook",
    <>
      <p class="small">
        <a href="/ui/webhooks">← Webhooks</a>
      </p>
      <h1>New webhook for {owner.label}</h1>
      <WebhookForm
        action="/ui/webhooks/new"
        scope={owner.scope}
        values={values}
        session={c.get("session")}
        hidden={owner.scope === "organisation" ? { scope: "organisation" } : { environment: String(owner.environmentId) }}
        submit="Create webhook"
        error={error}
        isNew
      />
    </>,
    { status: error ? error.status : 200, section: "webhooks" },
  );

webhookPages.get("/webhooks/new", async (c) => {
  const owner = await ownerFrom(c, { scope: c.req.query("scope"), environment: c.req.query("environment") });
  return newPage(c, owner, { name: "", url: "", event_types: null, changed_by: "name", enabled: true });
});

webhookPages.post("/webhooks/new", async (c) => {
  const form = await c.req.parseBody({ all: true });
  const owner = await ownerFrom(c, { scope: one(form, "scope"), environment: one(form, "environment") });
  try {
    const created = await createWebhook(c.env, owner, inputFrom(form, owner.scope), sessionSubmitter(c.get("session")));
    return render(c, "Webhook created", <SecretShown title={`Webhook “${created.name}” created`} hook={created} secret={created.secret} />, {
      status: 201,
      section: "webhooks",
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) return newPage(c, owner, valuesFrom(form), err);
    throw err;
  }
});

const editPage = (c: Context<UiEnv>, hook: Webhook, values: FormValues, error?: ApiError) =>
  render(
    c,
    `Edit ${hook.name}`,
    <>
      <p class="small">
        <a href={`/ui/webhooks#${hook.id}`}>← Webhooks</a>
      </p>
      <h1>Edit “{hook.name}”</h1>
      <WebhookForm action={`/ui/webhooks/${hook.id}/edit`} scope={hook.scope} values={values} session={c.get("session")} submit="Save" error={error} isNew={false} />
    </>,
    { status: error ? error.status : 200, section: "webhooks" },
  );

webhookPages.get("/webhooks/:id/edit", async (c) => {
  const hook = webhookOut(await hookOf(c));
  return editPage(c, hook, { name: hook.name, url: hook.url, event_types: hook.event_types, changed_by: hook.changed_by, enabled: hook.enabled });
});

webhookPages.post("/webhooks/:id/edit", async (c) => {
  const row = await hookOf(c);
  const form = await c.req.parseBody({ all: true });
  try {
    const { secret: _ignored, ...input } = inputFrom(form, row.scope);
    await updateWebhook(c.env, row, input, sessionSubmitter(c.get("session")));
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) return editPage(c, webhookOut(row), valuesFrom(form), err);
    throw err;
  }
  return c.redirect(`/ui/webhooks?done=updated#${row.id}`, 303);
});

for (const [path, enabled] of [["enable", true], ["disable", false]] as const) {
  webhookPages.post(`/webhooks/:id/${path}`, async (c) => {
    const row = await hookOf(c);
    await updateWebhook(c.env, row, { enabled }, sessionSubmitter(c.get("session")));
    return c.redirect(`/ui/webhooks?done=${path}d#${row.id}`, 303);
  });
}

webhookPages.get("/webhooks/:id/delete", async (c) => {
  const hook = webhookListed(await hookOf(c));
  return render(
    c,
    `Delete ${hook.name}`,
    <>
      <h1>Delete “{hook.name}”?</h1>
      <div class="card">
        <p>
          <span class="mono">{hook.url}</span> will receive nothing more, and its deliveries and their attempts are deleted too. The
          audit log keeps a record of the deletion.
        </p>
        <div class="actions">
          <PostButton action={`/ui/webhooks/${hook.id}/delete`} session={c.get("session")} label="Delete webhook" kind="danger" />
          <a class="button secondary" href={`/ui/webhooks#${hook.id}`}>
            Keep it
          </a>
        </div>
      </div>
    </>,
    { section: "webhooks" },
  );
});

webhookPages.post("/webhooks/:id/delete", async (c) => {
  await deleteWebhook(c.env, await hookOf(c), sessionSubmitter(c.get("session")));
  return c.redirect("/ui/webhooks?done=deleted", 303);
});

webhookPages.post("/webhooks/:id/rotate-secret", async (c) => {
  const rotated = await rotateSecret(c.env, await hookOf(c), {}, sessionSubmitter(c.get("session")));
  const until = rotated.previous_secret_expires_at.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const note = `The previous secret also signs (a second webhook-signature entry), and keeps signing X-Flagsmith-Signature, until you confirm the switch or ${until}.`;
  return render(
    c,
    "Secret rotated",
    <SecretShown title={`New secret for “${rotated.name}”`} hook={rotated} secret={rotated.secret} note={note} session={c.get("session")} />,
    { section: "webhooks" },
  );
});

webhookPages.post("/webhooks/:id/rotate-secret/confirm", async (c) => {
  const row = await hookOf(c);
  await confirmSecret(c.env, row, sessionSubmitter(c.get("session")));
  return c.redirect(`/ui/webhooks?done=switched#${row.id}`, 303);
});

webhookPages.post("/webhooks/:id/test", async (c) => {
  const row = await hookOf(c);
  const result = await testWebhook(c.env, row);
  return render(
    c,
    "Test sent",
    <>
      <p class="small">
        <a href={`/ui/webhooks#${row.id}`}>← Webhooks</a>
      </p>
      <h1>Test sent to “{row.name}”</h1>
      <div class="card" data-test-result={result.ok ? "ok" : "failed"}>
        <Notice kind={result.ok ? "ok" : "bad"}>
          {result.ok ? "The receiver accepted the test payload." : "The receiver did not accept the test payload."}
        </Notice>
        <dl class="facts">
          <dt>URL</dt>
          <dd class="mono">{maskedUrl(row.url)}</dd>
          <dt>Status code</dt>
          <dd id="status-code">{result.status_code ?? "none (no HTTP answer)"}</dd>
          <dt>Duration</dt>
          <dd>{result.duration_ms} ms</dd>
          {result.error && (
            <>
              <dt>Error</dt>
              <dd>{result.error}</dd>
            </>
          )}
          <dt>Delivery</dt>
          <dd>
            <a class="mono" href={`/ui/deliveries/${result.delivery_id}`}>
              {result.delivery_id}
            </a>
          </dd>
        </dl>
        <h3 class="spaced">Response body (first 2 KiB)</h3>
        {result.response_body ? <pre id="response-body">{result.response_body}</pre> : <p class="muted small">empty</p>}
        <div class="actions">
          <a class="button" href={`/ui/webhooks/${row.id}/deliveries`}>
            See deliveries
          </a>
          <a class="button secondary" href="/ui/webhooks">
            Back to webhooks
          </a>
        </div>
      </div>
    </>,
    { section: "webhooks" },
  );
});
