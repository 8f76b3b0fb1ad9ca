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
  OZW_CONFLICT: 'Something changed under the command: the dynamic set (generation mismatch, concurrent writers), a locker being re-sealed, or a running controller.',
  OZW_UNAUTHORIZED: 'The HTTP API needs `Authorization: Bearer <OZWALD_SYSTEM_KEY>`.',
  OZW_BAD_REQUEST: 'An HTTP request body failed validation; the response names each field path.',
  OZW_NOT_FOUND: 'No such HTTP route.',
  OZW_BODY_TOO_LARGE: 'An HTTP request body is over the limit (256 KiB).',
  OZW_INTERNAL: 'An unexpected error in the HTTP API; its log has the details.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One line on how to fix each error; the type makes a missing one a compile error. */
export const FIXES: Record<ErrorCode, string> = {
  OZW_USAGE: 'see `ozwald --help` for the commands, and `ozwald COMMAND --help` for its options and an example',
  OZW_MANIFEST_INVALID: 'fix the lines above; `ozwald validate` checks without running anything',
  OZW_MANIFEST_NOT_FOUND: 'point --manifests (or OZWALD_MANIFESTS) at a manifest file or folder',
  OZW_UNKNOWN_REFERENCE: 'use one of the names listed, or define the missing one in the manifests',
  OZW_SPEC_INVALID: 'write instances as [realm:]NAME[service][variety][profile], e.g. demo:llm[llm][cpu][small]',
  OZW_VAULT_EMPTY: 'seal the locker first: ozwald secrets set REALM LOCKER --file secrets.json',
  OZW_VAULT_WRONG_TOKEN: 'give the token the locker was sealed with (`ozwald secrets verify` checks one)',
  OZW_VAULT_MISBOUND: 'seal the secrets again under the right key with `ozwald secrets set`',
  OZW_VAULT_CORRUPT: 'seal the locker again with `ozwald secrets set`, or upgrade ozwald if it is newer',
  OZW_PAYLOAD_INVALID: 'fix the named keys/lines in the file; values must be single-line text',
  OZW_TOKEN_MISSING: 'give the token on the prompt, or with --token-stdin, --token-file F or OZWALD_TOKEN',
  OZW_TTL_INVALID: 'use --ttl with whole seconds from 1 to 3600 (default 60)',
  OZW_REDIS_UNAVAILABLE: 'start Redis (in a checkout, `eval "$(bash hack/up.sh)"` starts one and prints OZWALD_REDIS_URL) or point --redis / OZWALD_REDIS_URL at one',
  OZW_DOCKER_UNAVAILABLE: 'start the engine (in a checkout, `eval "$(bash hack/up.sh)"` starts one and prints DOCKER_HOST) and export DOCKER_HOST',
  OZW_LAUNCH_FAILED: 'fix the image or command in the manifests; the controller retries with back-off',
  OZW_ENVFILE_FAILED: 'make the runtime directory (OZWALD_RUNTIME_DIR) private to this user, or free disk space',
  OZW_CONFLICT: 'read the current state again (`ozwald services list`, `ozwald status`) and repeat the command',
  OZW_UNAUTHORIZED: 'send the header Authorization: Bearer $OZWALD_SYSTEM_KEY',
  OZW_BAD_REQUEST: 'fix the fields named in `issues` and send the request again',
  OZW_NOT_FOUND: 'see /openapi.json for the routes',
  OZW_BODY_TOO_LARGE: 'send a smaller body: split the update, or keep secrets payloads under 256 KiB',
  OZW_INTERNAL: 'see the API log for the error, and report it if it repeats',
};

export class OzwError extends Error {
  readonly code: ErrorCode;
  /** Extra lines (one per problem) for errors that gather several problems. */
  readonly details: string[];
  /** How to fix this one, where the code's general line (FIXES) would mislead. */
  fix: string | undefined;
  constructor(code: ErrorCode, message: string, details: string[] = [], fix?: string) {
    super(message);
    this.name = 'OzwError';
    this.code = code;
    this.details = details;
    this.fix = fix;
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
