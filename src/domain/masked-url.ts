// Webhook URLs can be credentials (Slack-style receivers put their secret in the path), so outside the
// webhook's own API answer and page they are shown masked: scheme, host and a short path prefix.

/** A path segment longer than this is not shown: it is more likely a token than a route. */
const SHOWN_SEGMENT_CHARS = 16;

/**
 * `https://hooks.slack.com/services/T0/B0/XXXX` -> `https://hooks.slack.com/services/…`;
 * `https://example.com/flags` stays as it is; `https://example.com/0123456789abcdef0123` -> `https://example.com/…`.
 * The query and the fragment are never shown (nor credentials, which the URL policy refuses anyway).
 */
export function maskedUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "(not a URL)";
  }
  const origin = `${url.protocol}//${url.host}`;
  const [first = "", ...rest] = url.pathname.slice(1).split("/");
  if (first.length > SHOWN_SEGMENT_CHARS) return `${origin}/…`;
  if (rest.some((segment) => segment !== "")) return `${origin}/${first}/…`;
  if (url.search || url.hash) return `${origin}/${first}…`;
  return `${origin}/${first}${rest.length ? "/" : ""}`;
}
