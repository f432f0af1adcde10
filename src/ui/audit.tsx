// The audit log page: every filter of GET /api/v1/audit as a form whose state lives in the URL,
// keyset pages newest first, and one entry with its change shown as old -> new.
import { Hono } from "hono";
import { AuditFiltersSchema, auditResult, removedEntry } from "../api/audit";
import { decodeCursor, encodeCursor, pageSize } from "../api/schemas";
import { changeDetails, changeType } from "../domain/audit";
import { notFound } from "../domain/errors";
import type { ChangeEvent } from "../domain/event";
import type { TimeLimits } from "../domain/audit";
import { SUBMITTER_TYPES, type Submitter } from "../domain/provenance";
import { seqOfLegacyId, type AuditCursor, type AuditFilters } from "../db/audit-queries";
import { findEntry, listEntries, logStore } from "../audit/entries";
import { database } from "../db/client";
import { logDatabase } from "../db/placement";
import type { AuditEntryRow } from "../db/schema";
import { config } from "../env";
import { environmentsOf, projectsOf } from "../manage/catalog";
import { Notice, Time, render, showValue } from "./layout";
import type { UiEnv } from "./session";

const FILTERS = ["search", "project", "environment", "related_object_type", "author", "is_system_event", "submitter_type", "submitter", "since", "until"] as const;
const PAGE_SIZES = [25, 50, 100, 200];
/** Suggestions only: CUSTOM events may name any related object type. */
const KNOWN_TYPES = ["FEATURE", "FEATURE_STATE", "SEGMENT", "ENVIRONMENT", "CHANGE_REQUEST", "WEBHOOK", "API_KEY", "INBOUND_SOURCE", "AUDIT_LOG"];
const SUBMITTER_LABELS: Record<Submitter["type"], string> = {
  api_key: "API key",
  inbound_source: "Inbound source",
  operator: "Operator",
  person: "Person",
  flaghook: "flaghook",
};

type Catalog = { projects: { id: number; name: string | null }[]; environments: { id: number; name: string | null; projectId: number | null }[] };

/** The URL's filters as the API reads them; an empty field means "any". */
function filtersFrom(url: URL) {
  const raw: Record<string, string | string[]> = {};
  for (const key of FILTERS) {
    const values = url.searchParams.getAll(key).filter((v) => v !== "");
    if (values.length) raw[key] = key === "environment" ? values : values[0];
  }
  return { raw, parsed: AuditFiltersSchema.safeParse(raw) };
}

/** datetime-local inputs take "YYYY-MM-DDTHH:MM:SS" (read as UTC here). */
const forDateInput = (iso: string | undefined) => (iso ? iso.slice(0, 19) : "");

function FilterForm(props: { raw: Record<string, string | string[]>; filters: AuditFilters; size: number; catalog: Catalog }) {
  const { raw, filters, catalog } = props;
  const text = (key: string) => (typeof raw[key] === "string" ? (raw[key] as string) : "");
  const project = filters.project ?? (text("project") ? Number(text("project")) : undefined);
  const selectedEnvironments = new Set((filters.environment ?? []).map(Number));
  const projects = [...catalog.projects];
  if (project !== undefined && !Number.isNaN(project) && !projects.some((p) => p.id === project)) projects.push({ id: project, name: null });
  const environments = [...catalog.environments];
  for (const id of selectedEnvironments) if (!environments.some((e) => e.id === id)) environments.push({ id, name: null, projectId: null });
  const system = text("is_system_event");
  const submitterType = text("submitter_type");
  return (
    <form method="get" action="/ui/audit" class="card" aria-label="Filter the audit log">
      <div class="fields">
        <div class="wide">
          <label for="f-search">Text in the log message</label>
          <input id="f-search" type="search" name="search" value={text("search")} maxlength={256} placeholder="e.g. butter_bar" />
        </div>
        <div>
          <label for="f-project">Project</label>
          <select id="f-project" name="project">
            <option value="">Any project</option>
            {projects.map((p) => (
              <option value={String(p.id)} selected={p.id === project}>
                {p.name ? `${p.name} (${p.id})` : `Project ${p.id}`}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-type">Type (related object)</label>
          <input id="f-type" type="text" name="related_object_type" value={text("related_object_type")} list="known-types" placeholder="any type" />
          <datalist id="known-types">
            {KNOWN_TYPES.map((t) => (
              <option value={t} />
            ))}
          </datalist>
        </div>
        <fieldset class="span-narrow" id="f-environment">
          {/* Checkboxes rather than a multiple select: each one toggles on its own, no Ctrl-click. */}
          <legend class="small muted">Environments (none ticked: any)</legend>
          <div class="checks">
            {environments.length === 0 && <span class="muted small">None seen yet.</span>}
            {environments.map((e) => (
              <label class="check">
                <input type="checkbox" name="environment" value={String(e.id)} checked={selectedEnvironments.has(e.id)} />
                {e.name ? `${e.name} (${e.id})` : `Environment ${e.id}`}
              </label>
            ))}
          </div>
        </fieldset>
        <div class="span-narrow">
          <label for="f-author">Author (id or email)</label>
          <input id="f-author" type="text" name="author" value={text("author")} maxlength={320} placeholder="any author" />
        </div>
        <div>
          <label for="f-system">System events</label>
          <select id="f-system" name="is_system_event">
            <option value="">Included</option>
            <option value="true" selected={system === "true"}>
              Only system events
            </option>
            <option value="false" selected={system === "false"}>
              Left out
            </option>
          </select>
        </div>
        <div>
          <label for="f-submitter-type">Submitted by</label>
          <select id="f-submitter-type" name="submitter_type">
            <option value="">Anyone</option>
            {SUBMITTER_TYPES.map((t) => (
              <option value={t} selected={submitterType === t}>
                {SUBMITTER_LABELS[t]}
              </option>
            ))}
          </select>
        </div>
        <div class="span-narrow">
          <label for="f-submitter">Submitter id</label>
          <input id="f-submitter" type="text" name="submitter" value={text("submitter")} maxlength={320} placeholder="key_..., src_..." />
        </div>
        <div>
          <label for="f-size">Entries per page</label>
          <select id="f-size" name="page_size">
            {PAGE_SIZES.map((n) => (
              <option value={String(n)} selected={n === props.size}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <div class="span-narrow">
          <label for="f-since">From (UTC)</label>
          <input id="f-since" type="datetime-local" step="1" name="since" value={forDateInput(filters.since ?? text("since"))} />
        </div>
        <div class="span-narrow">
          <label for="f-until">Until (UTC)</label>
          <input id="f-until" type="datetime-local" step="1" name="until" value={forDateInput(filters.until ?? text("until"))} />
        </div>
      </div>
      <div class="actions">
        <button type="submit">Apply filters</button>
        <a class="button secondary" href="/ui/audit">
          Clear
        </a>
      </div>
    </form>
  );
}

/** "API key ci (key_...)", "flaghook", ...; null when the entry predates provenance. */
export function submitterText(submitter: Submitter | null): string | null {
  if (!submitter) return null;
  const label = SUBMITTER_LABELS[submitter.type] ?? submitter.type;
  if (submitter.type === "flaghook" || submitter.type === "operator") return label;
  return `${label} ${submitter.name ?? ""}${submitter.id ? ` (${submitter.id})` : ""}`.replace(/\s+/g, " ").trim();
}

function authorText(author: ReturnType<typeof auditResult>["author"]): string {
  if (!author) return "";
  const name = [author.first_name, author.last_name].filter(Boolean).join(" ");
  return name || author.email || (author.id !== null ? `#${author.id}` : "");
}

function AuditTable(props: { rows: AuditEntryRow[]; query: string; limits: TimeLimits }) {
  if (!props.rows.length) return <p class="card muted">No audit entries match these filters.</p>;
  return (
    <div class="scroll stacked card flush">
      <table class="stack audit">
        <thead>
          <tr>
            <th class="nowrap">Date (UTC)</th>
            <th>Change</th>
            <th>Author</th>
            <th>Project</th>
            <th>Environment</th>
            <th>Type</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => {
            const entry = auditResult(row, props.limits);
            return (
              <tr data-entry={String(entry.id)}>
                <td class="nowrap small">
                  <Time iso={entry.created_date} />
                  {entry.time_warning && (
                    <>
                      {" "}
                      <span class="badge wait" title={`received ${entry.received_at}`}>
                        {entry.time_warning === "ahead_of_receipt" ? "claimed future" : "backdated"}
                      </span>
                    </>
                  )}
                </td>
                <td class="wrap full">
                  <a href={`/ui/audit/${entry.id}${props.query}`}>{entry.log || "(no message)"}</a>
                  {entry.is_system_event && (
                    <>
                      {" "}
                      <span class="badge info">system</span>
                    </>
                  )}
                </td>
                <td class="wrap small" data-label="Author">
                  {authorText(entry.author) || <span class="muted">{row.apiKeyName ?? "—"}</span>}
                </td>
                <td class="small" data-label="Project">
                  {entry.project ? entry.project.name || entry.project.id : "—"}
                </td>
                <td class="small" data-label="Environment">
                  {entry.environment ? entry.environment.name || entry.environment.id : "—"}
                </td>
                <td class="small mono" data-label="Type">
                  {entry.related_object_type}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export const auditPages = new Hono<UiEnv>();

auditPages.get("/audit", async (c) => {
  const url = new URL(c.req.url);
  // Empty form fields mean "any": drop them so the URL holds only the filters in force.
  if ([...url.searchParams.values()].some((v) => v === "")) {
    const clean = new URLSearchParams([...url.searchParams].filter(([, v]) => v !== ""));
    return c.redirect(`/ui/audit${clean.size ? `?${clean}` : ""}`, 303);
  }
  const session = c.get("session");
  const db = database(c.env.DB);
  const catalog = { projects: await projectsOf(db, session.orgId), environments: await environmentsOf(db, session.orgId) };
  const { raw, parsed } = filtersFrom(url);
  const size = pageSize.safeParse(url.searchParams.get("page_size") ?? undefined);
  const limit = size.success ? size.data : 50;
  const cursor = url.searchParams.get("cursor");
  const form = <FilterForm raw={raw} filters={parsed.success ? parsed.data : {}} size={limit} catalog={catalog} />;
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "filters"}: ${i.message}`);
    return render(
      c,
      "Audit log",
      <>
        <h1>Audit log</h1>
        <Notice kind="bad">
          These filters cannot be used: {problems.join("; ")}
        </Notice>
        {form}
      </>,
      { status: 400, section: "audit" },
    );
  }
  const after = cursor ? decodeCursor<AuditCursor>(cursor, ["string", "number"]) : undefined;
  const { rows, next, archive } = await listEntries(await logStore(c.env, session.orgId), session.orgId, parsed.data, limit, after);
  const kept = new URLSearchParams([...url.searchParams].filter(([k]) => k !== "cursor"));
  const here = url.search;
  const nextQuery = new URLSearchParams(kept);
  if (next) nextQuery.set("cursor", encodeCursor(next));
  return render(
    c,
    "Audit log",
    <>
      <h1>Audit log</h1>
      {form}
      <p class="muted small" aria-live="polite">
        {rows.length === 1 ? "1 entry" : `${rows.length} entries`} on this page, newest first
        {cursor ? " (a later page)" : ""}.
      </p>
      {archive && (
        <Notice kind="info">
          Older entries on this page come from the archive ({archive.segments_read === 1 ? "1 segment" : `${archive.segments_read} segments`} read)
          {archive.partial ? ". The page stopped at its limit of archive reads: it may be short; older entries continue on the next page." : "."}
        </Notice>
      )}
      <AuditTable rows={rows} query={here} limits={config(c.env).auditTimeLimits} />
      <nav class="pager" aria-label="Pages">
        {cursor ? (
          <a class="button secondary" href={`/ui/audit${kept.size ? `?${kept}` : ""}`}>
            ← Newest entries
          </a>
        ) : (
          <span />
        )}
        {next && (
          <a class="button secondary" rel="next" href={`/ui/audit?${nextQuery}`}>
            Older entries →
          </a>
        )}
      </nav>
    </>,
    { section: "audit" },
  );
});

/** An entry recorded before per-organisation numbers, by its old global id: on to its page now. */
auditPages.get("/audit/legacy/:id{[0-9]+}", async (c) => {
  const id = Number(c.req.param("id"));
  const seq = Number.isSafeInteger(id) ? await seqOfLegacyId(await logDatabase(c.env, c.get("session").orgId), c.get("session").orgId, id) : undefined;
  if (seq === undefined) throw notFound("audit entry");
  return c.redirect(`/ui/audit/${seq}`, 303);
});

auditPages.get("/audit/:id{[0-9]+}", async (c) => {
  const session = c.get("session");
  const seq = Number(c.req.param("id"));
  const found = Number.isSafeInteger(seq) ? await findEntry(await logStore(c.env, session.orgId), session.orgId, seq) : undefined;
  if (!found) throw notFound("audit entry");
  if (found.removed) throw removedEntry(seq);
  const row = found.row;
  const entry = auditResult(row, config(c.env).auditTimeLimits);
  const event = JSON.parse(row.event) as ChangeEvent;
  const changes = changeDetails(event);
  const back = `/ui/audit${new URL(c.req.url).search}`;
  const author = entry.author;
  return render(
    c,
    `Audit entry ${entry.id}`,
    <>
      <p class="small">
        <a href={back}>← Back to the audit log</a>
      </p>
      <h1>{entry.log || "(no message)"}</h1>
      {found.archived && <Notice kind="info">This entry was read from the archive in R2.</Notice>}
      <div class="card">
        <dl class="facts">
          <dt>When</dt>
          <dd>
            <Time iso={entry.created_date} />
            {entry.time_warning && (
              <>
                {" "}
                <span class="badge wait">
                  {entry.time_warning === "ahead_of_receipt" ? "claimed time is ahead of receipt" : "claimed time is long before receipt"}
                </span>
              </>
            )}
          </dd>
          <dt>Received</dt>
          <dd>
            <Time iso={entry.received_at} />
          </dd>
          <dt>Submitted by</dt>
          <dd data-submitter={entry.submitter?.type ?? ""}>
            {submitterText(entry.submitter) ?? <span class="muted">not recorded (entry predates provenance)</span>}
          </dd>
          <dt>Change</dt>
          <dd>
            <span class="badge info">{changeType(event)}</span> <span class="mono">{event.type}</span>
          </dd>
          <dt>Author</dt>
          <dd>
            {author ? (
              <>
                {authorText(author)}
                {author.email && authorText(author) !== author.email && <span class="muted"> &lt;{author.email}&gt;</span>}
                {author.id !== null && <span class="muted"> (id {author.id})</span>}
              </>
            ) : entry.is_system_event ? (
              <span class="badge info">system event</span>
            ) : (
              <span class="muted">none</span>
            )}
          </dd>
          {row.apiKeyName && (
            <>
              <dt>API key name (as claimed)</dt>
              <dd>{row.apiKeyName}</dd>
            </>
          )}
          <dt>Project</dt>
          <dd>{entry.project ? `${entry.project.name || "(unnamed)"} (${entry.project.id})` : "—"}</dd>
          <dt>Environment</dt>
          <dd>{entry.environment ? `${entry.environment.name || "(unnamed)"} (${entry.environment.id})` : "—"}</dd>
          <dt>Related object</dt>
          <dd class="mono">
            {entry.related_object_type}
            {entry.related_object_id !== null && ` #${entry.related_object_id}`}
            {entry.related_object_uuid && ` ${entry.related_object_uuid}`}
          </dd>
          <dt>Entry / event</dt>
          <dd class="mono">
            {entry.seq} / {entry.event_id}
            {entry.legacy_id !== null && <span class="muted"> (formerly {entry.legacy_id})</span>}
          </dd>
          {event.feature && entry.environment && (
            <>
              <dt>Flag history</dt>
              <dd>
                <a href={`/ui/environments/${entry.environment.id}/features/${event.feature.id}/timeline`}>Timeline of {event.feature.name}</a>
                {" · "}
                <a href={`/ui/environments/${entry.environment.id}/state?at=${encodeURIComponent(entry.created_date)}`}>State at this moment</a>
              </dd>
            </>
          )}
        </dl>
      </div>
      <h2>What changed</h2>
      {changes.length ? (
        <div class="scroll card flush">
          <table class="diff" aria-label="Change details">
            <thead>
              <tr>
                <th>Field</th>
                <th>Old</th>
                <th class="arrow" aria-hidden="true"></th>
                <th>New</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((d) => (
                <tr data-field={d.field}>
                  <td class="mono">{d.field}</td>
                  <td class="old mono break">{showValue(d.old)}</td>
                  <td class="arrow">→</td>
                  <td class="new mono break">{showValue(d.new)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="card muted">This entry records no flag-state change (no previous or new state that differ).</p>
      )}
      <details class="card">
        <summary>The event as it was received</summary>
        <pre>{JSON.stringify(event, null, 2)}</pre>
      </details>
    </>,
    { section: "audit" },
  );
});
