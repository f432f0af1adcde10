// Archive segments in R2: an organisation's entries seq_lo..seq_hi as NDJSON (one audit_entries row
// per line, in seq order), gzipped. Writing one, and reading one back checked against the SHA-256
// its index row (audit_segments) recorded: a segment that does not match is never used.
import { hex } from "../domain/crypto";
import type { AuditEntryRow, AuditSegmentRow } from "../db/schema";

export const segmentKey = (orgId: number, seqLo: number, seqHi: number) =>
  `archive/${orgId}/${String(seqLo).padStart(20, "0")}-${String(seqHi).padStart(20, "0")}.ndjson.gz`;

export class SegmentUnreadable extends Error {
  constructor(
    readonly segment: Pick<AuditSegmentRow, "key" | "seqLo" | "seqHi">,
    reason: string,
  ) {
    super(`archive segment ${segment.key} (entries ${segment.seqLo}..${segment.seqHi}) ${reason}`);
  }
}

const sha256Hex = async (bytes: Uint8Array) => hex(await crypto.subtle.digest("SHA-256", bytes));

async function pipe(bytes: Uint8Array | ReadableStream<Uint8Array>, transform: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const stream = bytes instanceof Uint8Array ? new Blob([bytes]).stream() : bytes;
  return new Uint8Array(await new Response(stream.pipeThrough(transform)).arrayBuffer());
}

export interface EncodedSegment {
  ndjsonSha256: string;
  gzipped: Uint8Array;
}

/** The rows as the segment's bytes: NDJSON, its SHA-256, gzipped. */
export async function encodeSegment(rows: readonly AuditEntryRow[]): Promise<EncodedSegment> {
  const ndjson = new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return { ndjsonSha256: await sha256Hex(ndjson), gzipped: await pipe(ndjson, new CompressionStream("gzip")) };
}

/** A stored segment's rows, after checking it decompresses to the NDJSON its index row names. */
export async function readSegment(bucket: R2Bucket, segment: Pick<AuditSegmentRow, "key" | "seqLo" | "seqHi" | "sha256" | "entries">): Promise<AuditEntryRow[]> {
  const object = await bucket.get(segment.key);
  if (!object) throw new SegmentUnreadable(segment, "is missing from R2");
  let ndjson: Uint8Array;
  try {
    ndjson = await pipe(object.body, new DecompressionStream("gzip"));
  } catch {
    throw new SegmentUnreadable(segment, "does not decompress");
  }
  if ((await sha256Hex(ndjson)) !== segment.sha256) throw new SegmentUnreadable(segment, "does not match the SHA-256 recorded when it was written");
  const rows = new TextDecoder().decode(ndjson).split("\n").filter(Boolean).map((line) => JSON.parse(line) as AuditEntryRow);
  if (rows.length !== segment.entries) throw new SegmentUnreadable(segment, `holds ${rows.length} entries, not ${segment.entries}`);
  return rows;
}
