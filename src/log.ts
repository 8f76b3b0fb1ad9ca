import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Fields that may ever carry a token or a secret value. Code should never pass
// them to a logger; the redaction is the net under that rule, not the rule.
const REDACT = [
  'token', 'tokens', 'secret', 'secrets', 'payload', 'values', 'env', 'environment',
  'password', 'authorization', 'headers.authorization', 'secrets_tokens',
  '*.token', '*.tokens', '*.secret', '*.secrets', '*.payload', '*.values', '*.env',
  '*.environment', '*.password', '*.authorization', '*.secrets_tokens',
];

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.OZWALD_LOG_LEVEL ?? 'info';
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
