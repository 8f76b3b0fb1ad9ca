import t from 'tap';
import { splitWords } from '../../src/config/words.js';

t.test('splitWords', async (t) => {
  const cases: [string, string[]][] = [
    ['a b  c', ['a', 'b', 'c']],
    [`sh -c 'echo "hi there"'`, ['sh', '-c', 'echo "hi there"']],
    [`a "b \\"c\\" d" e\\ f`, ['a', 'b "c" d', 'e f']],
    [`''`, ['']],
    ['', []],
    ['  lead trail  ', ['lead', 'trail']],
    [`x"y"'z'`, ['xyz']],
    ['$HOME `id`', ['$HOME', '`id`']],
  ];
  for (const [input, want] of cases) t.same(splitWords(input), want, JSON.stringify(input));
  t.throws(() => splitWords(`'open`), /unterminated single quote/);
  t.throws(() => splitWords(`"open`), /unterminated double quote/);
});
