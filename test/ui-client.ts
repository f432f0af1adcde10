// A browser-like client for the admin pages in the Workers runtime: keeps cookies, sends Origin on
// POSTs, reads each page's CSRF token. Requests go through the Worker's own fetch, with the test's env
// or a variant of it (for example with Cloudflare Access configured), and optional headers on every
// request (as Access adds Cf-Access-Jwt-Assertion).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env as testEnv } from "cloudflare:workers";
import worker from "../src/index";
import type { Env } from "../src/env";

export const ORIGIN = "http://flaghook.test";

export async function fetchPage(path: string, init: RequestInit = {}, env: Env = testEnv): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }), env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export class Browser {
  cookies = new Map<string, string>();

  constructor(
    readonly options: { env?: Env; headers?: Record<string, string> } = {},
  ) {}

  get cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async get(path: string, headers: Record<string, string> = {}) {
    return this.remember(await fetchPage(path, { headers: { cookie: this.cookieHeader, ...this.options.headers, ...headers } }, this.options.env));
  }

  async post(path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    return this.remember(
      await fetchPage(
        path,
        {
          method: "POST",
          body,
          headers: { cookie: this.cookieHeader, origin: ORIGIN, "content-type": "application/x-www-form-urlencoded", ...this.options.headers, ...headers },
        },
        this.options.env,
      ),
    );
  }

  /** The CSRF token of the forms on a page. */
  async token(path = "/ui/webhooks"): Promise<string> {
    const html = await (await this.get(path)).text();
    const m = /name="csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error(`no CSRF token on ${path}`);
    return m[1];
  }

  remember(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const name = pair.slice(0, pair.indexOf("="));
      const value = pair.slice(pair.indexOf("=") + 1);
      if (!value || attributes.some((a) => /^\s*max-age=0$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}
