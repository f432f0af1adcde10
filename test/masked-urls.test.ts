// Webhook URLs as credentials (issue 14, point 8): a Slack-style URL carries its secret in the path.
// It is shown whole only in the webhook's own API answers and its own page; everywhere else (audit
// entries and the AUDIT_LOG_CREATED deliveries that carry them to third parties, lists, other pages)
// it is masked to scheme, host and a short path prefix.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { maskedUrl } from "../src/domain/masked-url";
import { call, createOrganisation, eventually, mailbox, receiverUrl, scriptMailbox } from "./helpers";

describe("maskedUrl", () => {
  it.each([
    ["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "https://hooks.slack.com/services/…"],
    ["https://discord.com/api/webhooks/123456/token-abc", "https://discord.com/api/…"],
    ["https://example.com/flags", "https://example.com/flags"],
    ["https://example.com/flags/", "https://example.com/flags/"],
    ["https://example.com/", "https://example.com/"],
    ["https://example.com", "https://example.com/"],
    ["https://example.com:8443/hook?token=s3cret", "https://example.com:8443/hook…"],
    ["https://example.com/?token=s3cret", "https://example.com/…"],
    ["https://example.com/hook#s3cret", "https://example.com/hook…"],
    ["https://example.com/0123456789abcdef0", "https://example.com/…"],
    ["https://example.com/0123456789abcdef0/x", "https://example.com/…"],
    ["http://127.0.0.1:8080/hooks/box", "http://127.0.0.1:8080/hooks/…"],
    ["not a url", "(not a URL)"],
  ])("%s -> %s", (url, masked) => expect(maskedUrl(url)).toBe(masked));
});

const ORIGIN = "http://flaghook.test";

/** Signs in to the admin pages with `key`; answers a GET that carries the session cookie. */
async function adminPages(key: string) {
  const form = await call("/ui/sign-in");
  const cookie = form.headers.get("set-cookie")!.split(";")[0];
  const token = /name="csrf" value="([^"]+)"/.exec(await form.text())![1];
  const signedIn = await call("/ui/sign-in", {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: token, key, next: "/ui/webhooks" }).toString(),
  });
  const session = signedIn.headers.getSetCookie().find((c) => c.startsWith("flaghook_session="))!.split(";")[0];
  return async (path: string) => {
    const res = await call(path, { headers: { cookie: session } });
    expect(res.status, path).toBe(200);
    return res.text();
  };
}

describe("a webhook URL holding a secret", () => {
  it("is whole in the webhook's own answers and page, and masked in audit entries, their deliveries, lists and other pages", async () => {
    const { orgId, key, auth } = await createOrganisation("Slack-style");
    const audit = `masked-audit-${Date.now()}`;
    await scriptMailbox(audit, { default: { status: 200 } });
    // An organisation webhook that receives the organisation's audit log (a third party, as far as the secret goes).
    const listener = await call(`/api/v1/organisations/${orgId}/webhooks`, { method: "POST", headers: auth, json: { url: `${receiverUrl()}/hooks/${audit}`, name: "audit listener" } });
    expect(listener.status).toBe(201);

    const secret = `T0SECRET${Date.now()}xyzzy`;
    const slack = `masked-slack-${Date.now()}`;
    await scriptMailbox(slack, { default: { status: 200 } });
    const url = `${receiverUrl()}/hooks/${slack}/B000/${secret}`;
    const masked = `${receiverUrl()}/hooks/…`;
    const base = `/api/v1/organisations/${orgId}/webhooks`;

    const created = await call(base, { method: "POST", headers: auth, json: { url, name: "slack" } });
    const hook = (await created.json()) as { id: string; url: string };
    expect(hook.url).toBe(url);
    const own = (await (await call(`${base}/${hook.id}`, { headers: auth })).json()) as { url: string };
    expect(own.url).toBe(url);
    const renamed = (await (await call(`${base}/${hook.id}`, { method: "PATCH", headers: auth, json: { name: "slack!" } })).json()) as { url: string };
    expect(renamed.url).toBe(url);
    await call(`${base}/${hook.id}/rotate-secret`, { method: "POST", headers: auth });
    // The receiver answers 410 to a test: flaghook disables the webhook and audits why.
    await scriptMailbox(slack, { default: { status: 410 } });
    const ingest = await call("/api/v1/events", { method: "POST", headers: auth, json: { type: "CUSTOM", log: "hello", related_object: { type: "X" } } });
    expect(ingest.status).toBe(202);

    const logs = async (type: string, count: number) =>
      eventually(async () => {
        const page = (await (await call(`/api/v1/audit/?related_object_type=${type}`, { headers: auth })).json()) as { results: { log: string }[] };
        const mine = page.results.map((r) => r.log).filter((l) => l.includes("slack"));
        return mine.length >= count ? mine : undefined;
      });
    expect(await logs("WEBHOOK", 3)).toEqual([
      `Webhook secret rotated (staged): slack! (${masked})`,
      `Webhook updated (name): slack! (${masked})`,
      `Webhook created: slack (${masked})`,
    ]);
    // The disabling is an operational entry, beside the failed deliveries that met the 410 (masked too).
    const health = await logs("WEBHOOK_HEALTH", 2);
    expect(health.filter((l) => l.startsWith("Webhook disabled:"))).toEqual([`Webhook disabled: slack! (${masked}): receiver answered 410 Gone`]);
    for (const log of health.filter((l) => !l.startsWith("Webhook disabled:"))) {
      expect(log).toMatch(new RegExp(`^Delivery failed: dlv_\\w+ \\(AUDIT_LOG_CREATED\\) to slack! \\(${masked.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\) after 1 attempt: HTTP 410 Gone \\(empty response\\)$`));
    }

    // Nothing flaghook stored for the organisation, and nothing the audit listener received, holds the secret.
    await eventually(async () => (await mailbox(audit)).count >= 5);
    const received = (await mailbox(audit)).requests.map((r) => r.body);
    expect(received.map((body) => (JSON.parse(body) as { data: { log: string } }).data.log)).toContain(`Webhook created: slack (${masked})`);
    expect(received.join("\n")).not.toContain(secret);
    const auditRows = await env.DB.prepare("select log, event from audit_entries where org_id = ?").bind(orgId).all();
    expect(JSON.stringify(auditRows.results)).not.toContain(secret);
    const payloads = await env.DB.prepare("select payload, last_error from deliveries where org_id = ?").bind(orgId).all();
    expect(JSON.stringify(payloads.results)).not.toContain(secret);

    // Lists mask it.
    const list = (await (await call(base, { headers: auth })).json()) as { results: { id: string; url: string }[] };
    expect(list.results.find((w) => w.id === hook.id)!.url).toBe(masked);

    // Pages: the list, deliveries and the delete confirmation mask it; the webhook's own (edit) page shows it.
    const page = await adminPages(key);
    const [dlv] = (await (await call(`${base}/${hook.id}/deliveries`, { headers: auth })).json() as { results: { id: string }[] }).results;
    for (const path of ["/ui/webhooks", `/ui/webhooks/${hook.id}/deliveries`, `/ui/deliveries/${dlv.id}`, `/ui/webhooks/${hook.id}/delete`, "/ui/audit"]) {
      const html = await page(path);
      expect(html, path).not.toContain(secret);
    }
    expect(await page("/ui/webhooks")).toContain(masked);
    expect(await page(`/ui/webhooks/${hook.id}/edit`)).toContain(secret);
  });
});
