import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Fields that may ever carry a token or a secret value. Code never passes
// them to a logger; this is the net under that rule, not the rule.
const REDACT = [
  'token', 'tokens', 'secret', 'secrets', 'payload', 'values', 'env', 'environment',
  'password', 'authorization', 'headers.authorization', 'req.headers.authorization', 'secrets_tokens', 'stderr',
  '*.token', '*.tokens', '*.secret', '*.secrets', '*.payload', '*.values', '*.env',
  '*.environment', '*.password', '*.authorization', '*.secrets_tokens', '*.stderr',
];

/**
 * The second net: secret values the process holds right now (a launch's
 * decrypted lockers, tokens in flight) are cut out of every log line,
 * whatever field or message they got into.
 */
export class SecretScrubber {
  private readonly values = new Map<string, number>();
  add(values: Iterable<string>): void {
    // Very short values would shred ordinary text; they are not secrets worth the name.
    for (const v of values) if (v.length >= 4) this.values.set(v, (this.values.get(v) ?? 0) + 1);
  }
  remove(values: Iterable<string>): void {
    for (const v of values) {
      const n = (this.values.get(v) ?? 0) - 1;
      if (n > 0) this.values.set(v, n);
      else this.values.delete(v);
    }
  }
  scrub(line: string): string {
    let out = line;
    for (const v of this.values.keys()) {
      if (out.includes(v)) out = out.split(v).join('[redacted]');
      const asJson = JSON.stringify(v).slice(1, -1); // the same value as it appears inside a JSON log line
      if (asJson !== v && out.includes(asJson)) out = out.split(asJson).join('[redacted]');
    }
    return out;
  }
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '\x1b[90m', 20: '\x1b[36m', 30: '\x1b[32m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[35m' };

/** One JSON log line → "time LEVEL msg key=value …" for people at a terminal. */
export function prettyLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, pid: _pid, ...rest } = o;
  const lv = LEVEL_NAMES[level as number] ?? String(level);
  const head = color ? `${COLORS[level as number] ?? ''}${lv.padEnd(5)}\x1b[0m` : lv.padEnd(5);
  const kv = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`).join(' ');
  const t = typeof time === 'string' ? time.slice(11, 19) : '';
  return `${t} ${head} ${String(msg ?? '')}${kv ? `  ${kv}` : ''}\n`;
}

export interface LoggerOptions {
  level?: string;
  /** json (default when stderr is not a terminal) or pretty. */
  format?: 'json' | 'pretty';
  scrubber?: SecretScrubber;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.OZWALD_LOG_LEVEL ?? 'info';
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const color = format === 'pretty' && !!process.stderr.isTTY && !process.env.NO_COLOR;
  const write = opts.write ?? ((s: string) => process.stderr.write(s));
  const dest: DestinationStream = {
    write(line: string) {
      const clean = opts.scrubber ? opts.scrubber.scrub(line) : line;
      write(format === 'pretty' ? prettyLine(clean, color) : clean);
    },
  };
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
