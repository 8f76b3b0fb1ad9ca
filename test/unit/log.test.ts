import t from 'tap';
import { createLogger, prettyLine, SecretScrubber } from '../../src/log.js';

const CANARY = 'canary-log-"quoted"-Jx8';

t.test('secret values in use are cut out of every line, in any field', async (t) => {
  const lines: string[] = [];
  const scrubber = new SecretScrubber();
  const log = createLogger({ level: 'info', format: 'json', scrubber, write: (s) => lines.push(s) });
  scrubber.add([CANARY, 'abc']);
  log.info({ note: `value=${CANARY}`, nested: { x: CANARY } }, `message with ${CANARY}`);
  log.error({ err: `docker said: ${CANARY}` }, 'launch failed');
  scrubber.remove([CANARY]);
  log.info({ later: 'nothing secret' }, 'after');
  t.equal(lines.length, 3);
  for (const l of lines) t.notMatch(l, 'canary-log', 'no part of the canary');
  t.match(lines[0], '"note":"value=[redacted]"');
  t.match(lines[0], '"msg":"message with [redacted]"');
  t.match(lines[0], '"x":"[redacted]"');
  t.match(lines[2], 'nothing secret');
  t.match(lines[0], /"level":30/);
});

t.test('fields named like secrets are redacted by path', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ format: 'json', write: (s) => lines.push(s) });
  log.info({ token: 'tok-1', payload: { K: 'v' }, req: { headers: { authorization: 'Bearer sk' } }, secrets_tokens: { a: 'b' }, stderr: 'x' }, 'm');
  const o = JSON.parse(lines[0]!);
  t.same([o.token, o.payload, o.req.headers.authorization, o.secrets_tokens, o.stderr], ['[redacted]', '[redacted]', '[redacted]', '[redacted]', '[redacted]']);
});

t.test('short values are not scrubbed (they would shred ordinary text)', async (t) => {
  const s = new SecretScrubber();
  s.add(['abc', 'abcd']);
  t.equal(s.scrub('abc abcd'), 'abc [redacted]');
  s.add(['abcd']);
  s.remove(['abcd']);
  t.equal(s.scrub('abcd'), '[redacted]', 'still in use by another launch');
  s.remove(['abcd']);
  t.equal(s.scrub('abcd'), 'abcd');
});

t.test('pretty lines for people', async (t) => {
  const json = JSON.stringify({ level: 40, time: '2026-12-03T18:00:01.000Z', pid: 1, msg: 'launch failed', instance: 'demo/web', err: 'no such image' });
  t.equal(prettyLine(json, false), '18:00:01 WARN  launch failed  instance=demo/web err="no such image"\n');
  t.equal(prettyLine(json, true), '18:00:01 \x1b[33mWARN \x1b[0m launch failed  instance=demo/web err="no such image"\n');
  t.equal(prettyLine('not json', false), 'not json');
});
