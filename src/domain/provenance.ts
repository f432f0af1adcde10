// Provenance: who submitted an audit entry, recorded by flaghook from the credential that made the
// request, never from the request body; and the related-object types only flaghook may write.

export const SUBMITTER_TYPES = ["api_key", "inbound_source", "operator", "person", "flaghook"] as const;
export type SubmitterType = (typeof SUBMITTER_TYPES)[number];

/**
 * `api_key`: the key's id and name. `inbound_source`: the source's id and name. `operator`: the
 * ADMIN_TOKEN holder. `person`: someone signed in to the admin pages. `flaghook`: flaghook itself.
 */
export interface Submitter {
  type: SubmitterType;
  id: string | null;
  name: string | null;
}

export const FLAGHOOK: Submitter = { type: "flaghook", id: null, name: "flaghook" };
export const OPERATOR: Submitter = { type: "operator", id: null, name: "operator" };

export const apiKeySubmitter = (key: { id: string; name: string }): Submitter => ({ type: "api_key", id: key.id, name: key.name });
/** Someone Cloudflare Access signed in to the admin pages, named by their email. */
export const personSubmitter = (email: string): Submitter => ({ type: "person", id: email, name: email });
export const inboundSourceSubmitter = (source: { id: string; name: string }): Submitter => ({ type: "inbound_source", id: source.id, name: source.name });

/** Related-object types of flaghook's own (system) entries; no API key or inbound source may use them. */
export const RESERVED_RELATED_TYPES = ["WEBHOOK", "WEBHOOK_HEALTH", "API_KEY", "INBOUND_SOURCE", "ORGANISATION", "AUDIT_LOG", "AUDIT_CHECKPOINT"] as const;
export type ReservedRelatedType = (typeof RESERVED_RELATED_TYPES)[number];

export const isReservedType = (type: string | null | undefined): boolean =>
  type != null && (RESERVED_RELATED_TYPES as readonly string[]).includes(type.toUpperCase());
