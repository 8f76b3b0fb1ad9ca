// Secrets payloads: what `secrets set` accepts, checked before anything is
// sealed. Errors name the key and line, never the value.
import { parseDocument } from 'yaml';
import { OzwError } from '../errors.js';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The Docker CLI reads env-files with a 64 KiB line scanner: a KEY=VALUE line must be shorter (65535 bytes at most, checked against the CLI). */
export const MAX_ENV_LINE_BYTES = 64 * 1024 - 1;

/**
 * Why a KEY=VALUE pair cannot go into an env-file, or null when it can.
 * An invalid name is not quoted: a malformed line can hold the secret
 * itself where the name should be ("API_KEY: sk-…" has no '=' before it).
 */
export function envPairProblem(name: string, value: string, where = 'a key'): string | null {
  if (!ENV_NAME.test(name)) return `${where} is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)`;
  if (/[\n\r\0]/.test(value)) return `the value of ${name} contains a newline, carriage return or NUL, which an env-file cannot carry`;
  if (!value.isWellFormed()) return `the value of ${name} is not valid Unicode text`;
  if (Buffer.byteLength(name, 'utf8') + 1 + Buffer.byteLength(value, 'utf8') > MAX_ENV_LINE_BYTES) {
    return `the line ${name}=… is 64 KiB or longer; the Docker CLI reads env-file lines of at most ${MAX_ENV_LINE_BYTES} bytes`;
  }
  return null;
}

function check(payload: Record<string, string>, source: string): Record<string, string> {
  const problems: string[] = [];
  Object.entries(payload).forEach(([k, v], i) => {
    const p = envPairProblem(k, v, `key #${i + 1}`);
    if (p) problems.push(`${source}: ${p}`);
  });
  if (Object.keys(payload).length === 0) problems.push(`${source}: the payload holds no keys`);
  if (problems.length) throw new OzwError('OZW_PAYLOAD_INVALID', problems[0]!, problems);
  return payload;
}

export function parseJsonPayload(text: string, source: string): Record<string, string> {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    // JSON.parse messages quote the text near the error: do not repeat them.
    throw new OzwError('OZW_PAYLOAD_INVALID', `${source}: not valid JSON`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new OzwError('OZW_PAYLOAD_INVALID', `${source}: a JSON payload must be an object of KEY: "value" pairs`);
  }
  const out: Record<string, string> = Object.create(null);
  const problems: string[] = [];
  Object.entries(o).forEach(([k, v], i) => {
    const name = ENV_NAME.test(k) ? k : `key #${i + 1}`;
    if (typeof v !== 'string') problems.push(`${source}: the value of ${name} must be a string (got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v})`);
    else out[k] = v;
  });
  const dup = duplicateJsonKey(text);
  if (dup) problems.unshift(`${source}: key ${dup} is set more than once`);
  if (problems.length) throw new OzwError('OZW_PAYLOAD_INVALID', problems[0]!, problems);
  return check(out, source);
}

/** The first key an object in this JSON text sets twice (JSON.parse would keep the last silently). */
export function duplicateJsonKey(text: string): string | null {
  const doc = parseDocument(text, { schema: 'json', uniqueKeys: true, prettyErrors: false });
  const e = doc.errors.find((x) => x.code === 'DUPLICATE_KEY');
  if (!e) return null;
  // The key exactly as JSON spells it; shown only when it is a valid name
  // (anything else may be a secret pasted in the wrong place).
  const m = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(e.pos[0]));
  let key: unknown = null;
  try {
    key = m ? JSON.parse(m[0]) : null;
  } catch {
    /* not shown */
  }
  return typeof key === 'string' && ENV_NAME.test(key) ? key : '(not shown, it is not a valid name)';
}

/**
 * A .env file: KEY=VALUE lines; blank lines and lines starting with # are
 * skipped; an optional `export ` prefix is dropped; one pair of matching
 * surrounding quotes ('…' or "…") is removed, nothing else is unescaped.
 */
export function parseDotenvPayload(text: string, source: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const seen = new Map<string, number>();
  const problems: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const where = `${source}:${i + 1}`;
    const t = line.trimStart();
    if (t === '' || t.startsWith('#')) return;
    const body = t.startsWith('export ') ? t.slice(7).trimStart() : t;
    const eq = body.indexOf('=');
    if (eq < 0) {
      const looksYaml = /^[A-Za-z_][A-Za-z0-9_.-]*\s*:/.test(body);
      problems.push(`${where}: expected KEY=VALUE${looksYaml ? ' (this looks like YAML; write KEY=VALUE, or give a JSON object)' : ' (a bare key would make docker copy the variable from its own environment)'}`);
      return;
    }
    const key = body.slice(0, eq).trim();
    let value = body.slice(eq + 1);
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    const prev = seen.get(key);
    if (prev !== undefined) {
      problems.push(`${where}: ${ENV_NAME.test(key) ? `key ${key}` : 'this key'} is also set on line ${prev}`);
      return;
    }
    seen.set(key, i + 1);
    const p = envPairProblem(key, value, 'the text before "="');
    if (p) problems.push(`${where}: ${p}${/^[A-Za-z_][A-Za-z0-9_.-]*\s*:/.test(key) ? ' (this looks like YAML; write KEY=VALUE)' : ''}`);
    else out[key] = value;
  });
  if (problems.length) throw new OzwError('OZW_PAYLOAD_INVALID', problems[0]!, problems);
  return check(out, source);
}

/** JSON when the text starts with `{` (after blanks), a .env file otherwise. */
export function parsePayload(text: string, source: string): Record<string, string> {
  return text.trimStart().startsWith('{') ? parseJsonPayload(text, source) : parseDotenvPayload(text, source);
}
