// Text search through the FTS5 trigram index (src/db/audit-search.ts): the same answers as a
// substring scan, in the list's order, page by page, for entries that arrive out of time order too;
// the index is what answers searches of 3 characters or more; and the migration indexes the entries
// stored before it.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createOrganisation, recorded } from "./helpers";

type Auth = Record<string, string>;
type Entry = { id: number; seq: number; log: string; created_date: string };

/**
 * Arrival order. A day of January 2021 is the claimed time (long before receipt, so it is the sort
 * time: these arrive after later-sorting entries, backdated); null sorts at receipt (in order). A
 * walk down the seq order must get both right.
 */
const arrivals: [day: number | null, log: string, project?: number][] = [
  [10, "Needle in the Haystack", 1],
  [null, "haystack only"],
  [12, "second NEEDLE here", 2],
  [null, "needle, in order", 1],
  [5, "needle, backdated", 1],
  [5, "needle, backdated twin"],
  [null, "Über-Flag für needle été", 1],
  [1, 'a "quoted" needle', 2],
  [null, "nothing to see"],
  [15, "needle again", 1],
  [null, "needle at the time of receipt", 1],
  [2, "needle at the start of time", 1],
  [null, "a needle\nover two lines"],
  [14, "ne edle (not a match)"],
];

let org: { auth: Auth; orgId: number };
const seqs: number[] = [];

beforeAll(async () => {
  org = await createOrganisation("Search");
  for (const [day, log, project] of arrivals) {
    const res = await call("/api/v1/events", {
      method: "POST",
      headers: org.auth,
      json: {
        type: "CUSTOM",
        log,
        ...(day === null ? {} : { occurred_at: `2021-01-${String(day).padStart(2, "0")}T00:00:00Z` }),
        related_object: { type: "NOTE" },
        ...(project ? { project: { id: project, name: `P${project}` } } : {}),
      },
    });
    // One at a time, so arrival order is seq order.
    seqs.push((await recorded(org.auth, ((await res.json()) as { event_id: string }).event_id)).audit_entry_id);
  }
}, 60_000);

async function pages(query: string, pageSize: number): Promise<Entry[]> {
  const all: Entry[] = [];
  let cursor: string | null = null;
  do {
    const res = await call(`/api/v1/audit/?${query}&page_size=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { headers: org.auth });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { results: Entry[]; next: string | null };
    all.push(...page.results);
    cursor = page.next;
  } while (cursor);
  return all;
}

describe("search through the index", () => {
  it("stores each entry's watermark: the latest sort time up to it in seq order, only when later than its own", async () => {
    const rows = (
      await env.DB.prepare("select seq, sort_time, sort_wm from audit_entries where org_id = ? and seq >= ? order by seq").bind(org.orgId, 1).all<{
        seq: number;
        sort_time: string;
        sort_wm: string | null;
      }>()
    ).results;
    let latest = "";
    const expected = rows.map((r) => {
      latest = r.sort_time > latest ? r.sort_time : latest;
      return { seq: r.seq, sort_wm: latest > r.sort_time ? latest : null };
    });
    expect(rows.map((r) => ({ seq: r.seq, sort_wm: r.sort_wm }))).toEqual(expected);
    // Both kinds are there.
    expect([rows.filter((r) => r.sort_wm !== null).length, rows.filter((r) => r.sort_wm === null).length]).toEqual([8, 7]);
  });

  it.each([
    ["needle", 1],
    ["needle", 2],
    ["needle", 50],
    ["NEEDLE", 3],
    ["haystack", 1],
    ["été", 1],
    ['"quoted"', 1],
    ["needle\nover", 1],
    ["le, backdated", 1],
    ["no such text anywhere", 1],
  ])("%j, %d a page: the entries whose log contains it, newest first, as the unfiltered list orders them", async (term, pageSize) => {
    const everything = await pages("", 200);
    const expected = everything.filter((e) => e.log.toLowerCase().includes(term.toLowerCase())).map((e) => e.seq);
    const found = await pages(`search=${encodeURIComponent(term)}`, pageSize);
    expect(found.map((e) => e.seq)).toEqual(expected);
    if (term === "needle") expect(expected.length).toBe(11);
  });

  it.each(['le" OR "hay', "NEAR(needle haystack)", "log : needle", "needl*", "^needle", "needle AND hay", "-needle", "(needle)", "a\\b", "nul \u0000 in it", "'; drop table audit_search; --"])(
    "FTS5 query syntax in a search, %j, is only text: 200, the same answer as a substring scan",
    async (term) => {
      const everything = await pages("", 200);
      const expected = everything.filter((e) => e.log.toLowerCase().includes(term.toLowerCase())).map((e) => e.seq);
      expect((await pages(`search=${encodeURIComponent(term)}`, 2)).map((e) => e.seq)).toEqual(expected);
    },
  );

  it("combines with the other filters and with since / until", async () => {
    const everything = await pages("", 200);
    const inProject1 = everything.filter((e) => e.log.toLowerCase().includes("needle") && [0, 3, 4, 6, 9, 10, 11].map((i) => seqs[i]).includes(e.seq));
    expect((await pages("search=needle&project=1", 1)).map((e) => e.seq)).toEqual(inProject1.map((e) => e.seq));
    const window = everything.filter((e) => e.log.toLowerCase().includes("needle") && e.created_date >= "2021-01-05" && e.created_date <= "2021-01-15T00:00:00Z");
    expect((await pages("search=needle&since=2021-01-05T00:00:00Z&until=2021-01-15T00:00:00Z", 2)).map((e) => e.seq)).toEqual(window.map((e) => e.seq));
  });

  it("answers searches of 3 characters or more from the index, shorter ones by scanning", async () => {
    const target = seqs[2]; // "second NEEDLE here"
    const findsTarget = async (term: string) => (await pages(`search=${encodeURIComponent(term)}`, 200)).some((e) => e.seq === target);
    expect([await findsTarget("needle"), await findsTarget("nd "), await findsTarget("nd")]).toEqual([true, true, true]);
    // Take the entry out of the index only: the indexed search no longer finds it, the scan still does.
    const row = await env.DB.prepare("select search_text from audit_entries where org_id = ? and seq = ?").bind(org.orgId, target).first<{ search_text: string }>();
    await env.DB.prepare("delete from audit_search where rowid = (? << 32) | ?").bind(org.orgId, target).run();
    try {
      expect([await findsTarget("needle"), await findsTarget("nd "), await findsTarget("nd")]).toEqual([false, false, true]);
    } finally {
      await env.DB.prepare("insert into audit_search (rowid, log, backdated) values ((? << 32) | ?, ?, '')").bind(org.orgId, target, row!.search_text).run();
    }
    expect(await findsTarget("needle")).toBe(true);
  });

  it("never answers another organisation's entries", async () => {
    const other = await createOrganisation("Other");
    const res = await call("/api/v1/events", {
      method: "POST",
      headers: other.auth,
      json: { type: "CUSTOM", log: "needle of the other organisation", related_object: { type: "NOTE" } },
    });
    await recorded(other.auth, ((await res.json()) as { event_id: string }).event_id);
    expect((await pages("search=needle", 3)).map((e) => e.log)).not.toContain("needle of the other organisation");
    expect((await pages("search=needle", 3)).length).toBe(11);
    const theirs = await call("/api/v1/audit/?search=needle", { headers: other.auth });
    expect(((await theirs.json()) as { results: Entry[] }).results.map((e) => e.log)).toEqual(["needle of the other organisation"]);
  });

  it("drops an entry from the index when the entry is deleted", async () => {
    const { auth, orgId } = await createOrganisation("Deleting");
    const res = await call("/api/v1/events", { method: "POST", headers: auth, json: { type: "CUSTOM", log: "short-lived needle", related_object: { type: "NOTE" } } });
    const seq = (await recorded(auth, ((await res.json()) as { event_id: string }).event_id)).audit_entry_id;
    const inIndex = async () =>
      (await env.DB.prepare("select count(*) as n from audit_search where audit_search match '\"short-lived\"' and rowid = (? << 32) | ?").bind(orgId, seq).first<{ n: number }>())!.n;
    expect(await inIndex()).toBe(1);
    await env.DB.prepare("delete from audit_entries where org_id = ? and seq = ?").bind(orgId, seq).run();
    expect(await inIndex()).toBe(0);
  });
});

describe("migration issue16_audit_search", () => {
  it("indexes the entries stored before it and fills their watermarks", async () => {
    const db = env.MIGRATION_DB;
    await db.exec("drop table if exists d1_migrations");
    for (const { name } of (await db.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '_cf_%'").all<{ name: string }>()).results) {
      if (!name.startsWith("audit_search_")) await db.exec(`drop table if exists "${name}"`);
    }
    await applyD1Migrations(db, env.TEST_MIGRATIONS.filter((m) => m.name < "0015"));
    const insert = (org: number, seq: number, sortTime: string, log: string) =>
      db
        .prepare(
          `insert into audit_entries (org_id, seq, event_id, type, created_date, log, search_text, related_object_type, is_system_event, event, received_at, sort_time, recorded_at)
           values (?, ?, ?, 'CUSTOM', ?, ?, lower(?), 'NOTE', 0, '{}', 0, ?, 0)`,
        )
        .bind(org, seq, `evt_${org}_${seq}`, sortTime, log, log, sortTime);
    await db.batch([
      insert(1, 1, "2021-01-02T00:00:00.000000Z", "Old Needle"),
      insert(1, 2, "2021-01-01T00:00:00.000000Z", "older needle, arrived later"),
      insert(1, 3, "2021-01-03T00:00:00.000000Z", "hay"),
      insert(2, 1, "2021-01-01T00:00:00.000000Z", "needle of org 2"),
    ]);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    const watermarks = (await db.prepare("select org_id, seq, sort_wm from audit_entries order by org_id, seq").all()).results;
    expect(watermarks).toEqual([
      { org_id: 1, seq: 1, sort_wm: null },
      { org_id: 1, seq: 2, sort_wm: "2021-01-02T00:00:00.000000Z" },
      { org_id: 1, seq: 3, sort_wm: null },
      { org_id: 2, seq: 1, sort_wm: null },
    ]);
    const found = (await db.prepare(`select rowid >> 32 as org, rowid & 4294967295 as seq, backdated from audit_search where audit_search match '"needle"' order by rowid`).all()).results;
    expect(found).toEqual([
      { org: 1, seq: 1, backdated: null },
      { org: 1, seq: 2, backdated: null },
      { org: 2, seq: 1, backdated: null },
    ]);
    const backdated = (await db.prepare(`select rowid & 4294967295 as seq from audit_search where audit_search match 'backdated : "yes"'`).all()).results;
    expect(backdated).toEqual([{ seq: 2 }]);
  });
});
