// The Flagsmith page: the organisation's inbound sources (the URL and secret pasted into Flagsmith),
// when each last received a webhook and a "Test webhook" sample, create (URL and secret shown once)
// and revoke, all through src/manage/inbound-sources.
import { Hono, type Context } from "hono";
import { ApiError, invalid } from "../domain/errors";
import { createSource, findSource, listSources, revokeSource, sourceOut, type SourceInput } from "../manage/inbound-sources";
import { Csrf, Notice, PostButton, Time, render } from "./layout";
import { sessionSubmitter, type Session, type UiEnv } from "./session";

type Source = ReturnType<typeof sourceOut>;

const DONE: Record<string, string> = {
  revoked: "Source revoked: its URL answers 410 from now on.",
};

function SourceCard({ source, session }: { source: Source; session: Session }) {
  return (
    <article class="card" id={source.id} data-source={source.id}>
      <div class="hook-head">
        <h3>
          {source.name}{" "}
          {source.revoked_at ? (
            <span class="badge bad">revoked</span>
          ) : source.signed ? (
            <span class="badge ok">signed</span>
          ) : (
            <span class="badge wait" data-unsigned="true">
              unsigned
            </span>
          )}
        </h3>
        <span class="muted small mono">{source.id}</span>
      </div>
      {!source.signed && !source.revoked_at && (
        <p class="small" role="note">
          Unsigned: this source checks no <code>X-Flagsmith-Signature</code>, so anyone who knows its URL can post changes to it.
        </p>
      )}
      <dl class="facts small">
        <dt>URL token</dt>
        <dd class="mono">{source.token_prefix}…</dd>
        <dt>Last webhook</dt>
        <dd data-last-received>
          <Time iso={source.last_received_at} />
        </dd>
        <dt>Last test</dt>
        <dd data-last-test>
          {source.last_test_received_at ? (
            <>
              <Time iso={source.last_test_received_at} /> <span class="muted">(Flagsmith's “Test webhook” reached flaghook: URL and secret work)</span>
            </>
          ) : (
            <span class="muted">none yet: press “Test your webhook” in Flagsmith</span>
          )}
        </dd>
        <dt>Created</dt>
        <dd>
          <Time iso={source.created_at} />
        </dd>
        {source.revoked_at && (
          <>
            <dt>Revoked</dt>
            <dd>
              <Time iso={source.revoked_at} />
            </dd>
          </>
        )}
      </dl>
      {!source.revoked_at && (
        <div class="actions">
          <a class="button secondary" href={`/ui/flagsmith/${source.id}/revoke`}>
            Revoke…
          </a>
        </div>
      )}
    </article>
  );
}

function CreateForm({ session, error }: { session: Session; error?: ApiError }) {
  return (
    <form method="post" action="/ui/flagsmith/new" class="card" aria-labelledby="new-source">
      <Csrf session={session} />
      {error && <Notice kind="bad">{error.message}</Notice>}
      <div class="fields">
        <div>
          <label for="s-name">Name</label>
          <input id="s-name" type="text" name="name" maxlength={200} placeholder="Flagsmith" />
        </div>
        <div>
          <label for="s-secret">Secret (optional)</label>
          <input id="s-secret" type="text" name="secret" maxlength={255} autocomplete="off" placeholder="leave empty to generate, or paste Flagsmith's" />
        </div>
        <label class="check wide">
          <input type="checkbox" name="unsigned" value="true" /> Unsigned: my Flagsmith webhook's secret is blank, so it sends no signature (anyone
          with the URL could post to it)
        </label>
      </div>
      <div class="actions">
        <button type="submit">Create source</button>
      </div>
    </form>
  );
}

const listPage = async (c: Context<UiEnv>, error?: ApiError) => {
  const session = c.get("session");
  const sources = await listSources(c.env, session.orgId);
  const done = DONE[c.req.query("done") ?? ""];
  return render(
    c,
    "Flagsmith",
    <>
      <h1>Flagsmith</h1>
      {done && <Notice kind="ok">{done}</Notice>}
      <p class="muted small">
        An inbound source is the URL and secret you paste into Flagsmith's own webhooks (organisation audit log webhook and each environment's
        webhooks). For an environment's webhook, add <code>?environment=&lt;its id&gt;</code> to the URL: Flagsmith's NEW_VERSION_PUBLISHED does
        not say which environment it is for.
      </p>
      {sources.length ? sources.map((s) => <SourceCard source={s} session={session} />) : <p class="card muted">No sources yet.</p>}
      <h2 id="new-source">New source</h2>
      <CreateForm session={session} error={error} />
    </>,
    { section: "flagsmith", status: error ? error.status : 200 },
  );
};

export const inboundPages = new Hono<UiEnv>();

inboundPages.get("/flagsmith", (c) => listPage(c));

inboundPages.post("/flagsmith/new", async (c) => {
  const form = await c.req.parseBody();
  const value = (key: string) => (typeof form[key] === "string" ? (form[key] as string) : "");
  const name = value("name").trim();
  const secret = value("secret");
  try {
    if (name.length > 200) throw invalid("name: at most 200 characters", "name");
    if (secret.length > 255) throw invalid("secret: at most 255 characters (Flagsmith's limit)", "secret");
    const input: SourceInput = { name: name || undefined, secret: secret || undefined, unsigned: value("unsigned") === "true" };
    const created = await createSource(c.env, c.get("session").orgId, input, new URL(c.req.url).origin, sessionSubmitter(c.get("session")));
    return render(
      c,
      "Source created",
      <>
        <h1>Source “{created.name}” created</h1>
        <div class="card">
          <Notice kind="ok">Copy the URL{created.secret !== null && " and the secret"} now: they are shown only this once.</Notice>
          <label for="url">URL: paste into Flagsmith's webhook URL (for an environment's webhook, add ?environment=&lt;its id&gt;)</label>
          <code id="url" class="secret">
            {created.url}
          </code>
          {created.secret !== null ? (
            <>
              <label for="secret">Secret: paste into Flagsmith's webhook secret</label>
              <code id="secret" class="secret">
                {created.secret}
              </code>
            </>
          ) : (
            <p class="small" role="note">
              Unsigned source: leave the secret blank in Flagsmith.
            </p>
          )}
          <div class="actions">
            <a class="button" href={`/ui/flagsmith#${created.id}`}>
              Back to sources
            </a>
          </div>
        </div>
      </>,
      { status: 201, section: "flagsmith" },
    );
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) return listPage(c, err);
    throw err;
  }
});

inboundPages.get("/flagsmith/:id/revoke", async (c) => {
  const source = sourceOut(await findSource(c.env, c.get("session").orgId, c.req.param("id")));
  return render(
    c,
    `Revoke ${source.name}`,
    <>
      <h1>Revoke “{source.name}”?</h1>
      <div class="card">
        <p>Its URL answers 410 from then on: Flagsmith webhooks still pointing at it are lost. Revoking cannot be undone.</p>
        <div class="actions">
          <PostButton action={`/ui/flagsmith/${source.id}/revoke`} session={c.get("session")} label="Revoke source" kind="danger" />
          <a class="button secondary" href={`/ui/flagsmith#${source.id}`}>
            Keep it
          </a>
        </div>
      </div>
    </>,
    { section: "flagsmith" },
  );
});

inboundPages.post("/flagsmith/:id/revoke", async (c) => {
  await revokeSource(c.env, c.get("session").orgId, c.req.param("id"), sessionSubmitter(c.get("session")));
  return c.redirect("/ui/flagsmith?done=revoked", 303);
});
