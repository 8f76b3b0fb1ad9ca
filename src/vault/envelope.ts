// The locker envelope, version 1.
//
// Stored in Redis at vault:<realm>:<locker> as a JSON text:
//   {"ozv":1,"realm":R,"locker":L,"keys":[names],"kdf":{"alg":"scrypt","N":..,"r":..,"p":..,"salt":b64},
//    "enc":"aes-256-gcm","iv":b64,"ct":b64,"tag":b64,"sealedAt":ISO}
// The key is scrypt(token, salt) with a fresh random salt per write. The
// associated data is the canonical header (version, realm, locker, key names,
// KDF parameters, seal time), so a blob copied to another key, or with any
// header field edited, fails authentication instead of decrypting. Key names
// are in the clear on purpose: `secrets list --keys` and collision warnings
// need them without a token; values never are.
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { OzwError } from '../errors.js';
import { isFernetToken, fernetDecrypt } from './fernet.js';
import { ENV_NAME, envPairProblem } from './payload.js';

export interface KdfParams { N: number; r: number; p: number }

/** Defaults: 2^15 × 8 → 32 MiB of memory per derivation (OWASP's scrypt floor is 2^17 × 8 × 1 for passwords; tokens here are long random strings). */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 15, r: 8, p: 1 };

// Upper bounds for KDF parameters read from a blob: an edited blob must not
// stall the controller. Work (N·r·p) at most 8× the default, memory at most
// 256 MiB; a raised default must stay within these.
const MAX_N = 2 ** 20;
const MAX_WORK = DEFAULT_KDF.N * DEFAULT_KDF.r * DEFAULT_KDF.p * 8;
const MAX_MEM = 256 * 1024 * 1024;

function scrypt(token: string, salt: Buffer, k: KdfParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scryptCb(token, salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function header(realm: string, locker: string, keys: string[], kdf: KdfParams & { salt: string }, sealedAt: string): Buffer {
  // Fixed order: this is the associated data, it must be byte-stable.
  return Buffer.from(JSON.stringify(['ozv', 1, realm, locker, keys, 'scrypt', kdf.N, kdf.r, kdf.p, kdf.salt, sealedAt]), 'utf8');
}

export interface Sealed {
  ozv: 1;
  realm: string;
  locker: string;
  keys: string[];
  kdf: { alg: 'scrypt'; N: number; r: number; p: number; salt: string };
  enc: 'aes-256-gcm';
  iv: string;
  ct: string;
  tag: string;
  sealedAt: string;
}

export async function seal(
  realm: string,
  locker: string,
  token: string,
  payload: Record<string, string>,
  opts: { kdf?: KdfParams; now?: Date } = {},
): Promise<string> {
  if (token.length === 0) throw new OzwError('OZW_TOKEN_MISSING', 'the token is empty');
  const k = opts.kdf ?? DEFAULT_KDF;
  const salt = randomBytes(16);
  const kdf = { alg: 'scrypt' as const, N: k.N, r: k.r, p: k.p, salt: salt.toString('base64') };
  const key = await scrypt(token, salt, k);
  const iv = randomBytes(12);
  const keys = Object.keys(payload).sort();
  const sealedAt = (opts.now ?? new Date()).toISOString();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header(realm, locker, keys, kdf, sealedAt));
  const ct = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  key.fill(0);
  const out: Sealed = {
    ozv: 1, realm, locker, keys, kdf, enc: 'aes-256-gcm',
    iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64'),
    sealedAt,
  };
  return JSON.stringify(out);
}

export interface EnvelopeInfo {
  format: 'ozv1' | 'fernet';
  realm?: string;
  locker?: string;
  keys?: string[];
  sealedAt?: string;
}

function corrupt(where: string, why: string): OzwError {
  return new OzwError('OZW_VAULT_CORRUPT', `${where}: ${why}`);
}

function parseSealed(blob: string, where: string): Sealed {
  let o: unknown;
  try {
    o = JSON.parse(blob);
  } catch {
    throw corrupt(where, 'not a recognised envelope (neither ozwald v1 JSON nor a legacy Fernet token)');
  }
  const s = o as Partial<Sealed>;
  if (typeof o !== 'object' || o === null || s.ozv === undefined) throw corrupt(where, 'not a recognised envelope');
  if (s.ozv !== 1) throw corrupt(where, `envelope version ${String(s.ozv)} is newer than this ozwald understands`);
  const k = s.kdf;
  const ok =
    typeof s.realm === 'string' && typeof s.locker === 'string' && s.enc === 'aes-256-gcm' && typeof s.sealedAt === 'string' &&
    Array.isArray(s.keys) && s.keys.every((k) => typeof k === 'string') &&
    typeof s.iv === 'string' && typeof s.ct === 'string' && typeof s.tag === 'string' &&
    k !== undefined && k.alg === 'scrypt' && typeof k.salt === 'string' &&
    Number.isInteger(k.N) && k.N >= 2 && k.N <= MAX_N && (k.N & (k.N - 1)) === 0 &&
    Number.isInteger(k.r) && k.r >= 1 && k.r <= 32 && Number.isInteger(k.p) && k.p >= 1 && k.p <= 16 &&
    k.N * k.r * k.p <= MAX_WORK && 128 * k.N * k.r <= MAX_MEM;
  if (!ok) throw corrupt(where, 'envelope fields are missing or out of range');
  return s as Sealed;
}

export function inspect(blob: string): EnvelopeInfo {
  if (isFernetToken(blob)) return { format: 'fernet' };
  const s = parseSealed(blob, 'envelope');
  return { format: 'ozv1', realm: s.realm, locker: s.locker, keys: s.keys, sealedAt: s.sealedAt };
}

/**
 * Opens a locker blob. Errors name the key, never the token or a value.
 * Legacy Fernet blobs (Python Ozwald) are opened too.
 */
export async function open(realm: string, locker: string, token: string, blob: string): Promise<{ payload: Record<string, string>; format: 'ozv1' | 'fernet' }> {
  const where = `vault:${realm}:${locker}`;
  let plain: Buffer;
  let format: 'ozv1' | 'fernet';
  if (isFernetToken(blob)) {
    format = 'fernet';
    const p = fernetDecrypt(token, blob);
    if (p === null) throw new OzwError('OZW_VAULT_WRONG_TOKEN', `the token did not open locker ${where} (legacy envelope)`);
    plain = p;
  } else {
    format = 'ozv1';
    const s = parseSealed(blob, where);
    if (s.realm !== realm || s.locker !== locker) {
      throw new OzwError('OZW_VAULT_MISBOUND', `${where} holds a blob sealed for vault:${s.realm}:${s.locker}; it will not be opened here`);
    }
    const key = await scrypt(token, Buffer.from(s.kdf.salt, 'base64'), s.kdf);
    try {
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'));
      d.setAAD(header(realm, locker, s.keys, s.kdf, s.sealedAt));
      d.setAuthTag(Buffer.from(s.tag, 'base64'));
      plain = Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
    } catch {
      throw new OzwError('OZW_VAULT_WRONG_TOKEN', `the token did not open locker ${where}`);
    } finally {
      key.fill(0);
    }
  }
  let payload: unknown;
  try {
    payload = JSON.parse(plain.toString('utf8'));
  } catch {
    throw corrupt(where, 'the decrypted payload is not JSON');
  } finally {
    plain.fill(0);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw corrupt(where, 'the decrypted payload is not an object');
  const out: Record<string, string> = Object.create(null);
  Object.entries(payload).forEach(([k, v], i) => {
    const name = ENV_NAME.test(k) ? k : `key #${i + 1}`;
    // Legacy payloads may hold numbers/booleans; they reach the env as text.
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw corrupt(where, `the value of ${name} is not a string`);
    // The checks secrets set makes: a legacy blob was sealed without them,
    // and must not carry a bad name into a v1 header or a line into an env-file.
    const bad = envPairProblem(k, out[k]!, `key #${i + 1}`);
    if (bad) throw new OzwError('OZW_PAYLOAD_INVALID', `${where}${format === 'fernet' ? ' (legacy envelope)' : ''}: ${bad}`, [], 'seal the values again, with valid names and single-line values, using `ozwald secrets set`');
  });
  return { payload: out, format };
}
