// The DNS half of the URL policy: names that resolve to private addresses are refused too.
// Workers have no resolver API, so this asks a DNS-over-HTTPS JSON endpoint (DNS_RESOLVER_URL).
import { now } from "../domain/clock";
import { isPrivateAddress } from "../domain/url-policy";

/** What a host name resolves to, as far as the URL policy cares. */
export type Resolution =
  | { kind: "public" }
  | { kind: "private"; address: string }
  | { kind: "unresolved" } // no A or AAAA answer
  | { kind: "lookup_failed" }; // the resolver did not answer in time, or not in DNS JSON

const LOOKUP_TIMEOUT_MS = 3000;
/** A resolution is kept for its DNS TTL, but at least 5 s (so one batch of attempts asks once) and at most 30 s. */
const MIN_CACHE_MS = 5_000;
const MAX_CACHE_MS = 30_000;
const MAX_CACHED_HOSTS = 1000;

const cache = new Map<string, { resolution: Resolution; until: number }>();
const inFlight = new Map<string, Promise<{ resolution: Resolution; ttlSeconds: number }>>();

interface DnsJson {
  Status?: number;
  Answer?: { type: number; data: string; TTL?: number }[];
}

/** Resolves `host` (A and AAAA), briefly cached per isolate; a failed lookup is never cached. */
export async function resolveHost(resolverUrl: string, host: string): Promise<Resolution> {
  const key = `${resolverUrl} ${host}`;
  const hit = cache.get(key);
  if (hit && hit.until > now()) return hit.resolution;
  let pending = inFlight.get(key);
  if (!pending) {
    pending = lookup(resolverUrl, host).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  const { resolution, ttlSeconds } = await pending;
  if (resolution.kind !== "lookup_failed") {
    if (cache.size >= MAX_CACHED_HOSTS) cache.clear();
    cache.set(key, { resolution, until: now() + Math.min(MAX_CACHE_MS, Math.max(MIN_CACHE_MS, ttlSeconds * 1000)) });
  }
  return resolution;
}

async function lookup(resolverUrl: string, host: string): Promise<{ resolution: Resolution; ttlSeconds: number }> {
  const answers: string[] = [];
  let ttlSeconds = Infinity;
  for (const type of ["A", "AAAA"]) {
    let body: DnsJson;
    try {
      const res = await fetch(`${resolverUrl}?name=${encodeURIComponent(host)}&type=${type}`, {
        headers: { accept: "application/dns-json" },
        signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
      });
      if (!res.ok) return { resolution: { kind: "lookup_failed" }, ttlSeconds: 0 };
      body = (await res.json()) as DnsJson;
    } catch {
      return { resolution: { kind: "lookup_failed" }, ttlSeconds: 0 };
    }
    // 0 NOERROR, 3 NXDOMAIN; anything else (SERVFAIL, REFUSED, ...) is a failed lookup.
    if (body.Status !== undefined && body.Status !== 0 && body.Status !== 3) return { resolution: { kind: "lookup_failed" }, ttlSeconds: 0 };
    for (const a of Array.isArray(body.Answer) ? body.Answer : []) {
      if (a.type !== 1 && a.type !== 28) continue;
      answers.push(String(a.data));
      if (typeof a.TTL === "number") ttlSeconds = Math.min(ttlSeconds, a.TTL);
    }
  }
  if (!answers.length) return { resolution: { kind: "unresolved" }, ttlSeconds: 0 };
  const bad = answers.find(isPrivateAddress);
  return { resolution: bad ? { kind: "private", address: bad } : { kind: "public" }, ttlSeconds: Number.isFinite(ttlSeconds) ? ttlSeconds : MAX_CACHE_MS / 1000 };
}

/** Why saving a webhook with this host is refused (the person saving it sees the address), or null. */
export async function privateResolution(resolverUrl: string, host: string): Promise<string | null> {
  const resolution = await resolveHost(resolverUrl, host);
  switch (resolution.kind) {
    case "public":
      return null;
    case "private":
      return `${host} resolves to a private address (${resolution.address})`;
    case "unresolved":
      return `${host} does not resolve`;
    case "lookup_failed":
      return `could not resolve ${host}`;
  }
}
