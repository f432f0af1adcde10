// The audit log API (SPEC 6): filters, newest-first keyset pages, trailing slashes, exports, details.
import { beforeAll, describe, expect, it } from "vitest";
import { call, countRows, createOrganisation, eventually, recorded } from "./helpers";

type Auth = Record<string, string>;
type Entry = { id: number; seq: number; event_id: string; created_date: string; received_at: string; log: string } & Record<string, unknown>;

const kyle = { id: 3, email: "Kyle@Example.com", first_name: "Kyle", last_name: "Johnson" };
const ann = { id: 4, email: "ann@example.com", first_name: "Ann", last_name: "Lee" };
const bob = { id: 5, email: "bob@example.com", first_name: "Bob", last_name: "Stone" };
const alpha = { id: 1, name: "Alpha" };
const beta = { id: 2, name: "Beta" };
const on = { enabled: true, feature_state_value: null };

/** Org A's log, oldest first. Feature names put `_` and `%` into logs for the search tests. */
const fixture = {
  e1: { type: "FEATURE_CREATED", occurred_at: "2021-01-01T00:00:00.000001Z", author: kyle, project: alpha, feature: { id: 100, name: "butter_bar" } },
  e2: {
    type: "FLAG_STATE_UPDATED",
    occurred_at: "2021-01-02T00:00:00Z",
    author: kyle,
    project: alpha,
    environment: { id: 10, name: "Dev" },
    feature: { id: 100, name: "butter_bar" },
    new_state: on,
  },
  e3: {
    type: "FLAG_STATE_UPDATED",
    occurred_at: "2021-01-03T00:00:00Z",
    author: ann,
    project: alpha,
    environment: { id: 11, name: "Prod" },
    feature: { id: 101, name: "rollout_100%" },
    new_state: on,
  },
  e4: {
    type: "REMOTE_CONFIG_UPDATED",
    occurred_at: "2021-01-04T00:00:00Z",
    author: null,
    api_key_name: "ci-key",
    project: alpha,
    environment: { id: 12, name: "Staging" },
    feature: { id: 102, name: "rolloutX100" },
    new_state: on,
  },
  e5: { type: "SEGMENT_CREATED", occurred_at: "2021-01-05T00:00:00Z", author: null, project: beta, segment: { id: 7, name: "BUTTER lovers" } },
  e6: {
    type: "ENVIRONMENT_UPDATED",
    occurred_at: "2021-01-06T00:00:00Z",
    author: { email: "ANN@example.com" },
    project: beta,
    environment: { id: 20, name: "QA" },
  },
  // e7 and e8 share a created_date: the id breaks the tie.
  e7: {
    type: "CUSTOM",
    occurred_at: "2021-01-07T00:00:00Z",
    author: bob,
    project: beta,
    log: '=HYPERLINK("http://evil.example","x")',
    related_object: { type: "CHANGE_REQUEST", id: 5 },
  },
  e8: {
    type: "CUSTOM",
    occurred_at: "2021-01-07T00:00:00Z",
    author: bob,
    project: beta,
    log: 'Approved, "as is"\nby Bob',
    related_object: { type: "CHANGE_REQUEST", id: 6, uuid: "cr-6" },
  },
};
type Name = keyof typeof fixture;

let A: { auth: Auth; orgId: number; keyId: string };
let B: { auth: Auth; orgId: number; keyId: string };
/** Audit entry ids of org A: each fixture event, and `key` for the key's creation (a system event, now). */
const id = {} as Record<Name | "key", number>;
const ids = (...names: (Name | "key")[]) => names.map((n) => id[n]);
/** All of org A's entry ids, newest first; e7 and e8 share a created_date, so the higher id leads. */
let newestFirst: number[];

beforeAll(async () => {
  A = await createOrganisation("A");
  B = await createOrganisation("B");
  const names = Object.keys(fixture) as Name[];
  const eventIds = await ingestBatch(A.auth, Object.values(fixture));
  const statuses = await Promise.all(eventIds.map((e) => recorded(A.auth, e)));
  names.forEach((n, i) => (id[n] = statuses[i].audit_entry_id));
  id.key = await systemEntryId(A);
  // Org B's entry matches almost every filter used below; it must never show up in A's answers.
  await recorded(B.auth, (await ingestBatch(B.auth, [fixture.e2]))[0]);
  await systemEntryId(B);
  const [tieNewer, tieOlder] = [id.e7, id.e8].sort((a, b) => b - a);
  newestFirst = [id.key, tieNewer, tieOlder, ...ids("e6", "e5", "e4", "e3", "e2", "e1")];
}, 30_000);

async function ingestBatch(auth: Auth, events: unknown[]): Promise<string[]> {
  const res = await call("/api/v1/events/batch", { method: "POST", headers: auth, json: { events } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { results: { event_id: string }[] }).results.map((r) => r.event_id);
}

/** Waits for the "API key created" system entry that createOrganisation's key left behind. */
async function systemEntryId(org: { auth: Auth; orgId: number }): Promise<number> {
  await eventually(async () => (await countRows("audit_entries", "org_id = ? and related_object_type = 'API_KEY'", org.orgId)) === 1);
  const page = await list(org.auth, "related_object_type=API_KEY");
  return page.results[0].id;
}

async function list(auth: Auth, query = "") {
  const res = await call(`/api/v1/audit/?${query}`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as { results: Entry[]; next: string | null };
}

/** The ids of A's entries matching `query`, after checking they fit on one page. */
async function matching(query: string): Promise<number[]> {
  const page = await list(A.auth, `${query}&page_size=200`);
  expect(page.next).toBeNull();
  return page.results.map((r) => r.id);
}

describe("GET /api/v1/audit/", () => {
  it("lists the organisation's entries newest first, by created_date (never later than receipt) then seq", async () => {
    expect(await matching("")).toEqual(newestFirst);
  });

  it("answers each entry in the audit-log-webhook data shape, with its event id", async () => {
    const page = await list(A.auth, "author=3&page_size=1");
    expect(page.results).toEqual([
      {
        id: id.e2,
        seq: id.e2,
        legacy_id: null,
        event_id: expect.stringMatching(/^evt_/),
        // As Flagsmith's AuditLogListSerializer writes them: a zero fraction left out, the environment's project by id.
        created_date: "2021-01-02T00:00:00Z",
        received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        // Years before receipt: kept as claimed, and marked.
        time_warning: "behind_receipt",
        submitter: { type: "api_key", id: A.keyId, name: "ci" },
        log: "Flag state updated for feature: butter_bar",
        author: { id: 3, email: "Kyle@Example.com", first_name: "Kyle", last_name: "Johnson" },
        environment: { id: 10, name: "Dev", project: 1 },
        project: { id: 1, name: "Alpha", organisation: A.orgId },
        related_object_id: 100,
        related_object_type: "FEATURE_STATE",
        related_object_uuid: null,
        is_system_event: false,
      },
    ]);
  });

  const filters: [string, (Name | "key")[]][] = [
    ["project=1", ["e4", "e3", "e2", "e1"]],
    ["project=2", ["e8", "e7", "e6", "e5"]],
    ["project=3", []],
    ["environment=10", ["e2"]],
    ["environment=10&environment=11", ["e3", "e2"]],
    ["environment=20&environment=11&environment=99", ["e6", "e3"]],
    ["search=butter", ["e5", "e2", "e1"]],
    ["search=BUTTER_BAR", ["e2", "e1"]],
    ["search=100", ["e4", "e3"]],
    ["search=100%25", ["e3"]], // a literal %, not a wildcard
    ["search=t_1", ["e3"]], // a literal _, which would otherwise match rolloutX100
    ["search=%25", ["e3"]],
    ["search=_", ["e3", "e2", "e1"]],
    ["search=nothing%20like%20this", []],
    ["related_object_type=FEATURE", ["e1"]],
    ["related_object_type=FEATURE_STATE", ["e4", "e3", "e2"]],
    ["related_object_type=SEGMENT", ["e5"]],
    ["related_object_type=ENVIRONMENT", ["e6"]],
    ["related_object_type=CHANGE_REQUEST", ["e8", "e7"]],
    ["related_object_type=API_KEY", ["key"]],
    ["author=3", ["e2", "e1"]],
    ["author=4", ["e3"]],
    ["author=kyle@example.com", ["e2", "e1"]],
    ["author=KYLE@EXAMPLE.COM", ["e2", "e1"]],
    ["author=ann@example.com", ["e6", "e3"]],
    ["author=nobody@example.com", []],
    // Only flaghook writes system events: e4 and e5 (no author) came from an API key.
    ["is_system_event=true", ["key"]],
    ["is_system_event=false", ["e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1"]],
    ["since=2021-01-06T00:00:00Z", ["key", "e8", "e7", "e6"]],
    ["since=2021-01-03T01:00:00%2B01:00", ["key", "e8", "e7", "e6", "e5", "e4", "e3"]], // +01:00, so midnight UTC, inclusive
    ["until=2021-01-03T00:00:00Z", ["e3", "e2", "e1"]],
    ["until=2021-01-01T00:00:00Z", []], // e1 is a microsecond later
    ["since=2021-01-02T00:00:00Z&until=2021-01-04T00:00:00Z", ["e4", "e3", "e2"]],
    ["project=1&author=3", ["e2", "e1"]],
    ["search=butter&is_system_event=false", ["e5", "e2", "e1"]],
    ["environment=10&environment=12&related_object_type=FEATURE_STATE", ["e4", "e2"]],
    ["project=2&author=5&since=2021-01-07T00:00:00Z", ["e8", "e7"]],
    ["project=1&related_object_type=SEGMENT", []],
  ];

  it.each(filters)("?%s answers exactly the matching entries", async (query, expected) => {
    const wanted = new Set(ids(...expected));
    expect(await matching(query)).toEqual(newestFirst.filter((i) => wanted.has(i)));
  });

  it("answers with and without a trailing slash", async () => {
    for (const path of ["/api/v1/audit", "/api/v1/audit/", "/api/v1/audit?project=1", "/api/v1/audit/?project=1"]) {
      const res = await call(path, { headers: A.auth });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: Entry[] };
      expect(results.map((r) => r.id)).toEqual(path.includes("project") ? ids("e4", "e3", "e2", "e1") : newestFirst);
    }
  });
});

describe("keyset pagination", () => {
  it("pages with page_size and a cursor, then answers next: null", async () => {
    const seen: number[][] = [];
    let query = "page_size=3";
    for (;;) {
      const page = await list(A.auth, query);
      seen.push(page.results.map((r) => r.id));
      if (!page.next) break;
      query = `page_size=3&cursor=${page.next}`;
    }
    expect(seen).toEqual([newestFirst.slice(0, 3), newestFirst.slice(3, 6), newestFirst.slice(6, 9)]);
  });

  it("keeps the filters across pages", async () => {
    const first = await list(A.auth, "project=1&page_size=3");
    expect(first.results.map((r) => r.id)).toEqual(ids("e4", "e3", "e2"));
    const second = await list(A.auth, `project=1&page_size=3&cursor=${first.next}`);
    expect(second).toEqual({ results: [expect.objectContaining({ id: id.e1 })], next: null });
  });

  it("never skips or repeats an entry while new entries are ingested between page fetches", async () => {
    const org = await createOrganisation("Paging");
    await systemEntryId(org);
    // Five entries share one created_date, so page boundaries fall inside the tie.
    const tie = "2021-03-01T12:00:00.000000Z";
    const events = [
      ...Array.from({ length: 5 }, (_, i) => ({ type: "CUSTOM", occurred_at: tie, log: `tied ${i}`, related_object: { type: "NOTE" } })),
      { type: "CUSTOM", occurred_at: "2021-02-01T00:00:00Z", log: "older", related_object: { type: "NOTE" } },
      { type: "CUSTOM", occurred_at: "2021-04-01T00:00:00Z", log: "newer", related_object: { type: "NOTE" } },
    ];
    for (const e of await ingestBatch(org.auth, events)) await recorded(org.auth, e);
    const before = (await list(org.auth, "page_size=200")).results.map((r) => r.id);
    expect(before).toHaveLength(8);

    const ingestOne = async (event: object) => {
      const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
      expect(res.status).toBe(202);
      return (await recorded(org.auth, ((await res.json()) as { event_id: string }).event_id)).audit_entry_id;
    };
    const collected: number[] = [];
    let backdated = 0;
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await list(org.auth, `page_size=2${cursor ? `&cursor=${cursor}` : ""}`);
      collected.push(...page.results.map((r) => r.id));
      cursor = page.next;
      pages += 1;
      // Between fetches: an entry newer than everything (lands before the cursor), and once an
      // entry older than everything (lands after it, so the walk must still reach it).
      await ingestOne({ type: "CUSTOM", log: `arrived after page ${pages}`, related_object: { type: "NOTE" } });
      if (pages === 2) {
        backdated = await ingestOne({ type: "CUSTOM", occurred_at: "2020-01-01T00:00:00Z", log: "backdated", related_object: { type: "NOTE" } });
      }
    } while (cursor);

    expect(collected).toEqual([...before, backdated]);
    expect(new Set(collected).size).toBe(collected.length);
  });
});

const CSV_HEADER =
  "id,legacy_id,created_date,received_at,time_warning,log,author_id,author_email,project_id,project_name,environment_id,environment_name," +
  "related_object_type,related_object_id,related_object_uuid,is_system_event,submitter_type,submitter_id,submitter_name,event_id\r\n";

describe("GET /api/v1/audit/export", () => {
  it("streams the filtered entries as NDJSON, one list result and its leaf per line, newest first", async () => {
    const res = await call("/api/v1/audit/export?format=ndjson&project=1", { headers: A.auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="flaghook-audit.ndjson"');
    const text = await res.text();
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.trimEnd().split("\n").map((line) => JSON.parse(line) as Entry & { leaf: string });
    expect(lines.map(({ leaf: _, ...entry }) => entry)).toEqual((await list(A.auth, "project=1")).results);
    expect(lines.map((l) => l.id)).toEqual(ids("e4", "e3", "e2", "e1"));
    for (const line of lines) expect(JSON.parse(line.leaf)).toMatchObject({ seq: line.seq, event_id: line.event_id, log: line.log });
  });

  it("defaults to NDJSON and answers with and without a trailing slash", async () => {
    for (const path of ["/api/v1/audit/export?author=4", "/api/v1/audit/export/?author=4"]) {
      const res = await call(path, { headers: A.auth });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-ndjson");
      expect((await res.text()).trimEnd().split("\n").map((l) => (JSON.parse(l) as Entry).id)).toEqual([id.e3]);
    }
  });

  it("streams CSV with a header row, RFC 4180 quoting and a guard against spreadsheet formulas", async () => {
    const res = await call("/api/v1/audit/export?format=csv&related_object_type=CHANGE_REQUEST", { headers: A.auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="flaghook-audit.csv"');
    const entries = (await list(A.auth, "related_object_type=CHANGE_REQUEST")).results;
    const eventId = (i: number) => entries.find((e) => e.id === i)!.event_id;
    const received = (i: number) => entries.find((e) => e.id === i)!.received_at;
    const submitter = `api_key,${A.keyId},ci`;
    const row: Record<"e7" | "e8", string> = {
      e7: `${id.e7},,2021-01-07T00:00:00.000000Z,${received(id.e7)},behind_receipt,"'=HYPERLINK(""http://evil.example"",""x"")",5,bob@example.com,2,Beta,,,CHANGE_REQUEST,5,,false,${submitter},${eventId(id.e7)}\r\n`,
      e8: `${id.e8},,2021-01-07T00:00:00.000000Z,${received(id.e8)},behind_receipt,"Approved, ""as is""\nby Bob",5,bob@example.com,2,Beta,,,CHANGE_REQUEST,6,cr-6,false,${submitter},${eventId(id.e8)}\r\n`,
    };
    expect(await res.text()).toBe(
      CSV_HEADER + (id.e8 > id.e7 ? row.e8 + row.e7 : row.e7 + row.e8),
    );
  });

  it("answers only the header row, or nothing, when no entry matches", async () => {
    const csv = await call("/api/v1/audit/export?format=csv&project=3", { headers: A.auth });
    expect(await csv.text()).toBe(CSV_HEADER);
    const ndjson = await call("/api/v1/audit/export?format=ndjson&project=3", { headers: A.auth });
    expect(await ndjson.text()).toBe("");
  });

  it("exports every entry exactly once when the log is longer than one internal page", async () => {
    const org = await createOrganisation("Big");
    const total = 620;
    for (let start = 0; start < total; start += 100) {
      const events = Array.from({ length: Math.min(100, total - start) }, (_, i) => ({
        type: "CUSTOM",
        // Pairs of entries share a created_date, so ties cross the internal page boundary too.
        occurred_at: new Date(Date.UTC(2021, 0, 1) + Math.floor((start + i) / 2) * 1000).toISOString(),
        log: `entry ${start + i}`,
        related_object: { type: "NOTE" },
      }));
      await ingestBatch(org.auth, events);
    }
    await eventually(async () => (await countRows("audit_entries", "org_id = ? and type = 'CUSTOM'", org.orgId)) === total + 1, 60_000);
    const res = await call("/api/v1/audit/export?format=ndjson&related_object_type=NOTE", { headers: org.auth });
    const lines = (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l) as Entry);
    expect(lines).toHaveLength(total);
    expect(new Set(lines.map((l) => l.log)).size).toBe(total);
    const keys = lines.map((l) => [l.created_date, l.id] as const);
    expect(keys).toEqual([...keys].sort((a, b) => (a[0] === b[0] ? b[1] - a[1] : a[0] < b[0] ? 1 : -1)));
  }, 90_000);
});

describe("GET /api/v1/audit/{id}/", () => {
  it("adds change_type, change_details and api_key_name to the entry", async () => {
    const res = await call(`/api/v1/audit/${id.e4}/`, { headers: A.auth });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      id: id.e4,
      seq: id.e4,
      legacy_id: null,
      event_id: expect.stringMatching(/^evt_/),
      created_date: "2021-01-04T00:00:00Z",
      received_at: expect.any(String),
      time_warning: "behind_receipt",
      // The body's api_key_name is what the source claims; the submitter is the key that sent it.
      submitter: { type: "api_key", id: A.keyId, name: "ci" },
      log: "Remote config value updated for feature: rolloutX100",
      author: null,
      environment: { id: 12, name: "Staging", project: 1 },
      project: { id: 1, name: "Alpha", organisation: A.orgId },
      related_object_id: 102,
      related_object_type: "FEATURE_STATE",
      related_object_uuid: null,
      is_system_event: false,
      change_type: "UPDATE",
      change_details: [{ field: "enabled", old: null, new: true }],
      api_key_name: "ci-key",
    });
  });

  const feature = { id: 100, name: "butter_bar" };
  const scope = { project: alpha, environment: { id: 10, name: "Dev" }, feature };
  const details = [
    { name: "a created feature", changeType: "CREATE", changeDetails: [], event: { type: "FEATURE_CREATED", project: alpha, feature } },
    {
      name: "a flag toggled on, value unchanged",
      changeType: "UPDATE",
      changeDetails: [{ field: "enabled", old: false, new: true }],
      event: { type: "FLAG_STATE_UPDATED", ...scope, previous_state: { enabled: false, feature_state_value: "a" }, new_state: { enabled: true, feature_state_value: "a" } },
    },
    {
      name: "a remote config value changed from a string to a number",
      changeType: "UPDATE",
      changeDetails: [{ field: "feature_state_value", old: "42", new: 42 }],
      event: { type: "REMOTE_CONFIG_UPDATED", ...scope, previous_state: { enabled: true, feature_state_value: "42" }, new_state: { enabled: true, feature_state_value: 42 } },
    },
    {
      name: "a deleted identity override",
      changeType: "DELETE",
      changeDetails: [
        { field: "enabled", old: true, new: null },
        { field: "feature_state_value", old: "x", new: null },
      ],
      event: { type: "IDENTITY_OVERRIDE_DELETED", ...scope, identity: { identifier: "u1" }, previous_state: { enabled: true, feature_state_value: "x" } },
    },
    { name: "a deleted segment", changeType: "DELETE", changeDetails: [], event: { type: "SEGMENT_DELETED", project: alpha, segment: { id: 7, name: "s" } } },
    { name: "a custom event", changeType: "UPDATE", changeDetails: [], event: { type: "CUSTOM", log: "note", related_object: { type: "NOTE" } } },
  ];

  it.each(details)("$name has change_type $changeType and what changed", async ({ event, changeType, changeDetails }) => {
    const [eventId] = await ingestBatch(B.auth, [event]);
    const { audit_entry_id } = await recorded(B.auth, eventId);
    const res = await call(`/api/v1/audit/${audit_entry_id}`, { headers: B.auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Entry;
    expect(body.change_type).toBe(changeType);
    expect(body.change_details).toEqual(changeDetails);
  });

  it("answers 404 for a number the organisation's log does not have", async () => {
    const res = await call("/api/v1/audit/999999999/", { headers: B.auth });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message: "audit entry not found", details: [] } });
  });

  it("numbers each organisation's entries 1, 2, 3 ...: the same number in another organisation is that organisation's own entry", async () => {
    const fresh = await createOrganisation("Fresh");
    const [eventId] = await ingestBatch(fresh.auth, [fixture.e1]);
    // Its first entry is the "API key created" system event; the first event it sends is 2.
    expect((await recorded(fresh.auth, eventId)).audit_entry_id).toBe(2);
    const mine = (await (await call("/api/v1/audit/2", { headers: fresh.auth })).json()) as Entry;
    expect(mine.event_id).toBe(eventId);
    const first = (await (await call("/api/v1/audit/1", { headers: fresh.auth })).json()) as Entry;
    expect([first.seq, first.log, first.is_system_event]).toEqual([1, "API key created: ci", true]);
    const theirs = (await (await call("/api/v1/audit/2", { headers: A.auth })).json()) as Entry;
    expect(theirs.event_id).not.toBe(eventId);
  });
});

describe("search beyond ASCII", () => {
  it("folds case for every letter, not only A-Z", async () => {
    const { auth } = await createOrganisation();
    const id = (await (
      await call("/api/v1/events", { method: "POST", headers: auth, json: { type: "CUSTOM", log: "Über-Flag für ÉTÉ aktiviert", related_object: { type: "NOTE" } } })
    ).json()) as { event_id: string };
    await recorded(auth, id.event_id);
    for (const term of ["über", "ÜBER", "été", "FÜR"]) {
      const page = (await (await call(`/api/v1/audit/?search=${encodeURIComponent(term)}`, { headers: auth })).json()) as { results: Entry[] };
      expect([term, page.results.map((e) => e.event_id)]).toEqual([term, [id.event_id]]);
    }
  });
});
