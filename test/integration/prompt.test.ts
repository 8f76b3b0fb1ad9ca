// The no-echo prompt on a real terminal (a pty from util-linux `script`):
// the token is typed, never shown, and works.
import t from 'tap';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CLI, cli, teardown, world, type World } from '../helpers/harness.js';

const TOKEN = 'typed-token-Zq71';

/** Runs the CLI on a pty; answers each prompt matching `ask` with the next answer. */
function onTty(w: World, args: string[], answers: string[]): Promise<{ code: number | null; screen: string }> {
  return new Promise((resolve) => {
    const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const p = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { env: w.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let asked = 0;
    const onData = (d: Buffer) => {
      screen += d.toString();
      const prompts = (screen.match(/token[^:\n]*: /g) ?? []).length;
      while (asked < prompts && asked < answers.length) p.stdin.write(`${answers[asked++]}\r`);
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('close', (code) => resolve({ code, screen }));
  });
}

t.test('the prompt reads the token without echo', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const file = join(w.dir, 's.env');
  await fs.writeFile(file, 'K=v\n');
  const set = await onTty(w, ['secrets', 'set', w.realm, 'keys', '--file', file], [TOKEN, TOKEN]);
  t.equal(set.code, 0, set.screen);
  t.match(set.screen, /token: /);
  t.match(set.screen, /token \(again\): /, 'asked twice when sealing');
  t.notMatch(set.screen, TOKEN, 'the typed token is never shown');
  t.match(await cli(w, ['secrets', 'verify', w.realm, 'keys', '--token-stdin'], { input: TOKEN }), { code: 0 }, 'the typed token sealed it');
  const differ = await onTty(w, ['secrets', 'set', w.realm, 'keys', '--file', file], [TOKEN, `${TOKEN}x`]);
  t.equal(differ.code, 1);
  t.match(differ.screen, /OZW_TOKEN_MISSING: the two entries differ; nothing was written/);
  const verify = await onTty(w, ['secrets', 'verify', w.realm, 'keys'], [TOKEN]);
  t.equal(verify.code, 0, verify.screen);
  t.notMatch(verify.screen, TOKEN);
});
