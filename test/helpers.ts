// Shared test helpers: requests through the real Worker, an organisation with a key, and waiting
// for the queues (real local Queues in workerd) to do their work.
import { exports } from "cloudflare:workers";
import { env } from "cloudflare:workers";
import { expect, inject } from "vitest";

export const ADMIN = { Authorization: "Bearer test-admin-token" };

export function call(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  return exports.default.fetch(new Request(`http://flaghook.test${path}`, { ...init, headers, body }));
}

export async function createOrganisation(name = "Acme") {
  const org = (await (await call("/api/v1/organisations", { method: "POST", headers: ADMIN, json: { name } })).json()) as {
    id: number;
  };
  const key = (await (
    await call(`/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: ADMIN, json: { name: "ci" } })
  ).json()) as { id: string; key: string };
  return { orgId: org.id, key: key.key, keyId: key.id, auth: { Authorization: `Api-Key ${key.key}` } };
}

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

/** Waits until the event is recorded by the ingest queue consumer; returns its status body. */
export async function recorded(auth: Record<string, string>, eventId: string) {
  return eventually(async () => {
    const res = await call(`/api/v1/events/${eventId}`, { headers: auth });
    const body = (await res.json()) as { status: string; audit_entry_id: number; deliveries: { id: string; status: string }[] };
    return body.status === "recorded" ? body : undefined;
  });
}

export const receiverUrl = () => inject("receiverUrl");

export async function mailbox(name: string) {
  const res = await fetch(`${receiverUrl()}/_control/${name}`);
  return (await res.json()) as { count: number; maxInFlight: number; requests: { headers: Record<string, string>; body: string; receivedAt: number }[] };
}

export async function scriptMailbox(name: string, spec: { responses?: unknown[]; default?: unknown }) {
  await fetch(`${receiverUrl()}/_control/${name}`, { method: "PUT", body: JSON.stringify(spec) });
}

export async function countRows(table: string, where = "1 = 1", ...binds: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`select count(*) as n from ${table} where ${where}`).bind(...binds).first<{ n: number }>();
  return row?.n ?? 0;
}

/** Runs the seed's own Python signature snippet (test/fixtures/seed_signature_check.py) on a delivery. */
export async function seedPythonSays(secret: string, body: string, signature: string): Promise<string> {
  const res = await fetch(`${receiverUrl()}/_seed-check`, { method: "POST", body: JSON.stringify({ secret, body, signature }) });
  return res.text();
}

/** What Flagsmith's own serialiser, json.dumps(sort_keys=True), makes of a body. */
export async function pythonDumps(body: string): Promise<string> {
  return (await fetch(`${receiverUrl()}/_python-dumps`, { method: "POST", body })).text();
}

/** The one error shape: `{"error": {"code", "message", "details"}}` as JSON, with this code (and field at fault). */
export async function expectError(res: Response, status: number, code: string, field?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string; details: { field?: string; message: string }[] } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "details", "message"]);
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(Array.isArray(body.error.details)).toBe(true);
  if (field) expect(body.error.details.map((d) => d.field)).toContain(field);
}
