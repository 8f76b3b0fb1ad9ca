// Helpers every command module uses.
import { SAFE_NAME } from '../config/schema.js';
import { OzwError } from '../errors.js';
import { UNLOCK_TTL_DEFAULT, UNLOCK_TTL_MAX } from '../state/keys.js';
import type { Globals } from './context.js';

export type Values = Record<string, string | boolean | string[] | undefined>;
export interface Command {
  summary: string;
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(g: Globals, v: Values, positionals: string[]): Promise<number>;
}

export const TOKEN_OPTIONS = {
  'token-stdin': { type: 'boolean' },
  'token-file': { type: 'string' },
  token: { type: 'string' },
} as const;

export const GLOBAL_HELP = `global options: --redis URL (OZWALD_REDIS_URL), --provisioner NAME (OZWALD_PROVISIONER), --manifests PATH (OZWALD_MANIFESTS); Docker through DOCKER_HOST`;

export const out = (s: string) => process.stdout.write(`${s}\n`);

export function need(pos: string[], n: number, usage: string): string[] {
  if (pos.length !== n) throw new OzwError('OZW_USAGE', `expected ${usage}`);
  return pos;
}

export function checkName(what: string, v: string): string {
  if (!SAFE_NAME.test(v)) throw new OzwError('OZW_USAGE', `${what} "${v}" is not a valid name (letters, digits, '_', '.', '-')`);
  return v;
}

export function parseTtl(v: unknown): number {
  if (v === undefined) return UNLOCK_TTL_DEFAULT;
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < 1 || n > UNLOCK_TTL_MAX) throw new OzwError('OZW_TTL_INVALID', `--ttl ${String(v)}: give whole seconds from 1 to ${UNLOCK_TTL_MAX}`);
  return n;
}

