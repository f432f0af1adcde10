// The URL policy at attempt time: every attempt (first, retry, redelivery, recovery, test) checks the
// webhook's URL against the policy in force now and what its host resolves to now, before anything
// is sent. A refusal is stored as "refused by URL policy" and a reason that says nothing of what the
// target would have answered; a lookup that fails refuses too, and the attempt is retried later.
import { noAnswer } from "../domain/attempt-errors";
import { checkWebhookUrl } from "../domain/url-policy";
import type { Config } from "../env";
import { resolveHost } from "./resolve";

export const URL_POLICY_REFUSAL = "refused by URL policy";

/** The error to store instead of sending, or null when the attempt may be sent. */
export async function urlPolicyRefusal(cfg: Pick<Config, "allowPrivateWebhookUrls" | "dnsResolverUrl">, url: string): Promise<string | null> {
  const verdict = checkWebhookUrl(url, cfg.allowPrivateWebhookUrls);
  if (!verdict.ok) return `${URL_POLICY_REFUSAL}: the URL ${verdict.reason}`;
  if (cfg.allowPrivateWebhookUrls) return null;
  const resolution = await resolveHost(cfg.dnsResolverUrl, verdict.url.hostname);
  switch (resolution.kind) {
    case "public":
      return null;
    case "private":
      return `${URL_POLICY_REFUSAL}: its host resolves to a private address`;
    case "unresolved":
      return `${URL_POLICY_REFUSAL}: ${noAnswer.unresolved(verdict.url.hostname)}`;
    case "lookup_failed":
      return `${URL_POLICY_REFUSAL}: the DNS lookup of its host failed or timed out; will retry`;
  }
}
