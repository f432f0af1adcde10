// Posting as a real Flagsmith does (api/webhooks/webhooks.py): json.dumps(data, sort_keys=True) as
// the body, content-type application/json, X-Flagsmith-Signature when the webhook has a secret.
import { expect } from "vitest";
import { call, createOrganisation, pythonDumps, receiverUrl } from "./helpers";

export type Org = Awaited<ReturnType<typeof createOrganisation>>;

export interface NewSource {
  id: string;
  name: string;
  url: string;
  secret: string | null;
  signed: boolean;
  token_prefix: string;
  created_at: string;
  last_received_at: string | null;
  last_test_received_at: string | null;
  revoked_at: string | null;
}

/** Flagsmith's core/signing.py sign_payload: hex HMAC-SHA256 of the body, the secret's UTF-8 bytes as the key. */
export async function flagsmithSignature(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(body)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function createSource(org: Org, json: Record<string, unknown> = {}): Promise<NewSource> {
  const res = await call(`/api/v1/organisations/${org.orgId}/inbound-sources/`, { method: "POST", headers: org.auth, json });
  expect(res.status).toBe(201);
  return (await res.json()) as NewSource;
}

/** The bytes Flagsmith sends for `{"data", "event_type"}`: json.dumps(sort_keys=True) of it. */
export const flagsmithBody = (eventType: string, data: unknown) => pythonDumps(JSON.stringify({ data, event_type: eventType }));

/** POSTs a body as Flagsmith does; `secret` null sends no signature (Flagsmith's blank secret). */
export async function postAsFlagsmith(source: Pick<NewSource, "url">, body: string, secret: string | null, query = "") {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (secret !== null) headers["x-flagsmith-signature"] = await flagsmithSignature(secret, body);
  return call(`${new URL(source.url).pathname}${query}`, { method: "POST", headers, body });
}

export async function webhook(org: Org, owner: string, json: Record<string, unknown>) {
  const res = await call(`${owner}/webhooks/`, { method: "POST", headers: org.auth, json });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string; event_types: string[] };
}

export const hookUrl = (box: string) => `${receiverUrl()}/hooks/${box}`;

/**
 * A Flagsmith timestamp of a minute ago, with `micros` as its fraction so bodies stay distinct.
 * Inbound bodies older than the replay window (issue 14, point 7) are refused, so tests of real
 * changes send recent ones.
 */
export const recentTimestamp = (micros: number) =>
  new Date(Date.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, `.${String(micros).padStart(6, "0")}Z`);
