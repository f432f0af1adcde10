// Typed Bindings/Variables declared once, and the OpenAPIHono factory every resource uses.
import { OpenAPIHono } from "@hono/zod-openapi";
import { ApiError } from "../domain/errors";
import type { Submitter } from "../domain/provenance";
import type { Env } from "../env";

export interface AppEnv {
  Bindings: Env;
  /** Set by the auth middleware: the caller's organisation, and who the caller is (provenance). */
  Variables: { orgId: number; submitter: Submitter };
}

/** Request validation failures in the one error shape. */
export function validationFailed(issues: readonly { path: PropertyKey[]; message: string }[]): ApiError {
  return new ApiError(
    400,
    "validation_failed",
    issues.length === 1 ? describe(issues[0]) : `${issues.length} fields are invalid`,
    issues.map((i) => ({ field: i.path.join(".") || undefined, message: i.message })),
  );
}

/** A sub-app whose request validation failures use the one error shape. */
export function resource() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationFailed(result.error.issues);
    },
  });
}

function describe(issue: { path: PropertyKey[]; message: string }) {
  const field = issue.path.join(".");
  return field ? `${field}: ${issue.message}` : issue.message;
}
