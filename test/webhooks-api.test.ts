// SPEC 6 webhook and delivery endpoints: CRUD for both scopes, test send, deliveries, redeliver,
// recover, tenant isolation, and the system audit entries that webhook changes leave.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, countRows, createOrganisation, eventually, mailbox, receiverUrl, recorded, scriptMailbox } from "./helpers";

type Hook = { id: string; url: string; name: string; enabled: boolean; event_types: string[] | null; secret?: string; has_secret: boolean; disabled_reason: string | null };
const json = async <T>(res: Response | Promise<Response>) => (await (await res).json()) as T;

describe("webhook management", () => {
  it("creates, reads, lists, updates and deletes an organisation webhook, never echoing the secret after creation", async () => {
    const { orgId, auth } = await createOrganisation();
    const base = `/api/v1/organisations/${orgId}/webhooks`;
    const created = await call(`${base}/`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/crud`, name: "Audit stream" } });
    expect(created.status).toBe(201);
    const hook = await json<Hook>(created);
    // No event_types: the same as Flagsmith sends an organisation webhook, stored on the webhook.
    expect(hook).toMatchObject({
      name: "Audit stream",
      enabled: true,
      event_types: ["AUDIT_LOG_CREATED", "FLAG_UPDATED", "FLAG_DELETED"],
      changed_by: "name",
      has_secret: true,
      disabled_reason: null,
      scope: "organisation",
      secret_rotation: null,
    });
    expect(await countRows("webhooks", "id = ? and event_types = ?", hook.id, '["AUDIT_LOG_CREATED","FLAG_UPDATED","FLAG_DELETED"]')).toBe(1);
    expect(hook.id).toMatch(/^whk_/);
    expect(hook.secret).toMatch(/^whsec_/);

    const read = await json<Hook>(call(`${base}/${hook.id}/`, { headers: auth }));
    expect(read).not.toHaveProperty("secret");
    expect((await json<{ results: Hook[] }>(call(base, { headers: auth }))).results.map((h) => h.id)).toEqual([hook.id]);

    const patched = await json<Hook>(call(`${base}/${hook.id}`, { method: "PATCH", headers: auth, json: { enabled: false, event_types: ["AUDIT_LOG_CREATED", "FLAG_DELETED"] } }));
    expect(patched).toMatchObject({ enabled: false, disabled_reason: "disabled by a user", event_types: ["AUDIT_LOG_CREATED", "FLAG_DELETED"] });
    const enabled = await json<Hook>(call(`${base}/${hook.id}`, { method: "PATCH", headers: auth, json: { enabled: true } }));
    expect(enabled).toMatchObject({ enabled: true, disabled_reason: null });

    expect((await call(`${base}/${hook.id}/`, { method: "DELETE", headers: auth })).status).toBe(204);
    expect((await call(`${base}/${hook.id}`, { headers: auth })).status).toBe(404);
    expect(await countRows("webhooks", "id = ?", hook.id)).toBe(0);
  });

  it("audits every webhook change as a system event", async () => {
    const { orgId, auth } = await createOrganisation();
    const base = `/api/v1/organisations/${orgId}/webhooks`;
    const hook = await json<Hook>(call(base, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/audited`, name: "h" } }));
    await call(`${base}/${hook.id}`, { method: "PATCH", headers: auth, json: { name: "renamed" } });
    await call(`${base}/${hook.id}/rotate-secret`, { method: "POST", headers: auth });
    await call(`${base}/${hook.id}`, { method: "DELETE", headers: auth });
    const logs = await eventually(async () => {
      const page = await json<{ results: { log: string; is_system_event: boolean; author: unknown; related_object_type: string }[] }>(
        call("/api/v1/audit?related_object_type=WEBHOOK", { headers: auth }),
      );
      return page.results.length === 4 ? page.results : undefined;
    });
    expect(logs.map((l) => l.log)).toEqual([
      `Webhook deleted: renamed (${receiverUrl()}/hooks/…)`,
      `Webhook secret rotated (staged): renamed (${receiverUrl()}/hooks/…)`,
      `Webhook updated (name): renamed (${receiverUrl()}/hooks/…)`,
      `Webhook created: h (${receiverUrl()}/hooks/…)`,
    ]);
    expect(logs.every((l) => l.is_system_event && l.author === null)).toBe(true);
  });

  it("addresses environment webhooks by environment id or api_key, and refuses organisation-only event types", async () => {
    const { auth } = await createOrganisation();
    const ev = await json<{ event_id: string }>(
      call("/api/v1/events", {
        method: "POST",
        headers: auth,
        json: { type: "ENVIRONMENT_CREATED", project: { id: 1, name: "P" }, environment: { id: 31, name: "Staging", api_key: "env_key_staging" } },
      }),
    );
    await recorded(auth, ev.event_id);
    const hook = await json<Hook>(call("/api/v1/environments/env_key_staging/webhooks/", { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/by-key` } }));
    expect((await json<{ results: Hook[] }>(call("/api/v1/environments/31/webhooks", { headers: auth }))).results.map((h) => h.id)).toEqual([hook.id]);
    expect((await call("/api/v1/environments/unknown_key/webhooks", { headers: auth })).status).toBe(404);
    const bad = await call("/api/v1/environments/31/webhooks", { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/x`, event_types: ["AUDIT_LOG_CREATED"] } });
    expect(bad.status).toBe(400);
    expect((await json<{ error: { code: string } }>(bad)).error.code).toBe("validation_failed");
  });

  it("answers 404 for another organisation's webhooks, deliveries and environments' webhooks", async () => {
    const a = await createOrganisation("A");
    const b = await createOrganisation("B");
    const hook = await json<Hook>(call(`/api/v1/organisations/${a.orgId}/webhooks`, { method: "POST", headers: a.auth, json: { url: `${receiverUrl()}/hooks/a` } }));
    const test = await json<{ delivery_id: string }>(call(`/api/v1/organisations/${a.orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: a.auth }));
    for (const [method, path] of [
      ["GET", `/api/v1/organisations/${a.orgId}/webhooks`],
      ["GET", `/api/v1/organisations/${b.orgId}/webhooks/${hook.id}`],
      ["PATCH", `/api/v1/organisations/${b.orgId}/webhooks/${hook.id}`],
      ["DELETE", `/api/v1/organisations/${b.orgId}/webhooks/${hook.id}`],
      ["POST", `/api/v1/organisations/${b.orgId}/webhooks/${hook.id}/test`],
      ["GET", `/api/v1/deliveries/${test.delivery_id}`],
      ["POST", `/api/v1/deliveries/${test.delivery_id}/redeliver`],
    ] as const) {
      const res = await call(path, { method, headers: b.auth, ...(method === "PATCH" ? { json: { name: "x" } } : {}) });
      expect([method, path, res.status]).toEqual([method, path, 404]);
    }
    expect(await countRows("webhooks", "id = ? and name = 'x'", hook.id)).toBe(0);
  });
});

describe("test send, deliveries, redeliver and recover", () => {
  it("sends a test synchronously and answers the receiver's status; the attempt is stored", async () => {
    const { orgId, auth } = await createOrganisation();
    await scriptMailbox("test-send", { default: { status: 418, body: "I'm a teapot" } });
    const hook = await json<Hook>(call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/test-send` } }));
    const res = await call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: auth });
    expect(res.status).toBe(200);
    const result = await json<{ delivery_id: string; ok: boolean; status_code: number; response_body: string }>(res);
    expect(result).toMatchObject({ ok: false, status_code: 418, response_body: "I'm a teapot" });
    const { requests } = await mailbox("test-send");
    expect(JSON.parse(requests.at(-1)!.body)).toMatchObject({ event_type: "AUDIT_LOG_CREATED", data: { is_system_event: true } });
    const detail = await json<{ status: string; attempts: { number: number; status_code: number }[] }>(call(`/api/v1/deliveries/${result.delivery_id}`, { headers: auth }));
    expect(detail).toMatchObject({ status: "failed", attempts: [{ number: 1, status_code: 418 }] });
  });

  it("lists a webhook's deliveries filtered by status, and redelivers one with the same webhook-id", async () => {
    const { orgId, auth } = await createOrganisation();
    const box = `redeliver-${Date.now()}`;
    await scriptMailbox(box, { responses: [{ status: 500 }], default: { status: 200 } });
    const hook = await json<Hook>(call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${box}` } }));
    const failed = await json<{ delivery_id: string }>(call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: auth }));
    await call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: auth });
    const list = (status: string) =>
      json<{ results: { id: string }[] }>(call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}/deliveries/?status=${status}`, { headers: auth }));
    expect((await list("failed")).results.map((d) => d.id)).toEqual([failed.delivery_id]);
    expect((await list("delivered")).results.map((d) => d.id)).not.toContain(failed.delivery_id);

    const again = await call(`/api/v1/deliveries/${failed.delivery_id}/redeliver`, { method: "POST", headers: auth });
    expect(again.status).toBe(202);
    await eventually(async () => (await list("delivered")).results.some((d) => d.id === failed.delivery_id));
    const requests = (await mailbox(box)).requests.filter((r) => r.headers["webhook-id"] === failed.delivery_id);
    expect(requests).toHaveLength(2);
    expect(requests[1].body).toBe(requests[0].body);
    const detail = await json<{ attempts: unknown[] }>(call(`/api/v1/deliveries/${failed.delivery_id}`, { headers: auth }));
    expect(detail.attempts).toHaveLength(2);
  });

  it("recovers every failed delivery since a time, and never a test send", async () => {
    const { orgId, auth } = await createOrganisation();
    const box = `recover-${Date.now()}`;
    const environmentId = 70_000 + Math.floor(Math.random() * 10_000);
    const base = `/api/v1/environments/${environmentId}/webhooks`;
    const hook = await json<Hook>(call(base, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${box}` } }));
    const since = new Date().toISOString();
    await scriptMailbox(box, { default: { status: 500 } });
    // Two test sends that failed, and three deliveries of changes that used their last attempt.
    for (let i = 0; i < 2; i++) expect((await json<{ ok: boolean; test: boolean }>(call(`${base}/${hook.id}/test`, { method: "POST", headers: auth }))).test).toBe(true);
    for (let i = 0; i < 3; i++) {
      await env.DB.prepare(
        `insert into deliveries (id, org_id, webhook_id, event_type, payload, status, attempt_count, cycle_start, created_at, updated_at)
         values (?, ?, ?, 'FLAG_UPDATED', ?, 'failed', 4, 0, ?, ?)`,
      )
        .bind(`dlv_recover${i}x${Date.now()}`, orgId, hook.id, `{"change": ${i}}`, Date.now(), Date.now())
        .run();
    }
    await scriptMailbox(box, { default: { status: 200 } });
    const res = await call(`${base}/${hook.id}/recover`, { method: "POST", headers: auth, json: { since } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ recovered: 3 });
    const changes = async () => (await mailbox(box)).requests.filter((r) => r.body.startsWith('{"change"'));
    await eventually(async () => (await changes()).length === 3);
    expect((await changes()).map((r) => r.body).sort()).toEqual(['{"change": 0}', '{"change": 1}', '{"change": 2}']);
    const failedTests = await json<{ results: { test: boolean; status: string }[] }>(call(`${base}/${hook.id}/deliveries?status=failed`, { headers: auth }));
    expect(failedTests.results).toEqual([expect.objectContaining({ test: true, status: "failed" }), expect.objectContaining({ test: true, status: "failed" })]);
    expect((await mailbox(box)).requests.filter((r) => r.body.includes("Test webhook from flaghook"))).toHaveLength(2);
    const bad = await call(`${base}/${hook.id}/recover`, { method: "POST", headers: auth, json: { since: "yesterday" } });
    expect(bad.status).toBe(400);
  });

  it("marks a test send as a test, and an environment webhook's test payload names its environment and project", async () => {
    const { orgId, auth } = await createOrganisation();
    const created = await call("/api/v1/events", {
      method: "POST",
      headers: auth,
      json: { type: "ENVIRONMENT_CREATED", project: { id: 4310, name: "Storefront" }, environment: { id: 4311, name: "Staging", api_key: "staging_key_4311" } },
    });
    await recorded(auth, ((await created.json()) as { event_id: string }).event_id);
    const box = `test-payload-${Date.now()}`;
    const hook = await json<Hook>(call("/api/v1/environments/staging_key_4311/webhooks", { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${box}` } }));
    const sent = await json<{ delivery_id: string; test: boolean; ok: boolean }>(call(`/api/v1/environments/4311/webhooks/${hook.id}/test`, { method: "POST", headers: auth }));
    expect(sent).toMatchObject({ test: true, ok: true });
    const body = JSON.parse((await mailbox(box)).requests[0].body) as { data: { new_state: { environment: unknown; feature: { project: unknown } } } };
    expect(body.data.new_state.environment).toEqual({ id: 4311, name: "Staging" });
    expect(body.data.new_state.feature.project).toEqual({ id: 4310, name: "Storefront" });
    const detail = await json<{ test: boolean; attempts: unknown[] }>(call(`/api/v1/deliveries/${sent.delivery_id}`, { headers: auth }));
    expect(detail).toMatchObject({ test: true, attempts: [expect.objectContaining({ number: 1, status_code: 200 })] });
    expect(await countRows("deliveries", "id = ? and kind = 'test' and org_id = ?", sent.delivery_id, orgId)).toBe(1);
  });

  it("refuses to redeliver to a disabled webhook", async () => {
    const { orgId, auth } = await createOrganisation();
    const hook = await json<Hook>(call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/disabled-redeliver` } }));
    const test = await json<{ delivery_id: string }>(call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}/test`, { method: "POST", headers: auth }));
    await call(`/api/v1/organisations/${orgId}/webhooks/${hook.id}`, { method: "PATCH", headers: auth, json: { enabled: false } });
    const res = await call(`/api/v1/deliveries/${test.delivery_id}/redeliver`, { method: "POST", headers: auth });
    expect(res.status).toBe(409);
    expect((await json<{ error: { code: string } }>(res)).error.code).toBe("webhook_disabled");
  });
});
