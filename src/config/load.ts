// Reading manifests from disk: a file, or every *.yaml/*.yml below a folder
// (dot entries skipped). The parsing and merging is pure (model.ts).
import { promises as fs } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { buildModel, type Model, type Source } from './model.js';
import type { Problem } from './yaml.js';

/** A manifest larger than this is refused: parsing it would stall the controller. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const YAML_NAME = /\.ya?ml$/i;

async function walk(dir: string, out: string[], problems: string[], seen: Set<string>): Promise<void> {
  // Followed directory symlinks could loop: each real directory is read once.
  const real = await fs.realpath(dir);
  if (seen.has(real)) {
    problems.push(`${dir}: symlink loop (already read as ${real})`);
    return;
  }
  seen.add(real);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await fs.stat(p).catch((err: NodeJS.ErrnoException) => err);
      if (st instanceof Error) {
        // A dangling link to a manifest is a missing manifest, not an absent one.
        const why = st.code === 'ELOOP' ? 'symlink loop (the link leads back to itself)' : st.code === 'ENOENT' ? 'broken symlink (its target does not exist)' : `unreadable symlink (${st.code ?? 'error'})`;
        if (YAML_NAME.test(e.name)) problems.push(`${p}: ${why}`);
        continue;
      }
      isDir = st.isDirectory();
      isFile = st.isFile();
    }
    if (isDir) await walk(p, out, problems, seen);
    else if (isFile && YAML_NAME.test(e.name)) out.push(p);
    // A FIFO or device named like a manifest would block or never end: said, not read.
    else if (!isDir && YAML_NAME.test(e.name)) problems.push(`${p}: not a regular file; a manifest must be one`);
  }
}

export async function readSources(path: string): Promise<{ sources: Source[]; problems: Problem[] }> {
  const abs = resolve(path);
  const st = await fs.stat(abs).catch(() => null);
  if (!st) return { sources: [], problems: [{ file: path, line: 0, col: 0, path: '', message: 'no such file or directory' }] };
  const files: string[] = [];
  const walkProblems: string[] = [];
  if (st.isDirectory()) await walk(abs, files, walkProblems, new Set());
  else files.push(abs);
  const shown = (f: string) => (st.isDirectory() ? join(path, relative(abs, f)) : path);
  if (walkProblems.length) {
    return { sources: [], problems: walkProblems.map((w) => {
      const i = w.indexOf(': ');
      return { file: shown(w.slice(0, i)), line: 0, col: 0, path: '', message: w.slice(i + 2) };
    }) };
  }
  if (files.length === 0) return { sources: [], problems: [{ file: path, line: 0, col: 0, path: '', message: 'no *.yaml or *.yml file in this folder' }] };
  const sources: Source[] = [];
  const problems: Problem[] = [];
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  for (const f of files) {
    try {
      const buf = await fs.readFile(f);
      if (buf.length > MAX_MANIFEST_BYTES) {
        problems.push({ file: shown(f), line: 0, col: 0, path: '', message: `larger than ${MAX_MANIFEST_BYTES / 1024} KiB; split it into several files` });
        continue;
      }
      let text: string;
      try {
        text = utf8.decode(buf);
      } catch {
        problems.push({ file: shown(f), line: 0, col: 0, path: '', message: 'not valid UTF-8 text' });
        continue;
      }
      sources.push({ file: shown(f), text });
    } catch (e) {
      problems.push({ file: shown(f), line: 0, col: 0, path: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}` });
    }
  }
  return { sources, problems };
}

export async function loadManifests(path: string): Promise<{ model?: Model; problems: Problem[]; warnings?: Problem[] }> {
  const { sources, problems } = await readSources(path);
  if (problems.length) return { problems };
  return buildModel(sources);
}
