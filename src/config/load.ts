// Reading manifests from disk: a file, or every *.yaml/*.yml below a folder
// (dot entries skipped). The parsing and merging is pure (model.ts).
import { promises as fs } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { buildModel, type Model, type Source } from './model.js';
import type { Problem } from './yaml.js';

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await fs.stat(p).catch(() => null);
      isDir = !!st?.isDirectory();
      isFile = !!st?.isFile();
    }
    if (isDir) await walk(p, out);
    else if (isFile && /\.ya?ml$/i.test(e.name)) out.push(p);
  }
}

export async function readSources(path: string): Promise<{ sources: Source[]; problems: Problem[] }> {
  const abs = resolve(path);
  const st = await fs.stat(abs).catch(() => null);
  if (!st) return { sources: [], problems: [{ file: path, line: 0, col: 0, path: '', message: 'no such file or directory' }] };
  const files: string[] = [];
  if (st.isDirectory()) await walk(abs, files);
  else files.push(abs);
  if (files.length === 0) return { sources: [], problems: [{ file: path, line: 0, col: 0, path: '', message: 'no *.yaml or *.yml file in this folder' }] };
  const sources: Source[] = [];
  const problems: Problem[] = [];
  const shown = (f: string) => (st.isDirectory() ? join(path, relative(abs, f)) : path);
  for (const f of files) {
    try {
      sources.push({ file: shown(f), text: await fs.readFile(f, 'utf8') });
    } catch (e) {
      problems.push({ file: shown(f), line: 0, col: 0, path: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}` });
    }
  }
  return { sources, problems };
}

export async function loadManifests(path: string): Promise<{ model?: Model; problems: Problem[] }> {
  const { sources, problems } = await readSources(path);
  if (problems.length) return { problems };
  return buildModel(sources);
}
