// Read-only support for lockers sealed by the Python Ozwald: Fernet tokens
// whose key is urlsafe-base64(sha256(token)). Only decryption lives here; new
// blobs are always sealed in the v1 envelope.
import { createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;

export function isFernetToken(blob: string): boolean {
  // Version byte 0x80 encodes as "gA" in base64url.
  return blob.startsWith('gA') && B64URL.test(blob) && blob.length >= 100;
}

/** Returns the plaintext, or null when the token is wrong or the blob was altered. */
export function fernetDecrypt(token: string, blob: string): Buffer | null {
  const raw = Buffer.from(blob, 'base64url');
  if (raw.length < 1 + 8 + 16 + 16 + 32 || raw[0] !== 0x80) return null;
  const key = createHash('sha256').update(token, 'utf8').digest();
  const signKey = key.subarray(0, 16);
  const encKey = key.subarray(16, 32);
  const body = raw.subarray(0, raw.length - 32);
  const mac = raw.subarray(raw.length - 32);
  const expect = createHmac('sha256', signKey).update(body).digest();
  if (!timingSafeEqual(mac, expect)) return null;
  const iv = raw.subarray(9, 25);
  try {
    const d = createDecipheriv('aes-128-cbc', encKey, iv);
    return Buffer.concat([d.update(raw.subarray(25, raw.length - 32)), d.final()]);
  } catch {
    return null;
  } finally {
    key.fill(0);
  }
}
