// Driving flaghook's API from the benches: an organisation with a key, webhooks, change events.
import { randomBytes } from "node:crypto";
import { workerConfig } from "./snapshot.mjs";
import { startWorker } from "./wrangler.mjs";

export const ADMIN_TOKEN = "bench-admin-token";

/**
 * Vars every flaghook bench runs with: loopback receivers allowed, fixed operator token, a
 * checkpoint signing key (`sealing: false` leaves it out: the audit log is then not sealed).
 */
export const flaghookVars = ({ sealing = true } = {}) => ({
  ADMIN_TOKEN,
  SECRETS_KEY: randomBytes(32).toString("base64"),
  ALLOW_PRIVATE_WEBHOOK_URLS: "true",
  AUDIT_LOG_ORIGIN: "flaghook.bench",
  ...(sealing ? { AUDIT_SIGNING_KEY: randomBytes(32).toString("base64") } : {}),
});

export const PROJECT = { id: 12, name: "Flagsmith Website" };
export const ENVIRONMENT = { id: 23, name: "Development", api_key: "bench_env_key_development" };

export async function api(base, path, { method = "GET", headers = {}, json } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...headers, ...(json === undefined ? {} : { "content-type": "application/json" }) },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/** A new organisation and an API key for it; `auth` is the header the key is used with. */
export async function createOrganisation(base, name = "Bench") {
  const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const org = await api(base, "/api/v1/organisations", { method: "POST", headers: admin, json: { name } });
  const key = await api(base, `/api/v1/organisations/${org.id}/api-keys`, { method: "POST", headers: admin, json: { name: "bench" } });
  return { orgId: org.id, key: key.key, auth: { Authorization: `Api-Key ${key.key}` } };
}

/**
 * An organisation webhook (AUDIT_LOG_CREATED only: since issue 10 a new one also gets flag changes by
 * default, as Flagsmith's do; the bench keeps one delivery per event to it) posting to `url`.
 */
export const createOrganisationWebhook = (base, org, url, name = "audit log") =>
  api(base, `/api/v1/organisations/${org.orgId}/webhooks`, { method: "POST", headers: org.auth, json: { url, name, event_types: ["AUDIT_LOG_CREATED"] } });

/** An environment webhook (FLAG_UPDATED / FLAG_DELETED) posting to `url`; answers {id, secret}. */
export const createEnvironmentWebhook = (base, org, environmentId, url, name = "environment") =>
  api(base, `/api/v1/environments/${environmentId}/webhooks`, { method: "POST", headers: org.auth, json: { url, name } });

/**
 * A FLAG_STATE_UPDATED event of about 600 bytes as JSON; its feature is named bench_<n> so a
 * receiver can tell which event a delivery belongs to.
 */
export function flagEvent(n) {
  return {
    type: "FLAG_STATE_UPDATED",
    author: { id: 3, email: "kyle.johnson@example.com", first_name: "Kyle", last_name: "Johnson" },
    project: PROJECT,
    environment: ENVIRONMENT,
    feature: {
      id: 7168,
      name: `bench_${n}`,
      type: "CONFIG",
      description: "Shows the butter bar with the current promotion on the marketing site",
      default_enabled: false,
      initial_value: null,
      created_date: "2021-02-10T20:03:43.348556Z",
    },
    previous_state: { enabled: false, feature_state_value: "spring sale: 10% off every plan" },
    new_state: { enabled: true, feature_state_value: "summer sale: 20% off every annual plan" },
  };
}

/**
 * flaghook under `wrangler dev` with its consumers, on `port` (inspector on port + 1), migrated and
 * ready; `vars` are laid over flaghookVars().
 */
export const startFlaghook = ({ label, port, proxy, vars = {} }) =>
  startWorker({
    label,
    config: workerConfig("flaghook"),
    port,
    inspectorPort: port + 1,
    d1: "flaghook",
    proxy: proxy === "on",
    readyPath: "/healthz",
    vars: { ...flaghookVars(), ...vars },
  });
