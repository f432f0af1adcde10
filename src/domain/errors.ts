// The one error shape: {"error": {"code", "message", "details"}} with a stable code.
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface ErrorDetail {
  field?: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** Response headers that go with it, such as Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
export const invalid = (message: string, field?: string) =>
  new ApiError(400, "invalid_request", message, field ? [{ field, message }] : []);
