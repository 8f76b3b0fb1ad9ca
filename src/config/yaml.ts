// YAML → plain data with positions. Every file is read as YAML 1.2 core
// schema whatever its %YAML directive says; any parser error or warning
// (duplicate key, unknown tag, bad directive) is a load error with a position.
import { parseAllDocuments, LineCounter, isMap, isSeq, isScalar, isAlias, isPair, type Node, type Document } from 'yaml';

export interface Pos { line: number; col: number }
export interface Problem { file: string; line: number; col: number; path: string; message: string }

export function formatProblem(p: Problem): string {
  // line 0: a problem with the file as a whole (missing, unreadable).
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return `${where}: ${p.message}${p.path ? ` (${p.path})` : ''}`;
}

export type Path = ReadonlyArray<string | number>;

/** Values one file may hold after alias expansion. */
export const MAX_NODES = 200_000;

export function pathText(path: Path): string {
  return path.map((s) => String(s)).join('.');
}

const keyOf = (path: Path) => path.map(String).join('\u0000');

export interface ParsedFile {
  file: string;
  data: unknown;
  /** Position of the value at a path, or of the nearest enclosing node. */
  posOf(path: Path): Pos;
  /** Position of the key that names the entry at a path. */
  keyPosOf(path: Path): Pos;
}

/** Whether the scalar at this path is an environment value (kept as written). */
function isEnvValuePath(path: Path): boolean {
  return path.length >= 2 && path[path.length - 2] === 'environment';
}

export function parseYamlFile(file: string, text: string): { parsed?: ParsedFile; problems: Problem[] } {
  const lc = new LineCounter();
  const problems: Problem[] = [];
  const at = (offset: number): Pos => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const docs = parseAllDocuments(text, {
    version: '1.2', schema: 'core', uniqueKeys: true, merge: false, lineCounter: lc, prettyErrors: false, strict: true,
  }) as Document.Parsed[] | { errors: unknown[] };
  if (!Array.isArray(docs)) {
    problems.push({ file, line: 1, col: 1, path: '', message: 'the file could not be parsed as YAML' });
    return { problems };
  }
  for (const d of docs) {
    // After the first syntax error the parser's later errors are mostly its
    // own confusion: report the first, and say how many followed.
    const errs = d.errors.slice(0, 1);
    for (const e of [...errs, ...d.warnings]) {
      const pos = e.linePos?.[0] ?? at(e.pos[0]);
      const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      const more = e === errs[0] && d.errors.length > 1 ? ` (${d.errors.length - 1} more parse error(s) after this one)` : '';
      problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${first}${more}` });
    }
  }
  if (docs.length > 1) {
    const second = docs[1]!;
    const pos = at(second.range[0]);
    problems.push({ file, line: pos.line, col: pos.col, path: '', message: 'a manifest file holds one YAML document; found more than one' });
  }
  if (problems.length) return { problems };

  // Aliases are expanded while converting; cap the result so a "billion
  // laughs" file is an error, not a frozen controller.
  let budget = MAX_NODES;
  const valuePos = new Map<string, Pos>();
  const keyPos = new Map<string, Pos>();
  const doc = docs[0];
  if (!doc || doc.contents === null) {
    // An empty (or comment-only) file: a half-written file looks like this.
    problems.push({ file, line: 1, col: 1, path: '', message: 'the file is empty' });
    return { problems };
  }

  const convert = (node: Node | null, path: Path, inAlias: boolean): unknown => {
    if (node === null) return null;
    if (--budget < 0) {
      if (budget === -1) {
        const pos = node.range ? at(node.range[0]) : { line: 1, col: 1 };
        problems.push({ file, line: pos.line, col: pos.col, path: pathText(path), message: `more than ${MAX_NODES} values after expanding aliases; refusing to go on (aliases that repeat aliases grow exponentially)` });
      }
      return null;
    }
    if (!inAlias && node.range) valuePos.set(keyOf(path), at(node.range[0]));
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) {
        const pos = node.range ? at(node.range[0]) : { line: 1, col: 1 };
        problems.push({ file, line: pos.line, col: pos.col, path: pathText(path), message: `the alias *${node.source} names no anchor (&${node.source}) before it` });
        return undefined;
      }
      return convert(target as Node, path, true);
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = Object.create(null);
      for (const item of node.items) {
        if (!isPair(item)) continue;
        const k = item.key as Node | null;
        let name: string;
        if (isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number' || typeof k.value === 'boolean')) {
          name = typeof k.value === 'string' ? k.value : (k.source ?? String(k.value));
        } else {
          const pos = k?.range ? at(k.range[0]) : at(node.range?.[0] ?? 0);
          problems.push({ file, line: pos.line, col: pos.col, path: pathText(path), message: 'map keys must be plain strings' });
          continue;
        }
        if (name === '<<') {
          const pos = k.range ? at(k.range[0]) : { line: 1, col: 1 };
          problems.push({ file, line: pos.line, col: pos.col, path: pathText(path), message: 'merge keys (<<) are not supported: repeat the fields, or use a variety/profile' });
          continue;
        }
        const childPath = [...path, name];
        if (!inAlias && k.range) keyPos.set(keyOf(childPath), at(k.range[0]));
        out[name] = convert(item.value as Node | null, childPath, inAlias);
      }
      return { ...out };
    }
    if (isSeq(node)) return node.items.map((it, i) => convert(it as Node | null, [...path, i], inAlias));
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || v === undefined) return null;
      if (isEnvValuePath(path) && (typeof v === 'number' || typeof v === 'boolean')) {
        // Keep the text as written: 1.10 stays "1.10", 0640 stays "0640".
        return node.source ?? String(v);
      }
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      const pos = node.range ? at(node.range[0]) : { line: 1, col: 1 };
      problems.push({ file, line: pos.line, col: pos.col, path: pathText(path), message: `unsupported value (tag ${node.tag ?? 'unknown'}); use a plain string, number or boolean` });
      return null;
    }
    return null;
  };
  const data = convert(doc.contents as Node, [], false);
  if (problems.length) return { problems };

  const lookup = (m: Map<string, Pos>, path: Path): Pos => {
    for (let n = path.length; n >= 0; n--) {
      const p = m.get(keyOf(path.slice(0, n))) ?? valuePos.get(keyOf(path.slice(0, n)));
      if (p) return p;
    }
    return { line: 1, col: 1 };
  };
  return {
    problems,
    parsed: { file, data, posOf: (p) => lookup(valuePos, p), keyPosOf: (p) => lookup(keyPos, p) },
  };
}
