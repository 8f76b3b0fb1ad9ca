// Helpers every command module uses.
import { SAFE_NAME } from '../config/schema.js';
import { loadManifests } from '../config/load.js';
import { formatProblem } from '../config/yaml.js';
import { OzwError } from '../errors.js';
import { createLogger, type Logger, type SecretScrubber } from '../log.js';
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


/** HOST:PORT (IPv6 in brackets) → host and port; OZW_USAGE naming the flag otherwise. */
export function parseListen(flag: string, value: string, example: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new OzwError('OZW_USAGE', `${flag} ${value}: expected HOST:PORT, e.g. ${example}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The logger a long-running command (run, api) asks for with --log-level / --log-format. */
export function loggerFromOptions(v: Values, scrubber: SecretScrubber): Logger {
  const level = (v['log-level'] as string | undefined) ?? process.env.OZWALD_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new OzwError('OZW_USAGE', `--log-level ${level}: use one of ${LOG_LEVELS.join(', ')}`);
  const format = v['log-format'] as string | undefined;
  if (format !== undefined && format !== 'json' && format !== 'pretty') throw new OzwError('OZW_USAGE', `--log-format ${format}: use json or pretty`);
  return createLogger({ level, scrubber, ...(format ? { format } : {}) });
}

/** The manifests path is missing or holds no manifest (rather than holding bad ones). */
export function notFound(problems: { line: number; message: string }[]): boolean {
  return problems.length === 1 && problems[0]!.line === 0 && /^no such file|^no \*\.yaml/.test(problems[0]!.message);
}

/** The manifests' model, or the error a command should stop with: not found, or every problem. */
export async function loadOrThrow(path: string, why = '') {
  const { model, problems } = await loadManifests(path);
  if (!model) {
    if (notFound(problems)) throw new OzwError('OZW_MANIFEST_NOT_FOUND', `${formatProblem(problems[0]!)}${why}`);
    throw new OzwError('OZW_MANIFEST_INVALID', `${problems.length} problem(s) in ${path}${why}`, problems.map(formatProblem));
  }
  return model;
}
