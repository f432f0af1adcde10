// Past one database (src/db/placement.ts): an organisation's audit log lives in the D1 binding its
// `database` names, chosen by the operator at creation. Two organisations on two real local D1
// databases (DB and DB_2): what each records lands in its own database (read here straight from both
// bindings), and every answer about its log (list, search, detail, export, event status, deliveries'
// entry numbers, checkpoints, proofs, verification, the archive) comes from there, with no leak.
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { archiveLogs } from "../src/audit/archive";
import { sealLogs } from "../src/audit/seal";
import { advanceClock, resetClock } from "../src/domain/clock";
import type { Env } from "../src/env";
import { recordEvents } from "../src/ingest/record";
import { FLAGHOOK } from "../src/domain/provenance";
import type { IngestMessage } from "../src/queues";
import { ADMIN, call, countRows, eventually, expectError, receiverUrl, recorded } from "./helpers";
import { hashLeaf, unb64, verifyInclusion } from "./support/rfc9162";

interface Org {
  orgId: number;
  auth: Record<string, string>;
}
type Entry = { seq: number; log: string; project: { id: number; name: string | null } | null };

afterEach(() => resetClock());

async function createPlaced(name: string, database?: string): Promise<Org> {
  const res = await call("/api/v1/organisations", { method: "POST", headers: ADMIN, json: { name, ...(database ? { database } : {}) } });
  expect(res.status).toBe(201);
  const org = (await res.json()) as { id: number; database: string };
  expect(org.database).toBe(database ?? "DB");
  const key = (await (await call(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: ADMIN, json: { name: "ci" } })).json()) as { key: string };
  return { orgId: org.id, auth: { Authorization: `Api-Key ${key.key}` } };
}

async function get<T>(org: Org, path: string): Promise<T> {
  const res = await call(path, { headers: org.auth });
  expect([path, res.status]).toEqual([path, 200]);
  return (await res.json()) as T;
}

/** Rows of a table for one organisation, counted in one database binding directly. */
async function rowsIn(d1: D1Database, table: string, orgId: number): Promise<number> {
  return (await d1.prepare(`select count(*) as n from ${table} where org_id = ?`).bind(orgId).first<{ n: number }>())!.n;
}

async function post(org: Org, log: string, projectName?: string): Promise<string> {
  const event = { type: "CUSTOM", log, related_object: { type: "NOTE", id: 1 }, project: { id: 7, ...(projectName ? { name: projectName } : {}) } };
  const res = await call("/api/v1/events", { method: "POST", headers: org.auth, json: event });
  expect(res.status).toBe(202);
  return ((await res.json()) as { event_id: string }).event_id;
}

describe("two organisations on two D1 databases", () => {
  let a: Org; // in DB
  let b: Org; // in DB_2
  const seqOf: Record<string, number> = {};

  beforeAll(async () => {
    a = await createPlaced("Alpha");
    b = await createPlaced("Beta", "DB_2");
    await call(`/api/v1/organisations/${b.orgId}/webhooks/`, {
      method: "POST",
      headers: b.auth,
      json: { url: `${receiverUrl()}/hooks/placement-b`, name: "audit", event_types: ["AUDIT_LOG_CREATED"] },
    });
    // The project's name is given once, then left out: the entry takes it from DB's catalogue.
    for (const [org, tag] of [[a, "alpha"], [b, "beta"]] as const) {
      seqOf[`${tag}-named`] = (await recorded(org.auth, await post(org, `${tag} first needle-${tag}`, `Project ${tag}`))).audit_entry_id;
      seqOf[`${tag}-unnamed`] = (await recorded(org.auth, await post(org, `${tag} second needle-${tag}`))).audit_entry_id;
    }
  });

  it("records each organisation's entries in its own database, and the catalogue in DB", async () => {
    expect(await rowsIn(env.DB, "audit_entries", a.orgId)).toBeGreaterThanOrEqual(3);
    expect(await rowsIn(env.DB_2, "audit_entries", b.orgId)).toBeGreaterThanOrEqual(3);
    expect(await rowsIn(env.DB_2, "audit_entries", a.orgId)).toBe(0);
    expect(await rowsIn(env.DB, "audit_entries", b.orgId)).toBe(0);
    // The event ids and the search index follow the entries.
    expect(await rowsIn(env.DB_2, "audit_event_ids", b.orgId)).toBe(await rowsIn(env.DB_2, "audit_entries", b.orgId));
    expect(await rowsIn(env.DB, "audit_event_ids", b.orgId)).toBe(0);
    const indexed = (d1: D1Database) => d1.prepare("select count(*) as n from audit_search where audit_search match '\"needle-beta\"'").first<{ n: number }>();
    expect((await indexed(env.DB_2))!.n).toBe(2);
    expect((await indexed(env.DB))!.n).toBe(0);
    // Organisations, keys, webhooks, projects stay in DB.
    expect(await countRows("projects", "org_id = ?", b.orgId)).toBe(1);
    expect((await env.DB_2.prepare("select count(*) as n from organisations").first<{ n: number }>())!.n).toBe(0);
  });

  it("lists, searches, shows and exports each organisation's own entries", async () => {
    for (const [org, own, other] of [[a, "alpha", "beta"], [b, "beta", "alpha"]] as const) {
      const list = await get<{ results: Entry[] }>(org, "/api/v1/audit?page_size=100");
      const logs = list.results.map((e) => e.log);
      expect(logs).toContain(`${own} first needle-${own}`);
      expect(logs.filter((l) => l.includes(other))).toEqual([]);
      const found = await get<{ results: Entry[] }>(org, `/api/v1/audit?search=needle-${own}`);
      expect(found.results.map((e) => e.log).sort()).toEqual([`${own} first needle-${own}`, `${own} second needle-${own}`]);
      expect((await get<{ results: Entry[] }>(org, `/api/v1/audit?search=needle-${other}`)).results).toEqual([]);
      const detail = await get<Entry>(org, `/api/v1/audit/${seqOf[`${own}-unnamed`]}`);
      expect([detail.log, detail.project?.name]).toEqual([`${own} second needle-${own}`, `Project ${own}`]);
      const exported = new TextDecoder().decode(await (await call("/api/v1/audit/export?format=ndjson", { headers: org.auth })).arrayBuffer());
      expect(exported).toContain(`needle-${own}`);
      expect(exported).not.toContain(`needle-${other}`);
    }
    // Both logs number from 1: the same number names each organisation's own entry.
    const same = seqOf["alpha-named"];
    expect((await get<Entry>(a, `/api/v1/audit/${same}`)).log).toBe("alpha first needle-alpha");
    expect((await get<Entry>(b, `/api/v1/audit/${same}`)).log).not.toContain("alpha");
  });

  it("answers the event status and the deliveries' entry numbers from the organisation's database", async () => {
    const eventId = await post(b, "beta third");
    const status = await recorded(b.auth, eventId);
    expect(status.audit_entry_id).toBeGreaterThan(seqOf["beta-unnamed"]);
    expect(status.deliveries).toHaveLength(1);
    const delivery = await get<{ audit_entry_id: number | null }>(b, `/api/v1/deliveries/${status.deliveries[0].id}`);
    expect(delivery.audit_entry_id).toBe(status.audit_entry_id);
    // The deliveries themselves live in DB; the entry was marked fanned out in DB_2.
    expect(await countRows("deliveries", "id = ?", status.deliveries[0].id)).toBe(1);
    await eventually(async () => (await env.DB_2.prepare("select count(*) as n from audit_entries where org_id = ? and fanned_out = 0").bind(b.orgId).first<{ n: number }>())!.n === 0);
    // Organisation A asking for B's event finds nothing.
    expect((await call(`/api/v1/events/${eventId}`, { headers: a.auth })).status).toBe(404);
  });

  it("seals each log in its own database: checkpoints, proofs and verification", async () => {
    await sealLogs(env);
    const checkpoint = (d1: D1Database, orgId: number) => rowsIn(d1, "audit_checkpoints", orgId);
    expect([await checkpoint(env.DB, a.orgId), await checkpoint(env.DB_2, a.orgId)]).toEqual([1, 0]);
    expect([await checkpoint(env.DB, b.orgId), await checkpoint(env.DB_2, b.orgId)]).toEqual([0, 1]);
    expect(await rowsIn(env.DB, "audit_tiles", b.orgId)).toBe(0);
    for (const org of [a, b]) {
      const latest = await get<{ tree_size: number; root_hash: string }>(org, "/api/v1/audit/checkpoints/latest");
      expect(latest.tree_size).toBe(await rowsIn(org === a ? env.DB : env.DB_2, "audit_entries", org.orgId));
      const seq = seqOf[org === a ? "alpha-named" : "beta-named"];
      const proof = await get<{ leaf: string; proof: string[]; tree_size: number }>(org, `/api/v1/audit/${seq}/proof`);
      expect(proof.leaf).toContain(org === a ? "needle-alpha" : "needle-beta");
      expect(await verifyInclusion(seq - 1, proof.tree_size, await hashLeaf(proof.leaf), proof.proof.map(unb64), unb64(latest.root_hash))).toBe(true);
      const verified = await get<{ ok: boolean; checked: number }>(org, "/api/v1/audit/verify");
      expect([verified.ok, verified.checked]).toEqual([true, latest.tree_size]);
    }
  });

  it("archives an organisation's old entries from its own database, and reads them back", async () => {
    advanceClock(3 * 86_400_000);
    await sealLogs(env);
    const hot = { ...env, AUDIT_HOT_DAYS: "1" } as Env;
    const moved = await archiveLogs(hot);
    expect(moved.map((m) => m.orgId)).toEqual(expect.arrayContaining([a.orgId, b.orgId]));
    expect(await rowsIn(env.DB_2, "audit_segments", b.orgId)).toBeGreaterThan(0);
    expect(await rowsIn(env.DB, "audit_segments", b.orgId)).toBe(0);
    const detail = await get<Entry>(b, `/api/v1/audit/${seqOf["beta-named"]}`);
    expect(detail.log).toBe("beta first needle-beta");
    const found = await get<{ results: Entry[]; archive?: unknown }>(b, "/api/v1/audit?search=needle-beta");
    expect(found.results.map((e) => e.log).sort()).toEqual(["beta first needle-beta", "beta second needle-beta"]);
    expect(found.archive).toBeDefined();
  });
});

describe("the flag history of an organisation in another database", () => {
  // The history stays in DB with the catalogue; its entry numbers come from the organisation's log.
  const change = (orgId: number, n: number, enabled: boolean): IngestMessage => ({
    orgId,
    eventId: `evt_placed_flag_${n}`,
    receivedAt: Date.now(),
    event: {
      type: "FLAG_STATE_UPDATED",
      log: `banner ${enabled ? "on" : "off"}`,
      occurred_at: `2024-03-05T14:0${n}:00.000000Z`,
      project: { id: 1, name: "Shop" },
      environment: { id: 10, name: "Production", api_key: "prod_key_placed" },
      feature: { id: 5, name: "banner" },
      new_state: { enabled, feature_state_value: null },
    } as IngestMessage["event"],
    submitter: FLAGHOOK,
  });
  type Feature = { feature: { name: string }; enabled: boolean | null; audit_entry_id: number | null; event_id: string | null };
  const stateOf = async (org: Org, at: string) => (await get<{ features: Feature[] }>(org, `/api/v1/environments/10/state?at=${encodeURIComponent(at)}`)).features;
  const seqOfEvent = async (orgId: number, eventId: string) =>
    (await env.DB_2.prepare("select seq from audit_event_ids where org_id = ? and event_id = ?").bind(orgId, eventId).first<{ seq: number }>())!.seq;

  it("names the entry that set each state, and a retried message projects what a crash left out", async () => {
    const c = await createPlaced("Gamma", "DB_2");
    await recordEvents(env, [change(c.orgId, 1, true)]);
    const first = await seqOfEvent(c.orgId, "evt_placed_flag_1");
    expect(await stateOf(c, "2024-03-05T14:01:30Z")).toMatchObject([{ feature: { name: "banner" }, enabled: true, audit_entry_id: first, event_id: "evt_placed_flag_1" }]);
    expect(await rowsIn(env.DB, "flag_changes", c.orgId)).toBe(1);
    expect(await rowsIn(env.DB_2, "flag_changes", c.orgId)).toBe(0);

    // A crash after the entry reached DB_2 and before its history reached DB: the queue retries the message.
    await recordEvents(env, [change(c.orgId, 2, false)]);
    const second = await seqOfEvent(c.orgId, "evt_placed_flag_2");
    await env.DB.prepare("delete from flag_changes where org_id = ? and event_id = ?").bind(c.orgId, "evt_placed_flag_2").run();
    expect(await stateOf(c, "2024-03-05T14:02:30Z")).toMatchObject([{ enabled: true, audit_entry_id: first }]);
    await recordEvents(env, [change(c.orgId, 2, false)]);
    expect(await stateOf(c, "2024-03-05T14:02:30Z")).toMatchObject([{ enabled: false, audit_entry_id: second, event_id: "evt_placed_flag_2" }]);
    // Recorded once, projected once, however often the message comes.
    await recordEvents(env, [change(c.orgId, 2, false)]);
    const changes = await env.DB_2.prepare("select count(*) as n from audit_entries where org_id = ? and event_id like 'evt_placed_flag_%'").bind(c.orgId).first<{ n: number }>();
    expect(changes!.n).toBe(2);
    expect(await rowsIn(env.DB, "flag_changes", c.orgId)).toBe(2);
  });
});

describe("placing an organisation", () => {
  it("refuses a database the Worker has no binding for, or a name that is no binding's, and creates nothing", async () => {
    const before = await countRows("organisations");
    for (const database of ["DB_9", "MIGRATION_DB", "db_2", "DB_", "AUDIT_BUCKET", ""]) {
      await expectError(await call("/api/v1/organisations", { method: "POST", headers: ADMIN, json: { name: "Nowhere", database } }), 400, "validation_failed", "database");
    }
    await expectError(await call("/api/v1/organisations", { method: "POST", headers: ADMIN, json: { name: "Nowhere", database: 2 } }), 400, "validation_failed", "database");
    expect(await countRows("organisations")).toBe(before);
  });

  it("keeps an organisation where it was created: PATCH takes no database", async () => {
    const org = await createPlaced("Stays", "DB_2");
    await expectError(await call(`/api/v1/organisations/${org.orgId}`, { method: "PATCH", headers: ADMIN, json: { database: "DB" } }), 400, "validation_failed");
    expect(((await (await call(`/api/v1/organisations/${org.orgId}`, { headers: ADMIN })).json()) as { database: string }).database).toBe("DB_2");
    // Naming DB itself is the default.
    const plain = await createPlaced("Plain", "DB");
    expect((await env.DB.prepare("select database from organisations where id = ?").bind(plain.orgId).first<{ database: string | null }>())!.database).toBeNull();
  });
});
