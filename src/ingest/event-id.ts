// Event ids carry a MAC of their organisation, so GET /events/{id} can answer "accepted" for an
// event still in the ingest queue without storing anything at ingest, and 404 for anyone else's.
import { base32, fromBase32 } from "../domain/ids";
import { hmac, hmacKey, randomBytes, utf8 } from "../domain/crypto";

const BODY = 10;
const TAG = 6;
const keys = new Map<string, Promise<CryptoKey>>();

function eventIdKey(secretsKey: string): Promise<CryptoKey> {
  let key = keys.get(secretsKey);
  if (!key) {
    key = hmacKey(utf8(`flaghook event ids\n${secretsKey}`));
    keys.set(secretsKey, key);
  }
  return key;
}

async function tag(secretsKey: string, orgId: number, body: Uint8Array): Promise<Uint8Array> {
  const mac = await hmac(await eventIdKey(secretsKey), new Uint8Array([...utf8(`${orgId}:`), ...body]));
  return mac.slice(0, TAG);
}

/** A client id always maps to the same event id within its organisation: that is the idempotency. */
export async function eventIdFor(secretsKey: string, orgId: number, clientId?: string): Promise<string> {
  const body = clientId
    ? (await hmac(await eventIdKey(secretsKey), `client:${orgId}:${clientId}`)).slice(0, BODY)
    : randomBytes(BODY);
  return `evt_${base32(new Uint8Array([...body, ...(await tag(secretsKey, orgId, body))]))}`;
}

/** True when `eventId` was issued by this deployment for this organisation. */
export async function isOwnEventId(secretsKey: string, orgId: number, eventId: string): Promise<boolean> {
  if (!/^evt_[0-9a-hjkmnp-tv-z]{26}$/.test(eventId)) return false;
  const bytes = fromBase32(eventId.slice(4));
  if (!bytes || bytes.length < BODY + TAG) return false;
  const expected = await tag(secretsKey, orgId, bytes.slice(0, BODY));
  return expected.every((b, i) => b === bytes[BODY + i]);
}
