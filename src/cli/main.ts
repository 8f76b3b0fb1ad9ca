#!/usr/bin/env node
// The `ozwald` command line. Exit codes: 0 ok, 1 error, 2 `plan` found changes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FIXES, OzwError, isOzwError } from '../errors.js';
import { GLOBAL_OPTIONS, globalsFrom, type Globals } from './context.js';
import { COMMANDS } from './commands.js';
import { didYouMean } from '../config/suggest.js';

function usage(): string {
  const lines = ['usage: ozwald [--redis URL] [--provisioner NAME] [--manifests PATH] <command> …', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  lines.push('', 'ozwald <command> --help shows a command\'s options.');
  return lines.join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const GLOBAL_WITH_VALUE = new Set(['--redis', '--provisioner', '--manifests']);

export async function main(argv: string[]): Promise<number> {
  // The command is the first word that is neither an option nor a global option's value.
  let idx = -1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) { i++; continue; }
    if (!a.startsWith('-')) { idx = i; break; }
  }
  if (idx < 0) {
    if (argv.includes('--version')) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    process.stdout.write(`${usage()}\n`);
    return argv.includes('--help') || argv.includes('-h') ? 0 : 1;
  }
  let name = argv[idx]!;
  let rest = [...argv.slice(0, idx), ...argv.slice(idx + 1)];
  // `ozwald help [COMMAND…]` is `ozwald [COMMAND…] --help`.
  if (name === 'help') return main([...argv.slice(0, idx), ...argv.slice(idx + 1), '--help']);
  // Two-word commands: `secrets set`, `services update`.
  const sub = argv[idx + 1];
  if (sub !== undefined && COMMANDS[`${name} ${sub}`]) {
    name = `${name} ${sub}`;
    rest = [...argv.slice(0, idx), ...argv.slice(idx + 2)];
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    const group = Object.keys(COMMANDS).filter((c) => c.startsWith(`${name} `));
    if (group.length && (rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(`usage: ozwald ${name} <subcommand> …\n\nsubcommands:\n${group.map((g) => `  ${g.padEnd(16)} ${COMMANDS[g]!.summary}`).join('\n')}\n\nozwald ${name} <subcommand> --help shows its options and an example.\n`);
      return 0;
    }
    if (group.length) throw new OzwError('OZW_USAGE', `"${name}" needs a subcommand: ${group.map((g) => g.split(' ')[1]).join(', ')}`);
    const hint = didYouMean(name, new Set(Object.keys(COMMANDS).map((c) => c.split(' ')[0]!)));
    throw new OzwError('OZW_USAGE', `unknown command "${name}"${hint ? ` (did you mean ${hint}?)` : ''}; run ozwald --help`);
  }
  const options = { ...GLOBAL_OPTIONS, ...cmd.options } as NonNullable<ParseArgsConfig['options']>;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new OzwError('OZW_USAGE', `${name}: ${argsMessage(e as Error & { code?: string }, Object.keys(options))}`, [], commandFix(name));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) {
    process.stdout.write(`${cmd.help}\n`);
    return 0;
  }
  try {
    const g: Globals = globalsFrom(values as { redis?: string; provisioner?: string; manifests?: string });
    return await cmd.run(g, values, parsed.positionals);
  } catch (e) {
    // A usage error inside a command: point at that command's help.
    if (isOzwError(e, 'OZW_USAGE') && e.fix === undefined) e.fix = commandFix(name);
    throw e;
  }
}

const commandFix = (name: string) => `see \`ozwald ${name} --help\` for the options and an example`;

/** node:util's parseArgs messages, shortened, with a "did you mean" for a mistyped option. */
function argsMessage(e: Error & { code?: string }, known: string[]): string {
  const unknown = /^Unknown option '([^']+)'/.exec(e.message);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
    const opt = unknown[1]!;
    const hint = didYouMean(opt.replace(/^-+/, ''), known);
    return `unknown option ${opt}${hint ? ` (did you mean --${hint}?)` : ''}; a value that starts with '-' goes after '--'`;
  }
  // parseArgs explains over several lines ("--ttl -1" is ambiguous): keep it on one.
  return e.message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

// Run only when executed (also through the npm bin symlink), not when imported by tests.
const isMain = (() => {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      // Redis stopped answering in the middle of a command (commandTimeout).
      if (!isOzwError(e) && /Command timed out|Connection is closed/.test((e as Error)?.message ?? '')) {
        e = new OzwError('OZW_REDIS_UNAVAILABLE', `Redis stopped answering: ${(e as Error).message}`);
      }
      if (isOzwError(e)) {
        process.stderr.write(`ozwald: ${e.code}: ${e.message}\n`);
        for (const d of e.details.slice(e.details[0] === e.message ? 1 : 0)) process.stderr.write(`  ${d}\n`);
        // The token message already lists the channels; the hint would repeat it.
        process.stderr.write(`  fix: ${e.fix ?? FIXES[e.code]}\n`);
      } else {
        process.stderr.write(`ozwald: internal error: ${(e as Error)?.message ?? String(e)}\n`);
      }
      process.exit(1);
    },
  );
}
