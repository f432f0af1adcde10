// What an attempt's `error` says, in words a person can act on: the receiver's HTTP answer with the
// first bytes of its body, or what kept the request from being answered (src/delivery/diagnose.ts
// finds out which). Pure: the texts only.

/** How much of a response body an error quotes (the attempt keeps its first 2 KiB too). */
export const QUOTED_CHARS = 200;

/**
 * What Cloudflare's own error statuses mean, when Cloudflare's edge (not the receiver) answered them:
 * a deployed Worker's fetch gets these instead of a connection error.
 */
const CLOUDFLARE_STATUSES: Record<number, string> = {
  520: "the receiver's server answered with something empty or unexpected",
  521: "the receiver's server refused the connection",
  522: "connecting to the receiver's server timed out",
  523: "the receiver's server is unreachable",
  524: "the receiver's server accepted the connection but took too long to answer",
  525: "the TLS handshake with the receiver's server failed",
  526: "the receiver's server presented an invalid TLS certificate",
  530: "the receiver's host could not be reached (for Cloudflare error 1016: its DNS name does not resolve)",
};

/**
 * Reason phrases (RFC 9110 and common extensions), so an error reads the same whether the answer came
 * over HTTP/1.1, which carries a phrase, or HTTP/2, which has none.
 */
const REASONS: Record<number, string> = {
  300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
  400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
  408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large", 414: "URI Too Long",
  415: "Unsupported Media Type", 421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked", 425: "Too Early", 426: "Upgrade Required",
  428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
  500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
  507: "Insufficient Storage", 508: "Loop Detected", 511: "Network Authentication Required",
};

/** `text` on one line and at most QUOTED_CHARS long. */
export function firstBytes(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > QUOTED_CHARS ? `${line.slice(0, QUOTED_CHARS)}…` : line;
}

/**
 * The error of an attempt that got an HTTP answer, or null for a 2xx. `server` is the response's
 * Server header: "cloudflare" marks Cloudflare's own error pages.
 */
export function httpError(answer: { status: number; body: string | null; location: string | null; server: string | null }): string | null {
  const { status } = answer;
  if (status >= 200 && status < 300) return null;
  const head = `HTTP ${status}${REASONS[status] ? ` ${REASONS[status]}` : ""}`;
  if (status >= 300 && status < 400) return `${head}: redirect to ${answer.location ?? "?"} not followed`;
  const cloudflare = answer.server?.toLowerCase() === "cloudflare" ? CLOUDFLARE_STATUSES[status] : undefined;
  const said = answer.body ? firstBytes(answer.body) : "";
  return `${head}${cloudflare ? ` from Cloudflare: ${cloudflare}` : ""}${said ? `: ${said}` : " (empty response)"}`;
}

/** Attempts that got no HTTP answer, by cause. */
export const noAnswer = {
  timedOut: (ms: number) => `timed out after ${ms} ms`,
  unresolved: (host: string) => `could not resolve the host ${host}: the DNS has no address for it`,
  refused: (host: string, port: number) => `connection refused: nothing accepts connections on ${host}:${port}`,
  tls: (host: string, port: number) => `TLS failure: ${host}:${port} accepts connections but the TLS handshake failed (its certificate or TLS setup)`,
  closed: (host: string, port: number) => `closed before answering: ${host}:${port} accepted the request, then closed the connection without an HTTP answer`,
  cutOff: (status: number) => `HTTP ${status}, then the connection closed before the response body ended`,
  unknown: (host: string, port: number, detail: string) => `could not reach ${host}:${port}: ${detail}`,
};
