// Request bodies. Every route reads its body only after the caller is authenticated (an
// unauthenticated request never has its body read, parsed or walked), never more than a limit,
// and never leaves a body half-read: a streamed (chunked) body over the limit is read to its end
// and discarded before the 413. `wrangler dev`'s proxy breaks the NEXT request when a Worker answers
// while a request body is half-read (cloudflare/workers-sdk#15709); production is unaffected.
//
// What every JSON API request body must be before validation sees it: JSON by its content type, and
// valid Unicode. Anything else would skip body validation, or be stored as U+FFFD or as bytes that are
// not UTF-8 in place of what the client sent.
import type { Context, HonoRequest } from "hono";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../domain/errors";
import type { AppEnv } from "./context";

export const MAX_BODY_BYTES = 256 * 1024;
/**
 * Flagsmith puts no limit on feature descriptions, and sends each twice in a FLAG_UPDATED. Its bodies
 * may be as large as D1 can store (ingest/accept.ts MAX_STORED_BYTES decides, after escaping).
 */
export const INBOUND_MAX_BODY_BYTES = 2_000_000;
/** How much of an oversized streamed body is read and discarded; past this the request is cut off. */
export const DRAIN_MAX_BYTES = 8 * 1024 * 1024;

export const unsupportedMediaType = () =>
  new ApiError(415, "unsupported_media_type", "send the body as Content-Type: application/json");

export const payloadTooLarge = (maxBytes = MAX_BODY_BYTES, what = "request bodies") =>
  new ApiError(413, "payload_too_large", `${what} are limited to ${maxBytes} bytes`);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The whole body, at most `maxBytes`, read once into Hono's body cache (where validators and
 * handlers read it). A declared Content-Length over the limit is refused without reading a byte;
 * a streamed body over it is drained, then refused.
 */
export async function readBodyWithin(req: HonoRequest, maxBytes: number, tooLarge: () => Error): Promise<ArrayBuffer> {
  const raw = req.raw;
  if (!raw.body) return new ArrayBuffer(0);
  const declared = raw.headers.get("content-length");
  if (declared !== null && !raw.headers.has("transfer-encoding")) {
    if (Number(declared) > maxBytes) throw tooLarge();
    return req.arrayBuffer(); // the runtime holds a body to its declared length
  }
  const reader = raw.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await drain(reader, size);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  req.raw = new Request(raw, { body });
  return req.arrayBuffer();
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, read: number): Promise<void> {
  while (read <= DRAIN_MAX_BYTES) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
}

/**
 * Reads a POST/PATCH/PUT body after checking its media type, size and encoding. Call it only once
 * the caller is authenticated.
 */
export async function acceptJsonBody(c: Context, maxBytes = MAX_BODY_BYTES, what = "request bodies"): Promise<void> {
  const method = c.req.method;
  if (method !== "POST" && method !== "PATCH" && method !== "PUT") return;
  if (c.req.raw.body === null || c.req.raw.bodyUsed || c.req.header("content-length") === "0") return;
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(c.req.header("content-type") ?? "")) throw unsupportedMediaType();
  const bytes = await readBodyWithin(c.req, maxBytes, () => payloadTooLarge(maxBytes, what));
  if (!isUnicodeJson(bytes)) {
    throw new ApiError(400, "malformed_json", "request body is not valid UTF-8 JSON (invalid bytes or an unpaired surrogate escape)");
  }
}

/** `acceptJsonBody` as middleware: mounted after each resource's authentication. */
export const jsonBodyOnly = createMiddleware<AppEnv>(async (c, next) => {
  await acceptJsonBody(c);
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
