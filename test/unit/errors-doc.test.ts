import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/errors.js';

t.test('every error code is documented in README.md, and only real ones', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) t.match(readme, `| \`${code}\` |`, `${code} has a README row`);
  const documented = [...readme.matchAll(/^\| `(OZW_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.same(documented.sort(), Object.keys(ERROR_CODES).sort(), 'no stale rows');
});

t.test('every code is used somewhere in src/', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const src = execFileSync('grep', ['-rhoE', "'OZW_[A-Z_]+'", new URL('../../src', import.meta.url).pathname], { encoding: 'utf8' });
  for (const code of Object.keys(ERROR_CODES)) t.match(src, `'${code}'`, `${code} is raised somewhere`);
  const used = new Set([...src.matchAll(/'(OZW_[A-Z_]+)'/g)].map((m) => m[1]!));
  t.same([...used].filter((c) => !(c in ERROR_CODES)), [], 'every code src/ uses is in the registry');
});

t.test('ozwald.schema.json is the schema the code generates', async (t) => {
  const { manifestJsonSchema } = await import('../../src/config/schema.js');
  const committed = JSON.parse(readFileSync(new URL('../../ozwald.schema.json', import.meta.url), 'utf8'));
  t.same(committed, JSON.parse(JSON.stringify(manifestJsonSchema())), 'regenerate with: node dist/cli/main.js schema > ozwald.schema.json');
});
