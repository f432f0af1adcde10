// Staged secret rotation that a receiver written for Flagsmith survives (issue 10, point 4). Such a
// receiver checks only X-Flagsmith-Signature (Flagsmith's docs, "Validating Signature": one secret),
// so X-Flagsmith-Signature keeps the secret it checks until its owner confirms the switch or the grace
// period ends; webhook-signature carries both secrets throughout.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { advanceClock, resetClock } from "../src/domain/clock";
import { createOrganisation, expectError, mailbox, receiverUrl, seedPythonSays } from "./helpers";

afterEach(() => resetClock());

const OLD = "the receiver's old secret";
let n = 0;

/** Through the Worker's own fetch in this isolate, so that advanceClock() moves its clock too. */
async function api(path: string, init: { method?: string; headers: Record<string, string>; json?: unknown }) {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const res = await worker.fetch(
    new Request(`http://flaghook.test${path}`, { method: init.method ?? "GET", headers, body: init.json === undefined ? undefined : JSON.stringify(init.json) }),
    env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

async function setup() {
  const org = await createOrganisation();
  const box = `rotation-${++n}-${Date.now()}`;
  const base = `/api/v1/environments/${900 + n}/webhooks`;
  const hook = (await (await api(`${base}/`, { method: "POST", headers: org.auth, json: { url: `${receiverUrl()}/hooks/${box}`, secret: OLD } })).json()) as { id: string };
  const path = `${base}/${hook.id}`;
  /** Sends the test payload now (the consumer's own signing) and answers what the receiver got. */
  const delivered = async () => {
    const sent = (await (await api(`${path}/test`, { method: "POST", headers: org.auth })).json()) as { delivery_id: string; ok: boolean };
    expect(sent.ok).toBe(true);
    const request = (await mailbox(box)).requests.find((r) => r.headers["webhook-id"] === sent.delivery_id)!;
    return {
      request,
      flagsmithValidWith: async (secret: string) => (await seedPythonSays(secret, request.body, request.headers["x-flagsmith-signature"])) === "valid",
      standardEntries: request.headers["webhook-signature"].split(" ").length,
      standardValidWith: (secret: string) => {
        const key = secret.startsWith("whsec_") ? secret.slice(6) : btoa(secret);
        try {
          new StandardWebhook(key).verify(request.body, request.headers);
          return true;
        } catch {
          return false;
        }
      },
    };
  };
  return { org, path, delivered };
}

describe("staged secret rotation", () => {
  it("keeps X-Flagsmith-Signature on the secret the receiver checks until the owner confirms; webhook-signature carries both throughout", async () => {
    const { org, path, delivered } = await setup();
    const rotated = (await (await api(`${path}/rotate-secret`, { method: "POST", headers: org.auth })).json()) as {
      secret: string;
      previous_secret_expires_at: string;
      secret_rotation: unknown;
    };
    expect(rotated.secret).toMatch(/^whsec_/);

    const during = await delivered();
    expect(await during.flagsmithValidWith(OLD)).toBe(true);
    expect(await during.flagsmithValidWith(rotated.secret)).toBe(false);
    expect(during.standardEntries).toBe(2);
    expect(during.standardValidWith(OLD) && during.standardValidWith(rotated.secret)).toBe(true);
    expect(rotated.secret_rotation).toEqual({ staged: true, x_flagsmith_signature: "previous", previous_secret_expires_at: rotated.previous_secret_expires_at });

    const confirmed = await api(`${path}/rotate-secret/confirm`, { method: "POST", headers: org.auth });
    expect(confirmed.status).toBe(200);
    expect(await confirmed.json()).toMatchObject({ secret_rotation: null });
    const after = await delivered();
    expect(await after.flagsmithValidWith(rotated.secret)).toBe(true);
    expect(await after.flagsmithValidWith(OLD)).toBe(false);
    expect(after.standardEntries).toBe(1);
    expect(after.standardValidWith(OLD)).toBe(false);
    // Nothing left to confirm.
    await expectError(await api(`${path}/rotate-secret/confirm`, { method: "POST", headers: org.auth }), 409, "no_rotation");
  });

  it("switches by itself when the grace period ends without a confirmation", async () => {
    const { org, path, delivered } = await setup();
    const { secret } = (await (await api(`${path}/rotate-secret`, { method: "POST", headers: org.auth })).json()) as { secret: string };
    advanceClock(24 * 3_600_000 + 1000);
    const after = await delivered();
    expect(await after.flagsmithValidWith(secret)).toBe(true);
    expect(after.standardEntries).toBe(1);
    expect(await (await api(path, { headers: org.auth })).json()).toMatchObject({ secret_rotation: null });
  });

  it("rotating again before the switch keeps X-Flagsmith-Signature on the receiver's secret", async () => {
    const { org, path, delivered } = await setup();
    await api(`${path}/rotate-secret`, { method: "POST", headers: org.auth });
    const { secret } = (await (await api(`${path}/rotate-secret`, { method: "POST", headers: org.auth, json: { secret: "the third one" } })).json()) as { secret: string };
    expect(secret).toBe("the third one");
    const during = await delivered();
    expect(await during.flagsmithValidWith(OLD)).toBe(true);
    expect(during.standardValidWith(OLD) && during.standardValidWith("the third one")).toBe(true);
  });

  it("with staged: false switches X-Flagsmith-Signature at once, the previous secret still in webhook-signature for the grace period", async () => {
    const { org, path, delivered } = await setup();
    const rotated = (await (await api(`${path}/rotate-secret`, { method: "POST", headers: org.auth, json: { staged: false } })).json()) as {
      secret: string;
      secret_rotation: { x_flagsmith_signature: string; staged: boolean };
    };
    expect(rotated.secret_rotation).toMatchObject({ staged: false, x_flagsmith_signature: "new" });
    const during = await delivered();
    expect(await during.flagsmithValidWith(rotated.secret)).toBe(true);
    expect(await during.flagsmithValidWith(OLD)).toBe(false);
    expect(during.standardValidWith(OLD) && during.standardValidWith(rotated.secret)).toBe(true);
  });
});
