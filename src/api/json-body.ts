// What every JSON API request body must be before validation sees it: JSON by its content type, and
// valid Unicode. Anything else would skip body validation, or be stored as U+FFFD or as bytes that are
// not UTF-8 in place of what the client sent.
import { createMiddleware } from "hono/factory";
import { ApiError } from "../domain/errors";
import type { AppEnv } from "./context";

export const unsupportedMediaType = () =>
  new ApiError(415, "unsupported_media_type", "send the body as Content-Type: application/json");

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export const jsonBodyOnly = createMiddleware<AppEnv>(async (c, next) => {
  const method = c.req.method;
  const hasBody = c.req.raw.body !== null && c.req.header("content-length") !== "0";
  if ((method === "POST" || method === "PATCH" || method === "PUT") && hasBody) {
    if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(c.req.header("content-type") ?? "")) throw unsupportedMediaType();
    if (!isUnicodeJson(await c.req.arrayBuffer())) {
      throw new ApiError(400, "malformed_json", "request body is not valid UTF-8 JSON (invalid bytes or an unpaired surrogate escape)");
    }
  }
  await next();
});

/** Valid UTF-8 (RFC 8259), and no string or key holding an unpaired surrogate escape such as "\ud800". */
function isUnicodeJson(bytes: ArrayBuffer): boolean {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return false;
  }
  if (!/\\u[dD][89a-fA-F]/.test(text)) return true;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return true; // malformed JSON is the validator's to answer
  }
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === "string" && /\p{Cs}/u.test(v)) return false;
    if (v && typeof v === "object") {
      for (const [key, item] of Object.entries(v)) {
        if (/\p{Cs}/u.test(key)) return false;
        stack.push(item);
      }
    }
  }
  return true;
}
