import t from 'tap';
import { parsePayload, parseJsonPayload, parseDotenvPayload, envPairProblem } from '../../src/vault/payload.js';
import type { OzwError } from '../../src/errors.js';

const CANARY = 'canary-payload-77';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    const err = e as OzwError;
    t.equal(err.code, 'OZW_PAYLOAD_INVALID');
    const lines = err.details.length ? err.details : [err.message];
    for (const d of [err.message, ...lines]) t.notMatch(d, CANARY, 'no value in the error');
    return lines;
  }
  return ['(no error)'];
}

t.test('JSON objects of strings', async (t) => {
  t.same(parsePayload('  {"A": "1", "b.c-d": "x y", "_U": ""}', 'f.json'), { A: '1', 'b.c-d': 'x y', _U: '' });
  t.same(problems(() => parseJsonPayload('[1]', 'f.json')), ['f.json: a JSON payload must be an object of KEY: "value" pairs']);
  t.same(problems(() => parseJsonPayload(`{"A": "${CANARY}",}`, 'f.json')), ['f.json: not valid JSON']);
  t.same(problems(() => parseJsonPayload(`{"PORT": 8080, "ON": true, "N": null, "L": ["${CANARY}"]}`, 'f.json')), [
    'f.json: the value of PORT must be a string (got number)',
    'f.json: the value of ON must be a string (got boolean)',
    'f.json: the value of N must be a string (got null)',
    'f.json: the value of L must be a string (got array)',
  ]);
  t.same(problems(() => parseJsonPayload('{}', 'f.json')), ['f.json: the payload holds no keys']);
});

t.test('names must be environment names', async (t) => {
  t.same(problems(() => parseJsonPayload(`{"1BAD": "${CANARY}", "has space": "x", "": "y", "ok": "z"}`, 'f.json')), [
    'f.json: key #1 is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
    'f.json: key #2 is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
    'f.json: key #3 is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
  ]);
});

t.test('values an env-file cannot carry are refused, naming the key only', async (t) => {
  t.same(problems(() => parseJsonPayload(JSON.stringify({ NL: `${CANARY}\nX=1`, CR: `a\rb`, NUL: `a\u0000b` }), 'f.json')), [
    'f.json: the value of NL contains a newline, carriage return or NUL, which an env-file cannot carry',
    'f.json: the value of CR contains a newline, carriage return or NUL, which an env-file cannot carry',
    'f.json: the value of NUL contains a newline, carriage return or NUL, which an env-file cannot carry',
  ]);
  t.same(problems(() => parseJsonPayload(JSON.stringify({ BIG: CANARY + 'x'.repeat(65536) }), 'f.json')), [
    'f.json: the line BIG=… is 64 KiB or longer; the Docker CLI reads env-file lines of at most 65535 bytes',
  ]);
  t.equal(envPairProblem('K', 'x'.repeat(65535 - 2)), null, 'a 65535-byte line fits (docker run takes it)');
  t.match(envPairProblem('K', 'x'.repeat(65536 - 2)) ?? '', /64 KiB or longer/, 'a 65536-byte line does not (bufio.Scanner: token too long)');
  t.same(problems(() => parseJsonPayload('{"S": "\\ud800"}', 'f.json')), ['f.json: the value of S is not valid Unicode text']);
});

t.test('.env files', async (t) => {
  const text = [
    '# comment',
    '',
    'A=plain value',
    'export B=exported',
    '  C="double quoted"',
    "D='single # not a comment'",
    'E=a=b=c',
    'F=',
    'G="unbalanced',
    'H=  keeps spaces  ',
    'I=#hash',
    'J="inner "quotes" stay"',
    'K=windows\r',
  ].join('\n');
  t.same(parseDotenvPayload(text, 's.env'), {
    A: 'plain value', B: 'exported', C: 'double quoted', D: 'single # not a comment', E: 'a=b=c', F: '',
    G: '"unbalanced', H: '  keeps spaces  ', I: '#hash', J: 'inner "quotes" stay', K: 'windows',
  });
  t.same(problems(() => parseDotenvPayload(`A=1\nBARE\nA=${CANARY}\n1X=2\n`, 's.env')), [
    's.env:2: expected KEY=VALUE (a bare key would make docker copy the variable from its own environment)',
    's.env:3: key A is also set on line 1',
    's.env:4: the text before "=" is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
  ]);
  t.same(problems(() => parseDotenvPayload('# only comments\n\n', 's.env')), ['s.env: the payload holds no keys']);
  t.same(parseDotenvPayload('\uFEFFA=1', 's.env'), { A: '1' }, 'a byte-order mark is dropped');
});

t.test('a __proto__ key is data, not a prototype', async (t) => {
  const p = parseDotenvPayload('__proto__=x\nA=1', 's.env');
  t.same(Object.keys(p).sort(), ['A', '__proto__']);
  t.equal(({} as Record<string, unknown>).x, undefined);
});

t.test('malformed lines never echo what may be the secret', async (t) => {
  t.same(problems(() => parsePayload(`API_KEY: ${CANARY}c2VjcmV0=\n`, 'y.env')), [
    'y.env:1: the text before "=" is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret) (this looks like YAML; write KEY=VALUE)',
  ]);
  t.same(problems(() => parsePayload(`API_KEY: ${CANARY}\n`, 'y.env')), ['y.env:1: expected KEY=VALUE (this looks like YAML; write KEY=VALUE, or give a JSON object)']);
  t.same(problems(() => parsePayload(`API_KEY ${CANARY}==\n`, 's.env')), [
    's.env:1: the text before "=" is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
  ]);
  t.same(problems(() => parsePayload(`["${CANARY}=xyz"]`, 'a.json')), [
    'a.json:1: the text before "=" is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)',
  ]);
});

t.test('a key set twice in JSON is refused, not silently last-wins', async (t) => {
  t.same(problems(() => parseJsonPayload(`{"A": "${CANARY}", "B": "x", "A": "y"}`, 'd.json')), ['d.json: key A is set more than once']);
  // A key with no word characters, or one that is not a valid name: the text after it is a value.
  for (const text of [`{"": "a", "": "${CANARY}"}`, `{"+": "a", "+": "${CANARY}"}`, `{"+${CANARY}": "a", "+${CANARY}": "b"}`, `{"A\\"B": "a", "A\\"B": "${CANARY}"}`]) {
    const ps = problems(() => parseJsonPayload(text, 'd.json'));
    t.equal(ps[0], 'd.json: key (not shown, it is not a valid name) is set more than once', text.replace(CANARY, 'CANARY'));
    t.notMatch(ps.join('\n'), CANARY);
  }
});

t.test('tokens', async (t) => {
  const { tokenProblem } = await import('../../src/vault/token.js');
  t.equal(tokenProblem('a long random token'), null);
  t.equal(tokenProblem(''), 'the token is empty');
  t.equal(tokenProblem('  \t '), 'the token is only white space');
  t.equal(tokenProblem('a\nb'), 'the token contains a newline, carriage return or NUL (one trailing newline is stripped from files and stdin)');
  t.equal(tokenProblem('tok\n'), 'the token contains a newline, carriage return or NUL (one trailing newline is stripped from files and stdin)');
  t.equal(tokenProblem('x'.repeat(4097)), 'the token is longer than 4096 characters');
  t.equal(tokenProblem('x'.repeat(4096)), null);
});
