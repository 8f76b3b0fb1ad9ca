// The Python Ozwald's recipe, for making legacy blobs in tests:
// Fernet(urlsafe_b64encode(sha256(token))).encrypt(json.dumps(payload)).
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

export function fernetSeal(token: string, payload: unknown, now = Date.now()): string {
  const key = createHash('sha256').update(token, 'utf8').digest();
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', key.subarray(16), iv);
  const ct = Buffer.concat([c.update(JSON.stringify(payload), 'utf8'), c.final()]);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(Math.floor(now / 1000)));
  const body = Buffer.concat([Buffer.from([0x80]), ts, iv, ct]);
  const mac = createHmac('sha256', key.subarray(0, 16)).update(body).digest();
  // Python's urlsafe_b64encode: the URL-safe alphabet, with padding.
  return Buffer.concat([body, mac]).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}
