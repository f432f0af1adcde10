// Why an attempt got no HTTP answer. The runtime's fetch says only "Network connection lost." (the
// connection was refused, or closed before the answer) or "internal error; reference = ..." (the name
// did not resolve, the TLS handshake failed, or something else), so after such a failure flaghook asks
// two questions: does the host resolve (the DNS-over-HTTPS resolver of the URL policy), and does
// host:port accept a TCP connection (cloudflare:sockets)? Only attempts that failed this way pay for it.
// On Cloudflare most of these come back as Cloudflare's own 52x answers instead (domain/attempt-errors.ts).
import { connect } from "cloudflare:sockets";
import { noAnswer } from "../domain/attempt-errors";
import { isIpLiteral } from "../domain/url-policy";
import { resolveHost } from "./resolve";

const PROBE_TIMEOUT_MS = 3000;

/** The attempt's error for a fetch that threw `err` (not a timeout). */
export async function explainNoAnswer(url: URL, err: unknown, resolverUrl: string): Promise<string> {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  const message = err instanceof Error ? err.message : String(err);
  // "Network connection lost." follows a TCP connection that was refused or dropped: the name resolved.
  const dropped = /connection lost|disconnected/i.test(message);
  let resolved: boolean | null = isIpLiteral(host) ? true : null;
  if (!dropped && resolved === null) {
    const resolution = await resolveHost(resolverUrl, host);
    if (resolution.kind === "unresolved") return noAnswer.unresolved(host);
    if (resolution.kind !== "lookup_failed") resolved = true;
  }
  const accepts = await acceptsConnections(host, port);
  if (dropped) return accepts ? noAnswer.closed(host, port) : noAnswer.refused(host, port);
  if (accepts) return url.protocol === "https:" ? noAnswer.tls(host, port) : noAnswer.unknown(host, port, message);
  if (resolved) return noAnswer.refused(host, port);
  return noAnswer.unknown(host, port, "the host does not resolve, or nothing accepts connections on it");
}

/** Whether host:port accepts a TCP connection within a few seconds (closed at once). */
async function acceptsConnections(hostname: string, port: number): Promise<boolean> {
  let socket: ReturnType<typeof connect> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    socket = connect({ hostname, port });
    socket.closed.catch(() => undefined);
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS)));
    return await Promise.race([socket.opened.then(() => true, () => false), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    socket?.close().catch(() => undefined);
  }
}
