// The page frame and the small components every admin page uses.
import type { Context } from "hono";
import { raw } from "hono/html";
import type { Child, PropsWithChildren } from "hono/jsx";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { CSRF_FIELD, type Session } from "./session";
import { CSS } from "./styles";

/**
 * A strict Content-Security-Policy for the pages: nothing loads from anywhere, no script runs,
 * and the one inline stylesheet is allowed by a per-response nonce.
 */
export const pageHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    styleSrc: [NONCE],
    imgSrc: ["'self'", "data:"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
});

type Section = "audit" | "flags" | "webhooks" | "flagsmith" | "docs" | "sign-in";

interface PageProps {
  title: string;
  nonce: string;
  session?: Session | null;
  section?: Section;
}

function Page({ title, nonce, session, section, children }: PropsWithChildren<PageProps>) {
  const link = (href: string, label: string, s: Section) => (
    <a href={href} aria-current={section === s ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="referrer" content="same-origin" />
          <title>{title} · flaghook</title>
          <style nonce={nonce}>{raw(CSS)}</style>
        </head>
        <body>
          <header class="top">
            <a class="brand" href={session ? "/ui/audit" : "/ui/sign-in"}>
              flaghook
            </a>
            <nav>
              {session && link("/ui/audit", "Audit log", "audit")}
              {session && link("/ui/flags", "Flags", "flags")}
              {session && link("/ui/webhooks", "Webhooks", "webhooks")}
              {session && link("/ui/flagsmith", "Flagsmith", "flagsmith")}
              {!session && section === "docs" && <a href="/ui">Admin pages</a>}
              {link("/docs", "API docs", "docs")}
            </nav>
            {session && (
              <div class="who">
                <span>
                  {session.orgName}{" "}
                  <span class="muted">
                    (organisation {session.orgId}, {session.email ?? `key “${session.keyName}”`})
                  </span>
                </span>
                {session.email && <a href="/ui/choose-organisation">Switch organisation</a>}
                <form method="post" action="/ui/sign-out">
                  <Csrf session={session} />
                  <button type="submit">Sign out</button>
                </form>
              </div>
            )}
          </header>
          <main>{children}</main>
        </body>
      </html>
    </>
  );
}

/** Renders a page with the session's frame; authenticated pages are never cached. */
export function render(
  c: Context,
  title: string,
  body: Child,
  options: { status?: ContentfulStatusCode; section?: Section } = {},
) {
  const session = (c.get("session") as Session | undefined) ?? null;
  c.header("Cache-Control", "no-store");
  return c.html(
    <Page title={title} nonce={c.get("secureHeadersNonce") ?? ""} session={session} section={options.section}>
      {body}
    </Page>,
    options.status ?? 200,
  );
}

export function Csrf({ session, token }: { session?: Session; token?: string }) {
  return <input type="hidden" name={CSRF_FIELD} value={token ?? session?.csrf ?? ""} />;
}

/**
 * A one-button POST form: every change in the pages is a POST with the CSRF token. A disabled button
 * says why beside it (`why`), in words a phone shows too (a tooltip would not).
 */
export function PostButton(props: {
  action: string;
  session: Session;
  label: string;
  kind?: "secondary" | "danger";
  disabled?: boolean;
  why?: string;
  fields?: Record<string, string>;
}) {
  const whyId = props.disabled && props.why ? `why-${props.action.replace(/[^A-Za-z0-9]+/g, "-")}` : undefined;
  return (
    <form method="post" action={props.action} class={whyId ? "with-why" : undefined}>
      <Csrf session={props.session} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.kind} disabled={props.disabled} aria-describedby={whyId}>
        {props.label}
      </button>
      {whyId && (
        <span class="why small muted" id={whyId}>
          {props.why}
        </span>
      )}
    </form>
  );
}

export function Notice({ kind, children }: PropsWithChildren<{ kind: "ok" | "bad" | "info" }>) {
  return (
    <div class={`notice ${kind}`} role={kind === "bad" ? "alert" : "status"}>
      {children}
    </div>
  );
}

/** ISO time shown as "2024-05-01 10:20:30 UTC", with the exact value on hover. */
export function Time({ iso }: { iso: string | null }) {
  if (!iso) return <span class="muted">—</span>;
  const shown = iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") + " UTC";
  return (
    <time datetime={iso} title={iso}>
      {shown}
    </time>
  );
}

export function StatusBadge({ status }: { status: string }) {
  const kind = status === "delivered" || status === "enabled" ? "ok" : status === "failed" || status === "disabled" ? "bad" : "wait";
  return <span class={`badge ${kind}`}>{status}</span>;
}

/** Shows any JSON-ish value the way a person reads it: strings quoted, null as null. */
export function showValue(value: unknown): string {
  if (value === undefined) return "—";
  return JSON.stringify(value);
}
