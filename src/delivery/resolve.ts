// The DNS half of the URL policy: names that resolve to private addresses are refused too.
// Workers have no resolver API, so this asks a DNS-over-HTTPS JSON endpoint (DNS_RESOLVER_URL).
import { isPrivateAddress } from "../domain/url-policy";

export async function privateResolution(resolverUrl: string, host: string): Promise<string | null> {
  const answers: string[] = [];
  for (const type of ["A", "AAAA"]) {
    const url = `${resolverUrl}?name=${encodeURIComponent(host)}&type=${type}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(3000) });
    } catch {
      return `could not resolve ${host}`;
    }
    if (!res.ok) return `could not resolve ${host}`;
    const body = (await res.json()) as { Answer?: { type: number; data: string }[] };
    for (const a of body.Answer ?? []) if (a.type === 1 || a.type === 28) answers.push(a.data);
  }
  if (!answers.length) return `${host} does not resolve`;
  const bad = answers.find(isPrivateAddress);
  return bad ? `${host} resolves to a private address (${bad})` : null;
}
