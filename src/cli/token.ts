// Reading a token without ever putting it on a command line or in a log.
import { promises as fs } from 'node:fs';
import { OzwError } from '../errors.js';
import { tokenProblem } from '../vault/token.js';

export interface TokenOptions {
  'token-stdin'?: boolean;
  'token-file'?: string;
  token?: string;
  'new-token-stdin'?: boolean;
  'new-token-file'?: string;
  'new-token'?: string;
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
    // Echo goes off before the question shows: whatever is typed once it is
    // on the screen (a fast typist, a paste, a script) must never be echoed.
    stdin.setRawMode(true);
    stdin.resume();
    process.stderr.write(question);
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
 * `which: 'new-token'` reads --new-token-stdin, --new-token-file,
 * OZWALD_NEW_TOKEN, --new-token instead (for rotation).
 */
export async function readToken(o: TokenOptions, opts: { confirm?: boolean; label?: string; which?: 'token' | 'new-token' } = {}): Promise<string> {
  const which = opts.which ?? 'token';
  const label = opts.label ?? which.replace('-', ' ');
  const envName = which === 'token' ? 'OZWALD_TOKEN' : 'OZWALD_NEW_TOKEN';
  const fromStdin = o[`${which}-stdin`];
  const file = o[`${which}-file`];
  const argv = o[which];
  let token: string | undefined;
  if (fromStdin) token = chomp(await readStdin());
  else if (file) {
    try {
      token = chomp(await fs.readFile(file, 'utf8'));
    } catch (e) {
      throw new OzwError('OZW_TOKEN_MISSING', `cannot read --${which}-file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, [], 'check the path, and that this user may read the file');
    }
  } else if (process.env[envName]) token = process.env[envName];
  else if (argv !== undefined) {
    process.stderr.write(`ozwald: warning: --${which} puts the token in argv and shell history, where other users and tools can read it; prefer the prompt, --${which}-stdin, --${which}-file or ${envName}\n`);
    token = argv;
  } else if (process.stdin.isTTY) {
    token = await promptHidden(`${label}: `);
    if (opts.confirm) {
      const again = await promptHidden(`${label} (again): `);
      if (again !== token) throw new OzwError('OZW_TOKEN_MISSING', 'the two entries differ; nothing was written', [], 'run the command again and type the same token twice');
    }
  }
  if (token === undefined || token === '') {
    throw new OzwError('OZW_TOKEN_MISSING', `no ${label} given: use the prompt (on a terminal), --${which}-stdin, --${which}-file F or ${envName}`, [], `without a terminal, pipe it in: … --${which}-stdin < FILE`);
  }
  const bad = tokenProblem(token);
  if (bad) throw new OzwError('OZW_TOKEN_MISSING', `${label}: ${bad}`);
  return token;
}
