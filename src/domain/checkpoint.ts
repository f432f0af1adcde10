// Checkpoints as C2SP specifies them: a tlog-checkpoint body ("<origin>\n<tree size>\n<base64 root
// hash>\n") in a signed note (C2SP signed-note) with one Ed25519 signature line, and the verifier
// key ("vkey") that checks it. Signing itself is src/audit/signer.ts (WebCrypto).
import { concat, fromBase64, hex, toBase64, utf8 } from "./crypto";

/** signed-note: the signature type byte of Ed25519 keys. */
const ED25519 = 0x01;

/** The origin of an organisation's log: the deployment, then the organisation. */
export const logOrigin = (deployment: string, orgId: number) => `${deployment}/org/${orgId}`;

export function checkpointBody(origin: string, treeSize: number, rootHash: Uint8Array): string {
  return `${origin}\n${treeSize}\n${toBase64(rootHash)}\n`;
}

/** Key ID = the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key). */
export async function keyId(name: string, publicKey: Uint8Array): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest("SHA-256", concat(utf8(name), new Uint8Array([0x0a, ED25519]), publicKey));
  return new Uint8Array(digest).slice(0, 4);
}

/** The verifier key: "<name>+<8 hex digits of the key ID>+<base64(0x01 || public key)>". */
export async function verifierKey(name: string, publicKey: Uint8Array): Promise<string> {
  return `${name}+${hex(await keyId(name, publicKey))}+${toBase64(concat(new Uint8Array([ED25519]), publicKey))}`;
}

/** The note: the body, a blank line, and "— <name> <base64(key ID || signature)>". */
export async function signedNote(body: string, name: string, publicKey: Uint8Array, signature: Uint8Array): Promise<string> {
  return `${body}\n\u2014 ${name} ${toBase64(concat(await keyId(name, publicKey), signature))}\n`;
}

export interface ParsedCheckpoint {
  body: string;
  origin: string;
  treeSize: number;
  rootHash: Uint8Array;
  signatures: { name: string; keyId: Uint8Array; signature: Uint8Array }[];
}

/** Reads a checkpoint note; null when it is not one (the signature is not checked here). */
export function parseCheckpoint(note: string): ParsedCheckpoint | null {
  const split = note.indexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) return null;
  const body = note.slice(0, split + 1);
  const lines = body.split("\n");
  const [origin, size, root] = lines;
  if (lines.length < 4 || !origin || !/^(0|[1-9]\d{0,15})$/.test(size ?? "") || !/^[A-Za-z0-9+/]{43}=$/.test(root ?? "")) return null;
  const signatures = [];
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/.exec(line);
    if (!m) return null;
    const bytes = fromBase64(m[2]);
    if (bytes.length < 5) return null;
    signatures.push({ name: m[1], keyId: bytes.slice(0, 4), signature: bytes.slice(4) });
  }
  return { body, origin, treeSize: Number(size), rootHash: fromBase64(root), signatures };
}
