// Bindings and the one place configuration is read and parsed.
import type { TimeLimits } from "./domain/audit";
import type { DeliveryMessage, IngestMessage } from "./queues";

export interface Env {
  DB: D1Database;
  INGEST_QUEUE: Queue<IngestMessage>;
  DELIVERY_QUEUE: Queue<DeliveryMessage>;
  /** Signed checkpoints of every organisation's audit log (bucket flaghook-audit). */
  AUDIT_BUCKET: R2Bucket;
  /** Optional Workers Analytics Engine dataset: a data point per delivery attempt (src/health/analytics.ts). */
  DELIVERY_ANALYTICS?: AnalyticsEngineDataset;
  ADMIN_TOKEN?: string;
  SECRETS_KEY?: string;
  ALLOW_PRIVATE_WEBHOOK_URLS?: string;
  RETRY_SCHEDULE?: string;
  RETRY_THROTTLE_FLOOR_SECONDS?: string;
  DELIVERY_TIMEOUT_MS?: string;
  DELIVERY_RETENTION_DAYS?: string;
  AUDIT_RETENTION_DAYS?: string;
  AUDIT_HOT_DAYS?: string;
  SECRET_GRACE_HOURS?: string;
  WEBHOOK_FAILURE_DISABLE_DAYS?: string;
  SESSION_TTL_HOURS?: string;
  DNS_RESOLVER_URL?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
  ACCESS_JWKS_URL?: string;
  UI_API_KEY_SIGN_IN?: string;
  MAX_WEBHOOKS_PER_ENVIRONMENT?: string;
  MAX_WEBHOOKS_PER_ORGANISATION?: string;
  WEBHOOK_ATTEMPTS_PER_SECOND?: string;
  OPERATOR_AUTH_FAILURES_PER_MINUTE?: string;
  /** Cloudflare's Rate Limiting binding for wrong operator tokens, when configured in wrangler.toml. */
  OPERATOR_AUTH_LIMITER?: RateLimit;
  AUDIT_SIGNING_KEY?: string;
  AUDIT_LOG_ORIGIN?: string;
  AUDIT_MAX_FUTURE_SECONDS?: string;
  AUDIT_MAX_PAST_DAYS?: string;
}

/** Cloudflare Access in front of the admin pages: who signs the tokens, for which application. */
export interface AccessConfig {
  /** The `iss` every token must carry: https://<team domain>. */
  issuer: string;
  /** The application's AUD tag; a token's `aud` must include it. */
  audience: string;
  jwksUrl: string;
}

export interface Config {
  adminToken: string | null;
  secretsKey: string | null;
  allowPrivateWebhookUrls: boolean;
  /** Seconds to wait before attempt 2, 3, ...; its length + 1 is the number of attempts. */
  retrySchedule: number[];
  /** The least wait after a 429 or a timeout. */
  throttleFloorSeconds: number;
  deliveryTimeoutMs: number;
  deliveryRetentionDays: number;
  auditRetentionDays: number | null;
  /** Entries received longer ago than this move to the R2 archive; null: all stay in D1. */
  auditHotDays: number | null;
  secretGraceMs: number;
  failureDisableMs: number;
  sessionTtlMs: number;
  /** DNS-over-HTTPS JSON endpoint used to refuse webhook hosts that resolve to private addresses. */
  dnsResolverUrl: string;
  /** Set when ACCESS_TEAM_DOMAIN and ACCESS_AUD are: the admin pages then sign people in through Access only. */
  access: AccessConfig | null;
  /** Signing in to the admin pages with an organisation API key (never with Access configured). */
  uiApiKeySignIn: boolean;
  /** Webhooks one environment may have; 0: no cap. */
  maxWebhooksPerEnvironment: number;
  /** Webhooks one organisation may have, of both scopes; 0: no cap. */
  maxWebhooksPerOrganisation: number;
  /** Attempts one webhook may make a second, counted over 10-second windows; 0: no limit. */
  webhookAttemptsPerSecond: number;
  /** Wrong operator tokens a client may send a minute (in-isolate count, without OPERATOR_AUTH_LIMITER); 0: no limit. */
  operatorAuthFailuresPerMinute: number;
  /** Base64 of the 32-byte Ed25519 seed that signs checkpoints; null: the log is not sealed. */
  auditSigningKey: string | null;
  /** Names this deployment in checkpoint origins: `<auditLogOrigin>/org/<id>`. */
  auditLogOrigin: string;
  /** Claimed times further than these from receipt are kept, and marked (`time_warning`). */
  auditTimeLimits: TimeLimits;
}

export const DEFAULT_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function positiveNumber(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

/** ACCESS_TEAM_DOMAIN as a bare host ("acme.cloudflareaccess.com"), however it was written. */
function accessConfig(env: Env): AccessConfig | null {
  const domain = (env.ACCESS_TEAM_DOMAIN ?? "").trim().replace(/^https:\/\//i, "").replace(/\/+$/, "").toLowerCase();
  const audience = (env.ACCESS_AUD ?? "").trim();
  if (!domain && !audience) return null;
  if (!domain || !audience) throw new Error("ACCESS_TEAM_DOMAIN and ACCESS_AUD must be set together (or neither)");
  if (!/^[a-z0-9.-]+(:\d+)?$/.test(domain)) throw new Error(`ACCESS_TEAM_DOMAIN must be a host name such as acme.cloudflareaccess.com, got "${env.ACCESS_TEAM_DOMAIN}"`);
  const issuer = `https://${domain}`;
  return { issuer, audience, jwksUrl: env.ACCESS_JWKS_URL?.trim() || `${issuer}/cdn-cgi/access/certs` };
}

/** A schema-less URL prefix (host, optionally a path) without spaces or "+", as signed-note key names need. */
function logOrigin(raw: string | undefined): string {
  const origin = (raw || "flaghook").trim().replace(/\/+$/, "");
  if (!/^[^\s+]+$/.test(origin) || /^[a-z]+:\/\//i.test(origin)) {
    throw new Error(`AUDIT_LOG_ORIGIN must be a host name such as flaghook.example.com (no scheme, spaces or "+"), got "${raw}"`);
  }
  return origin;
}

const cache = new WeakMap<Env, Config>();

/** Parses the Worker's vars once per env object; a bad value fails loudly at the first request. */
export function config(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const schedule = env.RETRY_SCHEDULE
    ? env.RETRY_SCHEDULE.split(",").map((s) => positiveNumber(s.trim(), 0, "RETRY_SCHEDULE"))
    : DEFAULT_RETRY_SCHEDULE;
  const access = accessConfig(env);
  const auditDays = env.AUDIT_RETENTION_DAYS ? positiveNumber(env.AUDIT_RETENTION_DAYS, 0, "AUDIT_RETENTION_DAYS") : null;
  const hotDays = env.AUDIT_HOT_DAYS ? positiveNumber(env.AUDIT_HOT_DAYS, 0, "AUDIT_HOT_DAYS") : null;
  const parsed: Config = {
    adminToken: env.ADMIN_TOKEN || null,
    secretsKey: env.SECRETS_KEY || null,
    allowPrivateWebhookUrls: env.ALLOW_PRIVATE_WEBHOOK_URLS === "true",
    retrySchedule: schedule,
    throttleFloorSeconds: positiveNumber(env.RETRY_THROTTLE_FLOOR_SECONDS, 60, "RETRY_THROTTLE_FLOOR_SECONDS"),
    deliveryTimeoutMs: positiveNumber(env.DELIVERY_TIMEOUT_MS, 10_000, "DELIVERY_TIMEOUT_MS"),
    deliveryRetentionDays: positiveNumber(env.DELIVERY_RETENTION_DAYS, 30, "DELIVERY_RETENTION_DAYS"),
    auditRetentionDays: auditDays && auditDays > 0 ? auditDays : null,
    auditHotDays: hotDays && hotDays > 0 ? hotDays : null,
    secretGraceMs: positiveNumber(env.SECRET_GRACE_HOURS, 24, "SECRET_GRACE_HOURS") * HOUR,
    failureDisableMs: positiveNumber(env.WEBHOOK_FAILURE_DISABLE_DAYS, 5, "WEBHOOK_FAILURE_DISABLE_DAYS") * DAY,
    dnsResolverUrl: env.DNS_RESOLVER_URL || "https://cloudflare-dns.com/dns-query",
    sessionTtlMs: positiveNumber(env.SESSION_TTL_HOURS, 12, "SESSION_TTL_HOURS") * HOUR,
    access,
    uiApiKeySignIn: access === null && env.UI_API_KEY_SIGN_IN !== "false",
    maxWebhooksPerEnvironment: Math.floor(positiveNumber(env.MAX_WEBHOOKS_PER_ENVIRONMENT, 50, "MAX_WEBHOOKS_PER_ENVIRONMENT")),
    maxWebhooksPerOrganisation: Math.floor(positiveNumber(env.MAX_WEBHOOKS_PER_ORGANISATION, 500, "MAX_WEBHOOKS_PER_ORGANISATION")),
    webhookAttemptsPerSecond: positiveNumber(env.WEBHOOK_ATTEMPTS_PER_SECOND, 1000, "WEBHOOK_ATTEMPTS_PER_SECOND"),
    operatorAuthFailuresPerMinute: Math.floor(positiveNumber(env.OPERATOR_AUTH_FAILURES_PER_MINUTE, 10, "OPERATOR_AUTH_FAILURES_PER_MINUTE")),
    auditSigningKey: env.AUDIT_SIGNING_KEY || null,
    auditLogOrigin: logOrigin(env.AUDIT_LOG_ORIGIN),
    auditTimeLimits: {
      maxFutureMs: positiveNumber(env.AUDIT_MAX_FUTURE_SECONDS, 300, "AUDIT_MAX_FUTURE_SECONDS") * 1000,
      maxPastMs: positiveNumber(env.AUDIT_MAX_PAST_DAYS, 7, "AUDIT_MAX_PAST_DAYS") * DAY,
    },
  };
  cache.set(env, parsed);
  return parsed;
}
