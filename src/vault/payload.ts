// Secrets payloads: what `secrets set` accepts, checked before anything is
// sealed. Errors name the key and line, never the value.
import { OzwError } from '../errors.js';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The Docker CLI reads env-files with a 64 KiB line scanner. */
export const MAX_ENV_LINE_BYTES = 64 * 1024;

/** Why a KEY=VALUE pair cannot go into an env-file, or null when it can. */
export function envPairProblem(name: string, value: string): string | null {
  if (!ENV_NAME.test(name)) return `key ${JSON.stringify(name)} is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*)`;
  if (/[\n\r\0]/.test(value)) return `the value of ${name} contains a newline, carriage return or NUL, which an env-file cannot carry`;
  if (!value.isWellFormed()) return `the value of ${name} is not valid Unicode text`;
  if (Buffer.byteLength(name, 'utf8') + 1 + Buffer.byteLength(value, 'utf8') > MAX_ENV_LINE_BYTES) {
    return `the line ${name}=… is longer than the 64 KiB the Docker CLI accepts in an env-file`;
  }
  return null;
}

function check(payload: Record<string, string>, source: string): Record<string, string> {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(payload)) {
    const p = envPairProblem(k, v);
    if (p) problems.push(`${source}: ${p}`);
  }
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
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'string') problems.push(`${source}: the value of ${JSON.stringify(k)} must be a string (got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v})`);
    else out[k] = v;
  }
  if (problems.length) throw new OzwError('OZW_PAYLOAD_INVALID', problems[0]!, problems);
  return check(out, source);
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
      problems.push(`${where}: expected KEY=VALUE (a bare key would make docker copy the variable from its own environment)`);
      return;
    }
    const key = body.slice(0, eq).trim();
    let value = body.slice(eq + 1);
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    const prev = seen.get(key);
    if (prev !== undefined) {
      problems.push(`${where}: key ${key} is also set on line ${prev}`);
      return;
    }
    seen.set(key, i + 1);
    const p = envPairProblem(key, value);
    if (p) problems.push(`${where}: ${p}`);
    else out[key] = value;
  });
  if (problems.length) throw new OzwError('OZW_PAYLOAD_INVALID', problems[0]!, problems);
  return check(out, source);
}

/** JSON when the text starts with `{` (after blanks), a .env file otherwise. */
export function parsePayload(text: string, source: string): Record<string, string> {
  return text.trimStart().startsWith('{') ? parseJsonPayload(text, source) : parseDotenvPayload(text, source);
}
