// A leaf of an organisation's Merkle log: the RFC 8785 canonical JSON of an audit entry's
// immutable fields. Its UTF-8 bytes are what RFC 6962 hashes (SHA-256(0x00 || leaf)). Nothing that
// may change after recording (fanned_out) is in it. The README ("Verifying the audit log") lists
// the fields; this is the one place they are chosen.
import { isoTime } from "./clock";
import { canonicalJson } from "./jcs";

/** The stored columns a leaf is made of (an audit_entries row has them all). */
export interface LeafSource {
  seq: number;
  orgId: number;
  eventId: string;
  type: string;
  createdDate: string;
  receivedAt: number;
  log: string;
  author: string | null;
  apiKeyName: string | null;
  submitterType: string | null;
  submitterId: string | null;
  submitterName: string | null;
  projectId: number | null;
  projectName: string | null;
  environmentId: number | null;
  environmentName: string | null;
  relatedObjectType: string;
  relatedObjectId: number | null;
  relatedObjectUuid: string | null;
  isSystemEvent: boolean;
  event: string;
}

export function auditLeaf(e: LeafSource): string {
  return canonicalJson({
    seq: e.seq,
    organisation: e.orgId,
    event_id: e.eventId,
    type: e.type,
    created_date: e.createdDate,
    received_at: isoTime(e.receivedAt),
    log: e.log,
    author: e.author === null ? null : JSON.parse(e.author),
    api_key_name: e.apiKeyName,
    submitter: e.submitterType === null ? null : { type: e.submitterType, id: e.submitterId, name: e.submitterName },
    project: e.projectId === null ? null : { id: e.projectId, name: e.projectName },
    environment: e.environmentId === null ? null : { id: e.environmentId, name: e.environmentName },
    related_object: { type: e.relatedObjectType, id: e.relatedObjectId, uuid: e.relatedObjectUuid },
    is_system_event: e.isSystemEvent,
    // The change itself, as accepted.
    event: JSON.parse(e.event),
  });
}
