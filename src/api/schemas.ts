// Schemas shared by several resources: errors, pages, path ids.
import { z } from "@hono/zod-openapi";
import { ApiError } from "../domain/errors";

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "validation_failed" }),
      message: z.string(),
      details: z.array(z.object({ field: z.string().optional(), message: z.string() })),
    }),
  })
  .openapi("Error");

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ErrorSchema } } });

export const errorResponses = {
  400: errorResponse("Invalid request"),
  401: errorResponse("Missing or invalid credentials"),
  404: errorResponse("Not found (or another organisation's)"),
} as const;

/** Operator routes while ADMIN_TOKEN is unset. */
export const operatorUnsetResponse = { 503: errorResponse("ADMIN_TOKEN is not set on this deployment") } as const;

export const conflictResponse = { 409: errorResponse("Not now: the webhook is disabled, or the delivery is still being attempted (the code says which)") } as const;

export const unavailableResponse = { 503: errorResponse("The event could not be stored durably; retry the request") } as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ results: z.array(item), next: z.string().nullable() });

export const pageSize = z.coerce.number().int().min(1).max(200).default(50);

/** Opaque keyset cursors: base64url of a JSON array of the last row's sort keys. */
export function encodeCursor(keys: readonly (string | number)[]): string {
  return btoa(JSON.stringify(keys)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor<T extends (string | number)[]>(cursor: string, shape: readonly ("string" | "number")[]): T {
  try {
    const keys = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))) as unknown;
    if (Array.isArray(keys) && keys.length === shape.length && keys.every((k, i) => typeof k === shape[i])) return keys as T;
  } catch {
    // falls through to the error below
  }
  throw new ApiError(400, "invalid_cursor", "cursor is not one this API returned", [{ field: "cursor", message: "unreadable cursor" }]);
}

export const numericId = (name: string) =>
  z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).openapi({ param: { name, in: "path" } });
