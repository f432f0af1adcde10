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

/** True for loopback, private, link-local, CGNAT, unique-local, multicast, metadata and other non-public addresses. */
export function isPrivateAddress(ip: string): boolean {
  const v4 = parseIPv4(ip);
  if (v4) return isPrivateV4(v4);
  const v6 = parseIPv6(ip);
  if (!v6) return true; // unreadable: refuse
  const mapped = v6.slice(0, 5).every((x) => x === 0) && v6[5] === 0xffff;
  if (mapped) return isPrivateV4([v6[6] >> 8, v6[6] & 255, v6[7] >> 8, v6[7] & 255]);
  if (v6.every((x) => x === 0)) return true; // ::
  if (v6.slice(0, 7).every((x) => x === 0) && v6[7] === 1) return true; // ::1
  const first = v6[0];
  if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7 unique-local
  if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((first & 0xff00) === 0xff00) return true; // ff00::/8 multicast
  if (first === 0x64 && v6[1] === 0xff9b) return true; // 64:ff9b::/96 NAT64 can reach IPv4 internals
  if (first === 0x2001 && v6[1] === 0x0db8) return true; // documentation
  return false;
}

function isPrivateV4([a, b]: number[]): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) || // CGNAT
    (a === 169 && b === 254) || // link-local, cloud metadata
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224 // multicast and reserved
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
