import t from 'tap';
import { readFileSync } from 'node:fs';
import { seal, open, inspect, DEFAULT_KDF } from '../../src/vault/envelope.js';
import { OzwError } from '../../src/errors.js';

const FAST = { N: 1024, r: 8, p: 1 };
const TOKEN = 'correct horse battery staple';
const CANARY = 'canary-env-4f1d';

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'no error';
  } catch (e) {
    t.notMatch((e as Error).message, TOKEN, 'error text never holds the token');
    t.notMatch((e as Error).message, CANARY, 'error text never holds a value');
    return (e as OzwError).code;
  }
};

t.test('round trip with the default KDF parameters', async (t) => {
  const blob = await seal('demo', 'keys', TOKEN, { API_KEY: CANARY, EMPTY: '' });
  t.notMatch(blob, CANARY, 'ciphertext does not hold the value');
  t.notMatch(blob, TOKEN, 'blob does not hold the token');
  const env = JSON.parse(blob);
  t.same([env.ozv, env.realm, env.locker, env.keys, env.enc, env.kdf.alg, env.kdf.N, env.kdf.r, env.kdf.p], [1, 'demo', 'keys', ['API_KEY', 'EMPTY'], 'aes-256-gcm', 'scrypt', DEFAULT_KDF.N, 8, 1]);
  t.equal(Buffer.from(env.kdf.salt, 'base64').length, 16);
  t.equal(Buffer.from(env.iv, 'base64').length, 12);
  const got = await open('demo', 'keys', TOKEN, blob);
  t.same(got, { payload: { API_KEY: CANARY, EMPTY: '' }, format: 'ozv1' });
});

t.test('each seal uses a fresh salt and iv', async (t) => {
  const a = JSON.parse(await seal('r', 'l', TOKEN, { K: 'v' }, { kdf: FAST }));
  const b = JSON.parse(await seal('r', 'l', TOKEN, { K: 'v' }, { kdf: FAST }));
  t.not(a.kdf.salt, b.kdf.salt);
  t.not(a.iv, b.iv);
  t.not(a.ct + a.tag, b.ct + b.tag);
});

t.test('values keep every character an env-file can carry', async (t) => {
  const nasty = { Q: `"quoted" 'single' $HOME \`cmd\` \\ back`, U: 'ünïcödé ✓ 🚀', S: '  spaced  ', E: 'a=b=c', H: '#not a comment' };
  const blob = await seal('r', 'l', TOKEN, nasty, { kdf: FAST });
  t.same((await open('r', 'l', TOKEN, blob)).payload, nasty);
});

t.test('a wrong token is a clear error, not garbage', async (t) => {
  const blob = await seal('demo', 'keys', TOKEN, { API_KEY: CANARY }, { kdf: FAST });
  t.equal(await codeOf(open('demo', 'keys', 'wrong token', blob)), 'OZW_VAULT_WRONG_TOKEN');
  t.equal(await codeOf(open('demo', 'keys', TOKEN + ' ', blob)), 'OZW_VAULT_WRONG_TOKEN');
  await t.rejects(open('demo', 'keys', 'nope', blob), { message: 'the token did not open locker vault:demo:keys' });
});

t.test('a blob copied to another key does not open', async (t) => {
  const blob = await seal('demo', 'keys', TOKEN, { API_KEY: CANARY }, { kdf: FAST });
  t.equal(await codeOf(open('demo', 'other', TOKEN, blob)), 'OZW_VAULT_MISBOUND');
  t.equal(await codeOf(open('prod', 'keys', TOKEN, blob)), 'OZW_VAULT_MISBOUND');
  // Rewriting the plaintext header to match the new key does not help: the header is the associated data.
  const forged = JSON.stringify({ ...JSON.parse(blob), realm: 'prod' });
  t.equal(await codeOf(open('prod', 'keys', TOKEN, forged)), 'OZW_VAULT_WRONG_TOKEN');
});

t.test('tampering with KDF parameters, iv, ciphertext or tag fails authentication', async (t) => {
  const blob = JSON.parse(await seal('r', 'l', TOKEN, { K: 'v' }, { kdf: FAST }));
  const flip = (b64: string) => {
    const b = Buffer.from(b64, 'base64');
    b[0] = b[0]! ^ 1;
    return b.toString('base64');
  };
  for (const [what, edit] of [
    ['kdf.r', { kdf: { ...blob.kdf, r: 4 } }],
    ['keys', { keys: ['K', 'EXTRA'] }],
    ['sealedAt', { sealedAt: '2020-01-01T00:00:00.000Z' }],
    ['kdf.salt', { kdf: { ...blob.kdf, salt: flip(blob.kdf.salt) } }],
    ['iv', { iv: flip(blob.iv) }],
    ['ct', { ct: flip(blob.ct) }],
    ['tag', { tag: flip(blob.tag) }],
  ] as const) {
    t.equal(await codeOf(open('r', 'l', TOKEN, JSON.stringify({ ...blob, ...edit }))), 'OZW_VAULT_WRONG_TOKEN', what);
  }
});

t.test('unreadable blobs are OZW_VAULT_CORRUPT', async (t) => {
  const good = JSON.parse(await seal('r', 'l', TOKEN, { K: 'v' }, { kdf: FAST }));
  t.equal(await codeOf(open('r', 'l', TOKEN, 'plain text')), 'OZW_VAULT_CORRUPT');
  t.equal(await codeOf(open('r', 'l', TOKEN, '{"ozv":2}')), 'OZW_VAULT_CORRUPT');
  await t.rejects(open('r', 'l', TOKEN, '{"ozv":2}'), { message: 'vault:r:l: envelope version 2 is newer than this ozwald understands' });
  t.equal(await codeOf(open('r', 'l', TOKEN, JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 30 } }))), 'OZW_VAULT_CORRUPT', 'absurd N refused before deriving');
  t.equal(await codeOf(open('r', 'l', TOKEN, JSON.stringify({ ...good, kdf: { ...good.kdf, N: 1000 } }))), 'OZW_VAULT_CORRUPT', 'N must be a power of two');
  t.equal(await codeOf(open('r', 'l', TOKEN, JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 20, r: 32, p: 4 } }))), 'OZW_VAULT_CORRUPT', 'parameters that would stall the controller are refused before deriving');
  t.equal(await codeOf(open('r', 'l', TOKEN, JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 15, r: 8, p: 9 } }))), 'OZW_VAULT_CORRUPT', 'more than 8x the default work');
});

t.test('seal refuses an empty token', async (t) => {
  await t.rejects(seal('r', 'l', '', { K: 'v' }), { code: 'OZW_TOKEN_MISSING' });
});

t.test('legacy Fernet blobs written by the Python Ozwald open', async (t) => {
  const fx = JSON.parse(readFileSync(new URL('../fixtures/fernet-blob.json', import.meta.url), 'utf8'));
  t.same(inspect(fx.blob), { format: 'fernet' });
  const got = await open('any', 'locker', fx.token, fx.blob);
  t.same(got, { payload: { API_KEY: 'legacy-canary-9f3', PORT: '8080' }, format: 'fernet' });
  t.equal(await codeOf(open('any', 'locker', 'wrong', fx.blob)), 'OZW_VAULT_WRONG_TOKEN');
  const altered = fx.blob.slice(0, 60) + (fx.blob[60] === 'A' ? 'B' : 'A') + fx.blob.slice(61);
  t.equal(await codeOf(open('any', 'locker', fx.token, altered)), 'OZW_VAULT_WRONG_TOKEN');
});

t.test('a legacy blob gets the checks secrets set makes, without echoing a bad name', async (t) => {
  const { fernetSeal } = await import('../helpers/fernet.js');
  const C = 'CANARY-legacy-77d1';
  const cases: [unknown, string][] = [
    [{ [`API KEY ${C}`]: 'v' }, 'vault:r:l (legacy envelope): key #1 is not a valid environment name (must match [A-Za-z_][A-Za-z0-9_.-]*; the text is not shown, it may be a secret)'],
    [{ A: `x\nINJECTED=1` }, 'vault:r:l (legacy envelope): the value of A contains a newline, carriage return or NUL, which an env-file cannot carry'],
    [{ [`bad ${C}`]: { x: 1 } }, 'vault:r:l: the value of key #1 is not a string'],
  ];
  for (const [payload, message] of cases) {
    const e = await open('r', 'l', 'tok', fernetSeal('tok', payload)).then(() => null, (x: Error) => x);
    t.equal(e?.message, message);
    t.notMatch(String(e?.message), C);
  }
});

t.test('inspect reads the header without a token', async (t) => {
  const blob = await seal('demo', 'keys', TOKEN, { K: 'v' }, { kdf: FAST, now: new Date('2026-01-02T03:04:05Z') });
  t.same(inspect(blob), { format: 'ozv1', realm: 'demo', locker: 'keys', keys: ['K'], sealedAt: '2026-01-02T03:04:05.000Z' });
});

t.test('a __proto__ key survives the round trip as data', async (t) => {
  const payload = JSON.parse('{"__proto__": "p", "A": "a"}');
  const blob = await seal('r', 'l', TOKEN, payload, { kdf: FAST });
  const { payload: got } = await open('r', 'l', TOKEN, blob);
  t.same(Object.keys(got).sort(), ['A', '__proto__']);
  t.equal(Object.getOwnPropertyDescriptor(got, '__proto__')?.value, 'p');
});
