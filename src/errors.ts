// One registry of error codes. Codes are stable: scripts and people match on
// them. Every code is documented in README.md (a test checks that).
export const ERROR_CODES = {
  OZW_USAGE: 'The command line is wrong: unknown command, option or missing argument.',
  OZW_MANIFEST_INVALID: 'A manifest file failed to parse or validate; each problem names file:line:col and the field.',
  OZW_MANIFEST_NOT_FOUND: 'The manifests path does not exist or holds no *.yaml/*.yml file.',
  OZW_UNKNOWN_REFERENCE: 'A realm, service, variety, profile, instance or locker name does not exist; the message lists what does.',
  OZW_SPEC_INVALID: 'An instance spec `[realm:]NAME[service][variety][profile]` could not be parsed.',
  OZW_VAULT_EMPTY: 'No sealed locker is stored at vault:<realm>:<locker>; run `ozwald secrets set` first.',
  OZW_VAULT_WRONG_TOKEN: 'The token does not open the locker (wrong token, or the blob was tampered with).',
  OZW_VAULT_MISBOUND: 'The blob stored under this key was sealed for another realm/locker (copied between keys).',
  OZW_VAULT_CORRUPT: 'The stored blob is not a known envelope (unreadable, truncated, unknown version).',
  OZW_PAYLOAD_INVALID: 'A secrets payload is unusable: bad JSON/.env, bad key name, or a value the env-file cannot carry.',
  OZW_TOKEN_MISSING: 'No token was given (prompt, --token-stdin, --token-file, OZWALD_TOKEN or --token).',
  OZW_TTL_INVALID: 'The unlock TTL must be a whole number of seconds from 1 to 3600.',
  OZW_REDIS_UNAVAILABLE: 'Redis could not be reached at the configured URL.',
  OZW_DOCKER_UNAVAILABLE: 'The Docker engine could not be reached (check DOCKER_HOST).',
  OZW_LAUNCH_FAILED: '`docker run` failed for an instance; the message carries the engine\'s reason.',
  OZW_ENVFILE_FAILED: 'The private env-file could not be written safely (directory not private, file exists, disk error).',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class OzwError extends Error {
  readonly code: ErrorCode;
  /** Extra lines (one per problem) for errors that gather several problems. */
  readonly details: string[];
  constructor(code: ErrorCode, message: string, details: string[] = []) {
    super(message);
    this.name = 'OzwError';
    this.code = code;
    this.details = details;
  }
}

export function isOzwError(e: unknown, code?: ErrorCode): e is OzwError {
  return e instanceof OzwError && (code === undefined || e.code === code);
}

/** A message for an unknown error that never carries more than its first line. */
export function describe(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? e.name;
  return String(e);
}
