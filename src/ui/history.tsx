// Flag history pages: an environment's flags "State at" a moment, "Compare" two moments (only what
// differs), and a flag's timeline. Every view is a GET whose state lives in the URL, so it can be
// pasted into an incident channel.
import { Hono, type Context } from "hono";
import { decodeCursor, encodeCursor } from "../api/schemas";
import { ApiError } from "../domain/errors";
import { timestamp } from "../domain/event";
import { sameState, type NetChange, type StateOut, type TimelineEntry } from "../domain/flag-state";
import { database } from "../db/client";
import { changesAnswer, nowMicro, stateJson, timelineAnswer } from "../history/answers";
import { findEnvironment, type TimelineCursor } from "../history/query";
import { environmentsOf } from "../manage/catalog";
import { Notice, Time, render, showValue } from "./layout";
import type { UiEnv } from "./session";

const TIMELINE_PAGE = 50;

type Override = StateOut & { segment?: { id: number; name: string | null } | null; identity?: { id: number | null; identifier: string } | null; priority?: number | null };
interface Feature extends StateOut {
  feature: { id: number; name: string };
  known_since: string;
  segment_overrides: Override[];
  identity_overrides: Override[];
}

/** A time from the URL (a datetime-local field's value is read as UTC); null when absent or empty. */
function timeParam(c: Context<UiEnv>, name: string): string | null {
  const raw = c.req.query(name);
  if (!raw) return null;
  const parsed = timestamp.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "invalid_request", `${name}: "${raw}" is not a date and time`, [{ field: name, message: "must be an ISO-8601 date-time" }]);
  return parsed.data;
}

/** datetime-local fields take "YYYY-MM-DDTHH:MM:SS" (UTC here). */
const forInput = (iso: string | null) => (iso ? iso.slice(0, 19) : "");
const envPath = (env: string) => `/ui/environments/${encodeURIComponent(env)}`;
const envLabel = (e: { id: number; name: string | null }) => (e.name ? `${e.name} (environment ${e.id})` : `Environment ${e.id}`);

/** A flag state as a person reads it: on/off with its value, "none" for no state, "unknown" when flaghook cannot tell. */
function State({ state }: { state: StateOut | null }) {
  if (state === null) return <span class="muted">none</span>;
  if (!state.known) return <span class="badge wait">unknown</span>;
  const mv = Array.isArray(state.multivariate_feature_state_values) ? state.multivariate_feature_state_values.length : 0;
  return (
    <span>
      <span class={`badge ${state.enabled ? "ok" : "bad"}`}>{state.enabled ? "on" : "off"}</span>{" "}
      <span class="mono break">{showValue(state.feature_state_value)}</span>
      {state.priority != null && <span class="muted small"> priority {state.priority}</span>}
      {mv > 0 && <span class="muted small"> · {mv} variations</span>}
    </span>
  );
}

/** Where a state came from: its audit entry, or the relayed event's id (Flagsmith's flag webhooks have no entry). */
function Source({ state }: { state: Pick<StateOut, "audit_entry_id" | "event_id"> | null }) {
  if (!state) return null;
  if (state.audit_entry_id !== null) return <a href={`/ui/audit/${state.audit_entry_id}`}>entry {state.audit_entry_id}</a>;
  return state.event_id ? <span class="mono small">{state.event_id}</span> : null;
}

const subjectText = (o: { scope?: string; segment?: Override["segment"]; identity?: Override["identity"] }) => {
  if ("segment" in o) return o.segment ? `segment ${o.segment.name ?? o.segment.id}` : "every segment override";
  if ("identity" in o) return o.identity ? `identity ${o.identity.identifier}` : "every identity override";
  return "default";
};

function Tabs({ env, current, at }: { env: string; current: "state" | "compare"; at?: string | null }) {
  return (
    <nav class="inline-forms" aria-label="Flag history views">
      <a class={`button ${current === "state" ? "" : "secondary"}`} href={`${envPath(env)}/state${at ? `?at=${encodeURIComponent(at)}` : ""}`}>
        State at
      </a>
      <a class={`button ${current === "compare" ? "" : "secondary"}`} href={`${envPath(env)}/compare${at ? `?from=${encodeURIComponent(at)}` : ""}`}>
        Compare
      </a>
    </nav>
  );
}

/** Overrides listed per feature on the page; the API answers them all. */
const OVERRIDES_SHOWN = 50;

function Overrides({ feature, timeline }: { feature: Feature; timeline: string }) {
  const all = [...feature.segment_overrides, ...feature.identity_overrides];
  if (!all.length) return <span class="muted small">none</span>;
  return (
    <details>
      <summary class="small">
        {feature.segment_overrides.length} segment, {feature.identity_overrides.length} identity
      </summary>
      <ul class="plain small">
        {all.slice(0, OVERRIDES_SHOWN).map((o) => (
          <li>
            {subjectText(o)}: <State state={o} /> <span class="muted">since</span> <Time iso={o.changed_at} />
          </li>
        ))}
        {all.length > OVERRIDES_SHOWN && (
          <li class="muted">
            and {all.length - OVERRIDES_SHOWN} more: see the <a href={timeline}>timeline</a> or the API
          </li>
        )}
      </ul>
    </details>
  );
}

export const historyPages = new Hono<UiEnv>();

historyPages.get("/flags", async (c) => {
  const environments = await environmentsOf(database(c.env.DB), c.get("session").orgId);
  return render(
    c,
    "Flags",
    <>
      <h1>Flags</h1>
      <p class="muted">What was live when, per environment: the state of every flag at a moment, what changed between two moments, and each flag's timeline.</p>
      {environments.length ? (
        <div class="scroll card flush">
          <table>
            <thead>
              <tr>
                <th>Environment</th>
                <th class="hide-narrow">Project</th>
                <th>History</th>
              </tr>
            </thead>
            <tbody>
              {environments.map((e) => (
                <tr data-environment={String(e.id)}>
                  <td>{envLabel(e)}</td>
                  <td class="hide-narrow small">{e.projectId ?? "—"}</td>
                  <td class="small">
                    <a href={`${envPath(String(e.id))}/state`}>State now</a> · <a href={`${envPath(String(e.id))}/compare`}>Compare</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="card muted">No environment yet: they appear once an event names them.</p>
      )}
    </>,
    { section: "flags" },
  );
});

historyPages.get("/environments/:env/state", async (c) => {
  const env = c.req.param("env");
  const at = timeParam(c, "at");
  const answer = JSON.parse(await stateJson(database(c.env.DB), c.get("session").orgId, env, at ?? undefined)) as {
    at: string;
    environment: { id: number; name: string | null };
    features: Feature[];
  };
  const title = `${envLabel(answer.environment)}: state`;
  return render(
    c,
    title,
    <>
      <p class="small">
        <a href="/ui/flags">← Flags</a>
      </p>
      <h1>{envLabel(answer.environment)}</h1>
      <Tabs env={env} current="state" at={at} />
      <form method="get" action={`${envPath(env)}/state`} class="card spaced" aria-label="Choose the moment">
        <div class="fields">
          <div class="span-narrow">
            <label for="h-at">State at (UTC)</label>
            <input id="h-at" type="datetime-local" step="1" name="at" value={forInput(at ?? answer.at)} />
          </div>
        </div>
        <div class="actions">
          <button type="submit">Show</button>
          <a class="button secondary" href={`${envPath(env)}/state`}>
            Now
          </a>
        </div>
      </form>
      <p class="muted small" aria-live="polite">
        {answer.features.length === 1 ? "1 flag" : `${answer.features.length} flags`} at <Time iso={answer.at} />.
      </p>
      {answer.features.length ? (
        <div class="scroll card flush">
          <table class="stack" aria-label="Flags at this moment">
            <thead>
              <tr>
                <th>Flag</th>
                <th>Default</th>
                <th>Overrides</th>
                <th class="hide-narrow">Set</th>
              </tr>
            </thead>
            <tbody>
              {answer.features.map((f) => (
                <tr data-feature={String(f.feature.id)}>
                  <td class="break">
                    <a href={`${envPath(env)}/features/${f.feature.id}/timeline`}>{f.feature.name}</a>
                    <div class="muted small">
                      known since <Time iso={f.known_since} />
                    </div>
                  </td>
                  <td class="break" data-label="Default:">
                    <State state={f} />
                  </td>
                  <td data-label="Overrides:">
                    <Overrides feature={f} timeline={`${envPath(env)}/features/${f.feature.id}/timeline`} />
                  </td>
                  <td class="small" data-label="Set:">
                    <Time iso={f.changed_at} /> <Source state={f} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="card muted">No flag existed in this environment at that moment, as far as flaghook has seen.</p>
      )}
    </>,
    { section: "flags" },
  );
});

function ChangeRow({ change, env }: { change: NetChange; env: string }) {
  return (
    <tr data-feature={String(change.feature.id)} data-scope={change.scope}>
      <td class="break">
        <a href={`${envPath(env)}/features/${change.feature.id}/timeline`}>{change.feature.name}</a>
        <div class="muted small">{subjectText(change.scope === "environment" ? {} : change)}</div>
      </td>
      <td class="old break" data-label="Before:">
        <State state={change.before} />
      </td>
      <td class="arrow">→</td>
      <td class="new break" data-label="After:">
        <State state={change.after} />
      </td>
      <td class="small break" data-label="By:">
        {change.authors.join(", ") || <span class="muted">—</span>}
        <div class="muted">
          {change.changes_between === 1 ? "1 change" : `${change.changes_between} changes`}
          {change.after?.changed_at && (
            <>
              , last <Time iso={change.after.changed_at} />
            </>
          )}
        </div>
        <div>
          {change.audit_entry_ids.map((id) => (
            <>
              <a href={`/ui/audit/${id}`}>entry {id}</a>{" "}
            </>
          ))}
        </div>
      </td>
    </tr>
  );
}

historyPages.get("/environments/:env/compare", async (c) => {
  const env = c.req.param("env");
  const from = timeParam(c, "from");
  const to = timeParam(c, "to");
  const answer = from ? await changesAnswer(database(c.env.DB), c.get("session").orgId, env, from, to ?? nowMicro()) : null;
  const differs = answer?.changes.filter((x) => !sameState(x.before, x.after)) ?? [];
  const back = answer?.changes.filter((x) => sameState(x.before, x.after)) ?? [];
  const environment = answer?.environment ?? (await environmentName(c, env));
  return render(
    c,
    `${envLabel(environment)}: compare`,
    <>
      <p class="small">
        <a href="/ui/flags">← Flags</a>
      </p>
      <h1>{envLabel(environment)}</h1>
      <Tabs env={env} current="compare" at={to ?? from} />
      <form method="get" action={`${envPath(env)}/compare`} class="card spaced" aria-label="Choose two moments">
        <div class="fields">
          <div class="span-narrow">
            <label for="h-from">From (UTC)</label>
            <input id="h-from" type="datetime-local" step="1" name="from" value={forInput(from)} required />
          </div>
          <div class="span-narrow">
            <label for="h-to">To (UTC, empty for now)</label>
            <input id="h-to" type="datetime-local" step="1" name="to" value={forInput(to)} />
          </div>
        </div>
        <div class="actions">
          <button type="submit">Compare</button>
        </div>
      </form>
      {answer && (
        <>
          <p class="muted small" aria-live="polite">
            {differs.length === 1 ? "1 flag state differs" : `${differs.length} flag states differ`} between <Time iso={answer.from} /> and <Time iso={answer.to} />.
          </p>
          {differs.length ? (
            <div class="scroll card flush">
              <table class="diff stack" aria-label="What differs">
                <thead>
                  <tr>
                    <th>Flag</th>
                    <th>Before</th>
                    <th class="arrow" aria-hidden="true"></th>
                    <th>After</th>
                    <th>Who, when</th>
                  </tr>
                </thead>
                <tbody>
                  {differs.map((x) => (
                    <ChangeRow change={x} env={env} />
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p class="card muted">Nothing differs.</p>
          )}
          {back.length > 0 && (
            <>
              <h2>Changed, then changed back</h2>
              <div class="scroll card flush">
                <table class="diff stack" aria-label="Changed and changed back">
                  <tbody>
                    {back.map((x) => (
                      <ChangeRow change={x} env={env} />
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          )}
        </>
      )}
    </>,
    { section: "flags" },
  );
});

/** The environment for a page without an answer yet; an unknown one is not found, as in the API. */
const environmentName = (c: Context<UiEnv>, env: string) => findEnvironment(database(c.env.DB), c.get("session").orgId, env);

function TimelineRow({ entry }: { entry: TimelineEntry }) {
  return (
    <tr data-change={entry.change} data-scope={entry.scope}>
      <td class="nowrap small">
        <Time iso={entry.changed_at} />
      </td>
      <td class="break small">
        {subjectText(entry.scope === "environment" ? {} : entry)}
        <div class="muted">{entry.change}</div>
      </td>
      <td class="old break" data-label="Before:">
        <State state={entry.before} />
      </td>
      <td class="arrow">→</td>
      <td class="new break" data-label="After:">
        <State state={entry.after} />
      </td>
      <td class="small break" data-label="By:">
        {entry.author ?? <span class="muted">—</span>}
        <div>
          <Source state={entry} />
        </div>
      </td>
    </tr>
  );
}

historyPages.get("/environments/:env/features/:feature{[0-9]+}/timeline", async (c) => {
  const env = c.req.param("env");
  const featureId = Number(c.req.param("feature"));
  const cursor = c.req.query("cursor");
  const after = cursor ? decodeCursor<TimelineCursor>(cursor, ["string", "number"]) : undefined;
  const { environment, feature, results, next } = await timelineAnswer(database(c.env.DB), c.get("session").orgId, env, featureId, TIMELINE_PAGE, after);
  const path = `${envPath(env)}/features/${featureId}/timeline`;
  return render(
    c,
    `${feature.name}: timeline`,
    <>
      <p class="small">
        <a href={`${envPath(env)}/state`}>← {envLabel(environment)}</a>
      </p>
      <h1>
        {feature.name} <span class="muted small">(feature {feature.id})</span>
      </h1>
      <p class="muted small">
        Every recorded change of this flag in {envLabel(environment)}, oldest first, in the order the changes took effect.
      </p>
      <div class="scroll card flush">
        <table class="diff stack" aria-label="Timeline">
          <thead>
            <tr>
              <th class="nowrap">When (UTC)</th>
              <th>What</th>
              <th>Before</th>
              <th class="arrow" aria-hidden="true"></th>
              <th>After</th>
              <th>Who</th>
            </tr>
          </thead>
          <tbody>
            {results.map((e) => (
              <TimelineRow entry={e} />
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        {cursor ? (
          <a class="button secondary" href={path}>
            ← Oldest changes
          </a>
        ) : (
          <span />
        )}
        {next && (
          <a class="button secondary" rel="next" href={`${path}?cursor=${encodeURIComponent(encodeCursor(next))}`}>
            Later changes →
          </a>
        )}
      </nav>
    </>,
    { section: "flags" },
  );
});
