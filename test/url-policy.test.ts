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

describe("private address ranges (IANA special-purpose registries, and IPv6 forms embedding IPv4)", () => {
  const privateAddresses: [string, string][] = [
    ["0.0.0.0", "this network"], ["10.0.0.1", "private"], ["127.0.0.1", "loopback"], ["127.255.255.254", "loopback"],
    ["100.64.0.1", "CGNAT"], ["100.127.255.255", "CGNAT"], ["169.254.169.254", "link-local, metadata"],
    ["172.16.0.1", "private"], ["172.31.255.255", "private"], ["192.168.0.1", "private"],
    ["192.0.0.8", "IETF protocol assignments"], ["192.0.2.1", "TEST-NET-1"], ["192.88.99.1", "6to4 relay anycast"],
    ["198.18.0.1", "benchmarking"], ["198.19.255.255", "benchmarking"], ["198.51.100.7", "TEST-NET-2"], ["203.0.113.9", "TEST-NET-3"],
    ["224.0.0.1", "multicast"], ["239.255.255.250", "multicast"], ["240.0.0.1", "reserved"], ["255.255.255.255", "broadcast"],
    ["::", "unspecified"], ["::1", "loopback"], ["0:0:0:0:0:0:0:1", "loopback, long form"],
    ["::7f00:1", "IPv4-compatible 127.0.0.1"], ["::8.8.8.8", "IPv4-compatible (deprecated), even of a public address"],
    ["::ffff:127.0.0.1", "mapped loopback"], ["::ffff:7f00:1", "mapped loopback, hex"], ["::ffff:a9fe:a9fe", "mapped metadata"],
    ["::ffff:0:7f00:1", "SIIT-translated loopback"], ["::ffff:0:10.1.2.3", "SIIT-translated private"],
    ["64:ff9b::a00:1", "NAT64 of 10.0.0.1"], ["64:ff9b::127.0.0.1", "NAT64 of loopback"], ["64:ff9b:1::808:808", "local-use NAT64 64:ff9b:1::/48"],
    ["2002:7f00:1::1", "6to4 of 127.0.0.1"], ["2002:c0a8:101::1", "6to4 of 192.168.1.1"], ["2002:a9fe:a9fe::", "6to4 of metadata"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, client 127.0.0.1"], ["2001:0:a00:1:8000:63bf:f7f7:f7f7", "Teredo, server 10.0.0.1"],
    ["2607:f8b0:4005::5efe:7f00:1", "ISATAP identifier of 127.0.0.1"], ["2607:f8b0:4005::200:5efe:c0a8:101", "ISATAP identifier of 192.168.1.1"],
    ["fe80::5efe:a00:1", "link-local ISATAP"], ["fec0::1", "site-local (deprecated)"], ["feff::1", "site-local (deprecated)"],
    ["100::1", "discard-only 100::/64"], ["100::ffff:ffff:ffff:ffff", "discard-only"], ["fc00::1", "unique-local"], ["fdff::1", "unique-local"],
    ["fe80::1", "link-local"], ["fe80::1%eth0", "link-local with a zone"], ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"], ["3fff::1", "documentation 3fff::/20"], ["2001:2::1", "benchmarking"], ["2001:10::1", "ORCHID (deprecated)"],
    ["5f00::1", "SRv6 SIDs"], ["4000::1", "unassigned, outside 2000::/3"], ["e000::1", "unassigned"],
    ["not-an-address", "unreadable"], ["1.2.3", "unreadable"], ["::1::1", "unreadable"], ["1:2:3:4:5:6:7:8:9", "unreadable"],
  ];
  it.each(privateAddresses)("%s is refused (%s)", (ip) => expect(isPrivateAddress(ip)).toBe(true));

  const publicAddresses: [string, string][] = [
    ["8.8.8.8", "public"], ["93.184.216.34", "public"], ["100.63.255.255", "just below CGNAT"], ["100.128.0.1", "just above CGNAT"],
    ["172.32.0.1", "just above 172.16/12"], ["192.0.3.1", "beside TEST-NET-1"], ["198.20.0.1", "beside benchmarking"],
    ["223.255.255.255", "below multicast"],
    ["2606:4700::1111", "global unicast"], ["2607:f8b0:4005::200e", "global unicast"], ["::ffff:8.8.8.8", "mapped public"],
    ["::ffff:0:808:808", "SIIT-translated public"], ["64:ff9b::808:808", "NAT64 of a public address"],
    ["2002:808:808::1", "6to4 of 8.8.8.8"], ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo, public server and client"],
    ["2607:f8b0:4005::5efe:808:808", "ISATAP identifier of a public address"],
  ];
  it.each(publicAddresses)("%s is allowed (%s)", (ip) => expect(isPrivateAddress(ip)).toBe(false));
});
