// SPEC 5 URL policy: what flaghook refuses to POST to, unless ALLOW_PRIVATE_WEBHOOK_URLS is true.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { checkWebhookUrl, isPrivateAddress } from "../src/domain/url-policy";
import { countRows, createOrganisation, receiverUrl } from "./helpers";

/** Production settings: private URLs refused, DNS answered by the test receiver's DoH endpoint. */
const production = () => ({ ...env, ALLOW_PRIVATE_WEBHOOK_URLS: "false", DNS_RESOLVER_URL: `${receiverUrl()}/dns-query` });

async function createHook(path: string, auth: Record<string, string>, url: string, workerEnv: typeof env = production()) {
  const req = new Request(`http://flaghook.test${path}`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ url }),
  });
  return worker.fetch(req, workerEnv, createExecutionContext());
}

const refused: [string, RegExp][] = [
  ["https://localhost/hook", /internal/],
  ["https://127.0.0.1/hook", /IP address/],
  ["https://2130706433/hook", /IP address/], // 127.0.0.1 as a decimal
  ["https://0x7f.1/hook", /IP address/],
  ["https://10.1.2.3/hook", /IP address/],
  ["https://172.16.0.1/hook", /IP address/],
  ["https://172.31.255.255/hook", /IP address/],
  ["https://192.168.1.1/hook", /IP address/],
  ["https://169.254.169.254/latest/meta-data", /IP address/],
  ["https://100.64.0.1/hook", /IP address/],
  ["https://[::1]/hook", /IP address/],
  ["https://[fc00::1]/hook", /IP address/],
  ["https://[fd12:3456::1]/hook", /IP address/],
  ["https://[::ffff:10.0.0.1]/hook", /IP address/],
  ["https://metadata.google.internal/computeMetadata/v1/", /internal/],
  ["https://internal.example.test/hook", /resolves to a private address \(10\.0\.0\.5\)/],
  ["https://metadata.example.test/hook", /resolves to a private address \(169\.254\.169\.254\)/],
  ["https://loopback.example.test/hook", /resolves to a private address/],
  ["https://v6-private.example.test/hook", /resolves to a private address \(fd00::1\)/],
  ["https://nowhere.example.test/hook", /does not resolve/],
  ["file:///etc/passwd", /must use https/],
  ["ftp://example.com/hook", /must use https/],
  ["javascript:alert(1)", /must use https/],
  ["https://user:pass@public.example.test/hook", /credentials/],
  ["http://public.example.test/hook", /must use https/],
  ["not a url", /not a valid absolute URL/],
];

describe("webhook URL policy in production mode", () => {
  it.each(refused)("refuses %s", async (url, reason) => {
    const { orgId, auth } = await createOrganisation();
    const before = await countRows("webhooks");
    const res = await createHook(`/api/v1/organisations/${orgId}/webhooks`, auth, url);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; details: { field: string }[] } };
    expect(body.error.code).toBe("url_not_allowed");
    expect(body.error.message).toMatch(reason);
    expect(body.error.details[0].field).toBe("url");
    expect(await countRows("webhooks")).toBe(before);
  });

  it("accepts an https URL whose name resolves to a public address, for both scopes", async () => {
    const { orgId, auth } = await createOrganisation();
    expect((await createHook(`/api/v1/organisations/${orgId}/webhooks`, auth, "https://public.example.test/hook")).status).toBe(201);
    expect((await createHook(`/api/v1/environments/5/webhooks`, auth, "https://public.example.test/hook")).status).toBe(201);
  });

  it("applies on update as well", async () => {
    const { orgId, auth } = await createOrganisation();
    const created = (await (await createHook(`/api/v1/organisations/${orgId}/webhooks`, auth, "https://public.example.test/a")).json()) as { id: string };
    const req = new Request(`http://flaghook.test/api/v1/organisations/${orgId}/webhooks/${created.id}`, {
      method: "PATCH",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ url: "https://169.254.169.254/" }),
    });
    const res = await worker.fetch(req, production(), createExecutionContext());
    expect(res.status).toBe(400);
    const stored = await env.DB.prepare("select url from webhooks where id = ?").bind(created.id).first("url");
    expect(stored).toBe("https://public.example.test/a");
  });

  it("applies when sending a test to a webhook saved while private URLs were allowed", async () => {
    const { orgId, auth } = await createOrganisation();
    const created = (await (await createHook(`/api/v1/organisations/${orgId}/webhooks`, auth, `${receiverUrl()}/hooks/policy`, env)).json()) as {
      id: string;
    };
    const req = new Request(`http://flaghook.test/api/v1/organisations/${orgId}/webhooks/${created.id}/test`, { method: "POST", headers: auth });
    const res = await worker.fetch(req, production(), createExecutionContext());
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("url_not_allowed");
  });

  it("allows http and loopback when ALLOW_PRIVATE_WEBHOOK_URLS is true (local development)", () => {
    expect(checkWebhookUrl("http://127.0.0.1:8080/hook", true).ok).toBe(true);
    expect(checkWebhookUrl("http://user:pw@127.0.0.1/hook", true)).toEqual({ ok: false, reason: "must not contain credentials" });
    expect(checkWebhookUrl("ftp://127.0.0.1/hook", true).ok).toBe(false);
  });
});

describe("private address ranges", () => {
  it.each([
    "0.0.0.0", "10.0.0.1", "127.0.0.1", "100.64.0.1", "100.127.255.255", "169.254.169.254", "172.16.0.1", "192.168.0.1",
    "224.0.0.1", "255.255.255.255", "::", "::1", "fc00::1", "fdff::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::a00:1",
  ])("%s is private", (ip) => expect(isPrivateAddress(ip)).toBe(true));

  it.each(["8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])(
    "%s is public",
    (ip) => expect(isPrivateAddress(ip)).toBe(false),
  );
});
