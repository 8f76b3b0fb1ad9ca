// Reading a token without ever putting it on a command line or in a log.
import { promises as fs } from 'node:fs';
import { OzwError } from '../errors.js';

export interface TokenOptions {
  'token-stdin'?: boolean;
  'token-file'?: string;
  token?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Strips one trailing newline (as `echo` or an editor leaves), nothing else. */
function chomp(s: string): string {
  return s.replace(/\r?\n$/, '');
}

export function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let buf = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new OzwError('OZW_TOKEN_MISSING', 'interrupted'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * The token from, in order: --token-stdin, --token-file, OZWALD_TOKEN,
 * --token (with a warning), or a no-echo prompt when stdin is a terminal.
 */
export async function readToken(o: TokenOptions, opts: { confirm?: boolean; label?: string; env?: string } = {}): Promise<string> {
  const label = opts.label ?? 'token';
  const envName = opts.env ?? 'OZWALD_TOKEN';
  let token: string | undefined;
  if (o['token-stdin']) token = chomp(await readStdin());
  else if (o['token-file']) {
    try {
      token = chomp(await fs.readFile(o['token-file'], 'utf8'));
    } catch (e) {
      throw new OzwError('OZW_TOKEN_MISSING', `cannot read --token-file ${o['token-file']}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else if (process.env[envName]) token = process.env[envName];
  else if (o.token !== undefined) {
    process.stderr.write('ozwald: warning: --token puts the token in argv and shell history, where other users and tools can read it; prefer the prompt, --token-stdin, --token-file or OZWALD_TOKEN\n');
    token = o.token;
  } else if (process.stdin.isTTY) {
    token = await promptHidden(`${label}: `);
    if (opts.confirm) {
      const again = await promptHidden(`${label} (again): `);
      if (again !== token) throw new OzwError('OZW_TOKEN_MISSING', 'the two entries differ; nothing was written');
    }
  }
  if (token === undefined || token === '') {
    throw new OzwError('OZW_TOKEN_MISSING', `no ${label} given: use the prompt (on a terminal), --token-stdin, --token-file F or ${envName}`);
  }
  return token;
}
