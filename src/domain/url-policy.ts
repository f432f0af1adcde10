// Which webhook URLs flaghook will POST to (SPEC 5, URL policy). Pure: DNS answers are passed in.

export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

const BLOCKED_NAMES = [/^localhost$/, /\.localhost$/, /\.local$/, /\.internal$/, /^metadata$/, /^metadata\.google\.internal$/];

/** Checks scheme, credentials and literal hosts; `hostIsPrivate` then covers resolved names. */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): UrlVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "is not a valid absolute URL" };
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return { ok: false, reason: allowPrivate ? "must use http or https" : "must use https" };
  }
  if (url.username || url.password) return { ok: false, reason: "must not contain credentials" };
  if (raw.length > 2048) return { ok: false, reason: "must be at most 2048 characters" };
  if (allowPrivate) return { ok: true, url };
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (BLOCKED_NAMES.some((re) => re.test(host))) return { ok: false, reason: `host ${host} is internal` };
  const literal = host.startsWith("[") ? host.slice(1, -1) : host;
  if (isIpLiteral(literal)) return { ok: false, reason: `host ${host} is an IP address; use a DNS name` };
  return { ok: true, url };
}

export function isIpLiteral(host: string): boolean {
  return parseIPv4(host) !== null || host.includes(":");
}

/**
 * True for every address a webhook must not reach: loopback, private, link-local, CGNAT, unique-local,
 * multicast, metadata, documentation, benchmarking, discard and reserved ranges (IANA's IPv4 and IPv6
 * Special-Purpose Address Registries), and every IPv6 form that embeds such an IPv4 address.
 * An address that cannot be read is refused.
 */
export function isPrivateAddress(ip: string): boolean {
  const v4 = parseIPv4(ip);
  if (v4) return isPrivateV4(v4);
  const v6 = parseIPv6(ip);
  return v6 ? isPrivateV6(v6) : true;
}

/** [first octets, prefix length] of IPv4 ranges that are not globally reachable. */
const PRIVATE_V4: [number[], number][] = [
  [[0], 8], // "this network"
  [[10], 8],
  [[100, 64], 10], // CGNAT
  [[127], 8],
  [[169, 254], 16], // link-local, cloud metadata
  [[172, 16], 12],
  [[192, 0, 0], 24], // IETF protocol assignments
  [[192, 0, 2], 24], // TEST-NET-1
  [[192, 88, 99], 24], // 6to4 relay anycast (deprecated)
  [[192, 168], 16],
  [[198, 18], 15], // benchmarking
  [[198, 51, 100], 24], // TEST-NET-2
  [[203, 0, 113], 24], // TEST-NET-3
  [[224], 3], // multicast 224/4, reserved 240/4, broadcast
];

function isPrivateV4(v4: readonly number[]): boolean {
  const value = ((v4[0] << 24) | (v4[1] << 16) | (v4[2] << 8) | v4[3]) >>> 0;
  return PRIVATE_V4.some(([octets, bits]) => {
    const base = (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8)) >>> 0;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return ((value & mask) >>> 0) === base;
  });
}

/** The IPv4 address in two 16-bit groups. */
const v4Of = (high: number, low: number) => [high >> 8, high & 255, low >> 8, low & 255];

function isPrivateV6(g: readonly number[]): boolean {
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT "translated"): the IPv4 address decides.
  if (zero(0, 5) && g[5] === 0xffff) return isPrivateV4(v4Of(g[6], g[7]));
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return isPrivateV4(v4Of(g[6], g[7]));
  // 64:ff9b::/96 well-known NAT64 prefix: the IPv4 address decides. 64:ff9b:1::/48 is for local NAT64.
  if (g[0] === 0x64 && g[1] === 0xff9b) return !zero(2, 6) || isPrivateV4(v4Of(g[6], g[7]));
  // 2002::/16 6to4: the IPv4 address is in bits 16-47.
  if (g[0] === 0x2002) return isPrivateV4(v4Of(g[1], g[2]));
  // 2001::/32 Teredo: server IPv4 in bits 32-63, client IPv4 inverted in the last 32 bits.
  if (g[0] === 0x2001 && g[1] === 0) return isPrivateV4(v4Of(g[2], g[3])) || isPrivateV4(v4Of(g[6] ^ 0xffff, g[7] ^ 0xffff));
  // ISATAP interface identifier (RFC 5214) under any prefix: ...:0:5efe:a.b.c.d or ...:200:5efe:a.b.c.d.
  if ((g[4] & 0xfdff) === 0 && g[5] === 0x5efe && isPrivateV4(v4Of(g[6], g[7]))) return true;
  // Only 2000::/3 is global unicast: ::/8 (unspecified, loopback, IPv4-compatible), 100::/64 discard,
  // 5f00::/16 SRv6, fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast
  // and the unassigned rest all fall outside it.
  if ((g[0] & 0xe000) !== 0x2000) return true;
  return (
    (g[0] === 0x2001 && g[1] < 0x200) || // 2001::/23 IETF protocol assignments (benchmarking, ORCHID, anycast)
    (g[0] === 0x2001 && g[1] === 0x0db8) || // documentation
    (g[0] & 0xfff0) === 0x3ff0 // 3fff::/20 documentation
  );
}

export function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const nums = parts.map(Number);
  return nums.every((n) => n <= 255) ? nums : null;
}

function parseIPv6(s: string): number[] | null {
  let text = s.split("%")[0];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = parseIPv4(tail[1]);
    if (!v4) return null;
    text = text.slice(0, -tail[1].length) + `${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}
