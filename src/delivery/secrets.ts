// Webhook secrets: generated as whsec_ + base64(32 bytes), stored encrypted with AES-GCM under SECRETS_KEY.
import { ApiError } from "../domain/errors";
import { fromBase64, randomBytes, toBase64, utf8 } from "../domain/crypto";

export function generateSecret(): string {
  return `whsec_${toBase64(randomBytes(32))}`;
}

const keys = new Map<string, Promise<CryptoKey>>();

function aesKey(secretsKey: string): Promise<CryptoKey> {
  let key = keys.get(secretsKey);
  if (!key) {
    key = (async () => {
      // A base64 32-byte key is used as is; any other string is stretched with SHA-256.
      let raw: Uint8Array;
      try {
        raw = fromBase64(secretsKey);
      } catch {
        raw = new Uint8Array();
      }
      if (raw.length !== 32) raw = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(secretsKey)));
      return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    })();
    keys.set(secretsKey, key);
  }
  return key;
}

export function requireSecretsKey(secretsKey: string | null): string {
  if (!secretsKey) throw new ApiError(500, "server_misconfigured", "SECRETS_KEY is not set on this deployment");
  return secretsKey;
}

export async function encryptSecret(secretsKey: string, secret: string): Promise<string> {
  const iv = randomBytes(12);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await aesKey(secretsKey), utf8(secret)));
  return `v1:${toBase64(iv)}:${toBase64(sealed)}`;
}

const decrypted = new Map<string, Promise<string>>();

/** Decrypts a stored secret; each ciphertext is decrypted once per isolate (deliveries sign with it often). */
export function decryptSecret(secretsKey: string, stored: string): Promise<string> {
  const key = `${secretsKey}\n${stored}`;
  let secret = decrypted.get(key);
  if (!secret) {
    if (decrypted.size > 5000) decrypted.clear();
    secret = decrypt(secretsKey, stored);
    secret.catch(() => decrypted.delete(key));
    decrypted.set(key, secret);
  }
  return secret;
}

async function decrypt(secretsKey: string, stored: string): Promise<string> {
  const [version, iv, sealed] = stored.split(":");
  if (version !== "v1" || !iv || !sealed) throw new Error("unreadable webhook secret");
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv) }, await aesKey(secretsKey), fromBase64(sealed));
  return new TextDecoder().decode(plain);
}
