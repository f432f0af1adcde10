// The key that signs checkpoints: AUDIT_SIGNING_KEY is base64 of a 32-byte Ed25519 seed (RFC 8032
// private key), imported into WebCrypto as PKCS#8. Its public half is exported once, for vkeys.
import { verifierKey } from "../domain/checkpoint";
import { concat, fromBase64, utf8 } from "../domain/crypto";
import { ApiError } from "../domain/errors";

/** PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410), up to the 32-byte seed. */
const PKCS8_ED25519 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

export interface Signer {
  publicKey: Uint8Array;
  sign(message: string): Promise<Uint8Array>;
  verify(message: string, signature: Uint8Array): Promise<boolean>;
  /** The signed-note verifier key under `name` (the log's origin). */
  vkey(name: string): Promise<string>;
}

const signers = new Map<string, Promise<Signer>>();

async function importSigner(encoded: string): Promise<Signer> {
  let seed: Uint8Array;
  try {
    seed = fromBase64(encoded.trim());
  } catch {
    seed = new Uint8Array();
  }
  if (seed.length !== 32) throw new Error("AUDIT_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed (e.g. `openssl rand -base64 32`)");
  const key = await crypto.subtle.importKey("pkcs8", concat(PKCS8_ED25519, seed), { name: "Ed25519" }, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey;
  const publicKey = fromBase64(jwk.x!.replace(/-/g, "+").replace(/_/g, "/") + "=");
  const verifying = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return {
    publicKey,
    sign: async (message) => new Uint8Array(await crypto.subtle.sign("Ed25519", key, utf8(message))),
    verify: (message, signature) => crypto.subtle.verify("Ed25519", verifying, signature, utf8(message)),
    vkey: (name) => verifierKey(name, publicKey),
  };
}

/** The deployment's signer, or null when AUDIT_SIGNING_KEY is not set (the log is then not sealed). */
export function loadSigner(encoded: string | null): Promise<Signer> | null {
  if (!encoded) return null;
  let signer = signers.get(encoded);
  if (!signer) {
    signer = importSigner(encoded);
    signer.catch(() => signers.delete(encoded));
    signers.set(encoded, signer);
  }
  return signer;
}

/** The signer for API requests: 503 when the deployment has no signing key. */
export async function requireSigner(encoded: string | null): Promise<Signer> {
  const signer = loadSigner(encoded);
  if (!signer) throw new ApiError(503, "server_misconfigured", "AUDIT_SIGNING_KEY is not set on this deployment: the audit log is not signed");
  return signer;
}
