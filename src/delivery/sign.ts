// Signature headers, WebCrypto only: Flagsmith's X-Flagsmith-Signature and Standard Webhooks'.
import { fromBase64, hex, hmac, hmacKey, toBase64, utf8 } from "../domain/crypto";

const keyCache = new Map<string, Promise<{ flagsmith: CryptoKey; standard: CryptoKey }>>();

/** Both HMAC keys of a secret, imported once per isolate. */
function keysFor(secret: string) {
  let keys = keyCache.get(secret);
  if (!keys) {
    if (keyCache.size > 5000) keyCache.clear();
    keys = Promise.all([hmacKey(utf8(secret)), hmacKey(standardKeyBytes(secret))]).then(([flagsmith, standard]) => ({
      flagsmith,
      standard,
    }));
    keyCache.set(secret, keys);
  }
  return keys;
}

/** Standard Webhooks: the base64 part of a whsec_ secret, else the secret's UTF-8 bytes. */
export function standardKeyBytes(secret: string): Uint8Array {
  if (secret.startsWith("whsec_")) {
    try {
      return fromBase64(secret.slice("whsec_".length));
    } catch {
      // not base64 after all: fall through to the raw bytes
    }
  }
  return utf8(secret);
}

/** The secrets one attempt signs with. */
export interface SigningSecrets {
  /** X-Flagsmith-Signature has one slot: the secret the receiver checks (during a staged rotation, the previous one). */
  flagsmith: string;
  /** webhook-signature: the current secret first, then one still in its rotation grace period. */
  standard: readonly string[];
}

/** Headers for one attempt. */
export async function signatureHeaders(
  secrets: SigningSecrets,
  webhookId: string,
  timestampSeconds: number,
  body: string,
): Promise<Record<string, string>> {
  const signed = utf8(`${webhookId}.${timestampSeconds}.${body}`);
  const [flagsmithKeys, ...keys] = await Promise.all([keysFor(secrets.flagsmith), ...secrets.standard.map(keysFor)]);
  const [flagsmith, ...standard] = await Promise.all([
    hmac(flagsmithKeys.flagsmith, body),
    ...keys.map((k) => hmac(k.standard, signed)),
  ]);
  return {
    "X-Flagsmith-Signature": hex(flagsmith),
    "webhook-id": webhookId,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": standard.map((s) => `v1,${toBase64(s)}`).join(" "),
  };
}
