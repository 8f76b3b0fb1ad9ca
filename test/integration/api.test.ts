// The HTTP API and `services update|list` against a real Redis, with the
// controller on real dockerd.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CLI, IMAGE, cli, execEnv, phaseIs, redisDump, startController, statuses, teardown, waitFor, world, type World, freePort } from '../helpers/harness.js';

const KEY = 'system-key-for-tests-Pw4';
const TOKEN = 'api-token-canary-Rt6';
const SECRET = 'api-secret-canary-Yu2';


function startApi(w: World, port: number, env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; output(): string } {
  const proc = spawn(process.execPath, [CLI, 'api', '--listen', `127.0.0.1:${port}`], { env: { ...w.env, OZWALD_SYSTEM_KEY: KEY, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  proc.on('close', () => w.transcript.push(`api output:\n${out}`));
  return { proc, output: () => out };
}

t.test('http api', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys]}
    service-definitions:
      - {name: web, type: container, image: ${IMAGE}}
      - name: chat
        type: container
        image: ${IMAGE}
        lockers: [keys]
        profiles: {small: {environment: {SIZE: small}}}
    persistent-services:
      - {name: web, service: web}
`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const api = startApi(w, port);
  t.teardown(() => api.proc.kill('SIGKILL'));
  const ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await waitFor('the API up', async () => (await fetch(`${base}/health`).catch(() => null))?.ok);
  const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const post = (path: string, body: unknown, headers: Record<string, string> = auth) => fetch(`${base}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  await t.test('auth', async (t) => {
    t.same(await (await fetch(`${base}/health`)).json(), { status: 'healthy' }, '/health needs no key');
    const none = await fetch(`${base}/srv/services/active/`);
    t.equal(none.status, 401);
    t.equal(none.headers.get('www-authenticate'), 'Bearer');
    t.same(await none.json(), { code: 'OZW_UNAUTHORIZED', message: 'Invalid authentication credentials' });
    t.equal((await fetch(`${base}/srv/services/active/`, { headers: { authorization: `Bearer ${KEY}x` } })).status, 401, 'wrong key');
    t.equal((await fetch(`${base}/srv/services/active/`, { headers: { authorization: KEY } })).status, 401, 'not a bearer header');
    t.equal((await fetch(`${base}/openapi.json`)).status, 401, 'the OpenAPI document is behind auth too');
    const doc = await (await fetch(`${base}/openapi.json`, { headers: auth })).json() as { paths: Record<string, unknown> };
    t.ok(doc.paths['/srv/services/active/update/'] && doc.paths['/srv/secrets/update/'], 'OpenAPI lists the routes');
    t.equal((await fetch(`${base}/nope`, { headers: auth })).status, 404);
  });

  await t.test('configured services', async (t) => {
    const list = await (await fetch(`${base}/srv/services/configured/`, { headers: auth })).json() as { service_name: string; realm: string; lockers: string[] }[];
    t.same(await (await fetch(`${base}/srv/services/configured`, { headers: auth })).json(), list, 'the trailing slash is optional');
    t.same(list.map((s) => `${s.realm}/${s.service_name}:${s.lockers.join(',')}`).sort(), [`${w.realm}/chat:keys`, `${w.realm}/web:`]);
  });

  await t.test('bad bodies get 400 with the field path, never the value', async (t) => {
    const r1 = await post('/srv/services/active/update/', [{ service: 'web', realm: w.realm }]);
    t.equal(r1.status, 400);
    const b1 = await r1.json() as { code: string; issues: { path: string }[] };
    t.equal(b1.code, 'OZW_BAD_REQUEST');
    t.same(b1.issues.map((i) => i.path), ['0.name']);
    const r2 = await post('/srv/services/active/update/', '{not json');
    t.equal(r2.status, 400);
    t.equal((await r2.json() as { code: string }).code, 'OZW_BAD_REQUEST');
    const r3 = await post('/srv/services/active/update/', [{ name: 'x', service: 'nosuch', realm: w.realm }]);
    t.equal(r3.status, 400);
    t.match(await r3.text(), 'service \\"nosuch\\" is not defined in realm');
    const r4 = await post('/srv/services/active/update/', [{ name: 'web', service: 'web', realm: w.realm }]);
    t.equal(r4.status, 400, 'a name the manifests already use');
    const r5 = await post('/srv/services/active/update/', [{ name: 'p', service: 'web', realm: w.realm, persistent: true }]);
    t.equal(r5.status, 400);
    const r6 = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'keys', token: TOKEN, payload: { 'bad name': SECRET, OK: `a\n${SECRET}` } });
    t.equal(r6.status, 400);
    const text6 = await r6.text();
    t.notMatch(text6, SECRET);
    t.notMatch(text6, TOKEN);
    t.match(text6, 'the value of OK contains a newline');
    const r7 = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'keys', token: TOKEN, payload: { A: 5 } });
    t.equal(r7.status, 400);
    t.same((await r7.json() as { issues: { path: string }[] }).issues.map((i) => i.path), ['payload.A']);
    // A secret pasted where a key name goes is not echoed in the path.
    const r8 = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'keys', token: TOKEN, payload: { [`API_KEY: ${SECRET}`]: 5 } });
    t.equal(r8.status, 400);
    const text8 = await r8.text();
    t.notMatch(text8, SECRET);
    t.match(text8, 'payload.(a key that is not a valid name, not shown)');
    const r9 = await post('/srv/services/active/update/', [{ name: 'x', service: 'web', realm: w.realm, secrets_tokens: { [`${TOKEN} x`]: 5 } }]);
    t.equal(r9.status, 400);
    t.notMatch(await r9.text(), TOKEN);
    // A key set twice: refused as secrets set refuses it, not last-wins.
    for (const body of [
      `{"realm": "${w.realm}", "locker_name": "keys", "token": "${TOKEN}", "payload": {"A": "${SECRET}", "A": "b"}}`,
      `{"realm": "${w.realm}", "locker_name": "keys", "token": "${TOKEN}", "payload": {"A": "a"}, "payload": {"B": "${SECRET}"}}`,
    ]) {
      const r = await post('/srv/secrets/update/', body, { ...auth, 'content-type': 'application/json' });
      t.equal(r.status, 400);
      const text = await r.text();
      t.match(text, 'is set more than once');
      t.notMatch(text, SECRET);
    }
    const poisoned = await post('/srv/secrets/update/', `{"realm": "${w.realm}", "locker_name": "keys", "token": "${TOKEN}", "payload": {"__proto__": {"x": "y"}}}`, { ...auth, 'content-type': 'application/json' });
    t.equal(poisoned.status, 400, 'prototype poisoning still refused by the parser');
    const big = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'keys', token: TOKEN, payload: { A: 'x'.repeat(300 * 1024) } });
    t.equal(big.status, 413, 'body size limit');
    t.equal((await big.json() as { code: string }).code, 'OZW_BODY_TOO_LARGE');
  });

  await t.test('secrets update seals a locker the CLI then opens', async (t) => {
    const r = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'keys', token: TOKEN, payload: { API_KEY: SECRET } });
    t.equal(r.status, 202);
    t.same(await r.json(), { status: 'accepted', message: 'Secrets updated' });
    t.match(await cli(w, ['secrets', 'verify', w.realm, 'keys', '--token-stdin'], { input: TOKEN }), { code: 0, stdout: /1 key\(s\)/ });
    const undeclared = await post('/srv/secrets/update/', { realm: w.realm, locker_name: 'nobody-uses', token: TOKEN, payload: { A: 'b' } });
    t.equal(undeclared.status, 202);
    t.same((await undeclared.json() as { warnings: string[] }).warnings, [`the manifests declare no locker "nobody-uses" in realm "${w.realm}"`], 'warned, as secrets set warns');
  });

  await t.test('update with tokens: the container starts with the secrets; no token stays in Redis', async (t) => {
    const r = await post('/srv/services/active/update/', [{ name: 'chat-1', service: 'chat', realm: w.realm, profile: 'small', secrets_tokens: { keys: TOKEN } }]);
    t.equal(r.status, 202);
    const body = await r.json() as { generation: number };
    t.equal(body.generation, 1);
    const s = await phaseIs(w, 'chat-1', 'Running');
    const env = await execEnv(w, s.containerId!);
    t.match(env, new RegExp(`^API_KEY=${SECRET}$`, 'm'));
    t.match(env, /^SIZE=small$/m);
    t.equal(await w.redis.exists(`unlock:${w.realm}:keys`), 0, 'the token was taken');
    const active = await (await fetch(`${base}/srv/services/active/`, { headers: auth })).json() as { name: string; status: string; persistent: boolean; secrets_tokens: object }[];
    const chat = active.find((a) => a.name === 'chat-1')!;
    t.equal(chat.status, 'available');
    t.equal(chat.persistent, false);
    t.same(chat.secrets_tokens, {}, 'tokens are never echoed');
    t.equal(active.find((a) => a.name === 'web')!.persistent, true);
    const list = await cli(w, ['services', 'list']);
    t.match(list.stdout, /^generation 1$/m);
    t.match(list.stdout, new RegExp(`^${w.realm}:chat-1\\[chat\\]\\[\\]\\[small\\]\\tRunning`, 'm'));
  });

  await t.test('concurrent updates: each lands whole, none is lost', async (t) => {
    const a = [{ name: 'a1', service: 'web', realm: w.realm }, { name: 'a2', service: 'web', realm: w.realm }];
    const b = [{ name: 'b1', service: 'web', realm: w.realm }];
    const before = (JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:desired`))!) as { generation: number }).generation;
    const rs = await Promise.all([post('/srv/services/active/update/', a), post('/srv/services/update/', b), post('/srv/services/dynamic/update/', a)]);
    t.same(rs.map((r) => r.status), [202, 202, 202]);
    const gens = await Promise.all(rs.map(async (r) => (await r.json() as { generation: number }).generation));
    t.same([...gens].sort(), [before + 1, before + 2, before + 3], 'three distinct generations: every write counted');
    const final = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:desired`))!) as { generation: number; services: { name: string }[] };
    t.equal(final.generation, before + 3);
    const names = final.services.map((s) => s.name).sort().join(',');
    t.ok(names === 'a1,a2' || names === 'b1', `the final set is one whole update (${names})`);
    const stale = await post('/srv/services/active/update/', b, { ...auth, 'if-match': String(before) });
    t.equal(stale.status, 409, 'If-Match with an old generation is a conflict');
    t.equal((await stale.json() as { code: string }).code, 'OZW_CONFLICT');
  });

  await t.test('services update from the CLI', async (t) => {
    const tokFile = join(w.dir, 'tok');
    await fs.writeFile(tokFile, `${TOKEN}\n`);
    // A token pasted where the file name or the locker name goes is not echoed.
    for (const tf of [`keys=${TOKEN}`, `${TOKEN} x`, `${TOKEN} x=${tokFile}`]) {
      const bad = await cli(w, ['services', 'update', `${w.realm}:c2[chat][][small]`, '--token-for', tf]);
      t.equal(bad.code, 1);
      t.notMatch(bad.stdout + bad.stderr, TOKEN, 'the token is not echoed');
    }
    w.transcript.splice(-3); // their command lines hold the token on purpose; their output was checked above
    const stale = await post('/srv/services/active/update/', [], { ...auth, 'if-match': 'abc' });
    t.equal(stale.status, 400, 'an If-Match that is not a generation is refused, not ignored');
    const r = await cli(w, ['services', 'update', `${w.realm}:c2[chat][][small]`, `${w.realm}:w2[web]`, '--token-for', `keys=${tokFile}`]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, `unlock:${w.realm}:keys written`);
    await phaseIs(w, 'c2', 'Running');
    await phaseIs(w, 'w2', 'Running');
    await waitFor('the API-made instances removed', async () => {
      const st = await statuses(w);
      return !st['chat-1'] && !st['a1'] && !st['b1'];
    });
    const bad = await cli(w, ['services', 'update', `${w.realm}:x[nosuch]`, `${w.realm}:y[chat][gpu]`]);
    t.equal(bad.code, 1);
    t.match(bad.stderr, `service "nosuch" is not defined in realm "${w.realm}" (services: chat or web)`);
    t.match(bad.stderr, 'service "chat" has no variety "gpu" (varieties: (none))');
    t.match(await cli(w, ['services', 'update', `${w.realm}:web[web]`]), { code: 1, stderr: /already run an instance of that name as a persistent service.*\n(.*\n)*  fix: give the instance another name/ });
    t.match(await cli(w, ['services', 'update', 'a:b:c']), { code: 1, stderr: /OZW_SPEC_INVALID/ });
    t.match(await cli(w, ['services', 'update', `${w.realm}:w3[web]`, '--expect-generation', '0']), { code: 1, stderr: /OZW_CONFLICT: the dynamic set is at generation \d+, not 0/ });
    const clear = await cli(w, ['services', 'update', '--clear']);
    t.equal(clear.code, 0);
    await waitFor('all dynamic instances gone', async () => {
      const st = await statuses(w);
      return Object.keys(st).join() === 'web';
    });
  });

  await t.test('Redis away: 503, not a hang', async (t) => {
    const { execFileSync } = await import('node:child_process');
    const rport = await freePort();
    const rs = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor('redis up', async () => execFileSync('redis-cli', ['-p', String(rport), 'ping']).toString().includes('PONG'));
    const p2 = await freePort();
    const api2 = startApi(w, p2, { OZWALD_REDIS_URL: `redis://127.0.0.1:${rport}/0` });
    t.teardown(() => api2.proc.kill('SIGKILL'));
    await waitFor('api2 up', async () => (await fetch(`http://127.0.0.1:${p2}/health`).catch(() => null))?.ok);
    rs.kill('SIGKILL');
    await new Promise((r) => rs.once('close', r));
    const started = Date.now();
    const r = await fetch(`http://127.0.0.1:${p2}/srv/services/active/`, { headers: auth });
    t.equal(r.status, 503);
    t.equal((await r.json() as { code: string }).code, 'OZW_REDIS_UNAVAILABLE');
    t.ok(Date.now() - started < 5000, 'answered at once');
  });

  await t.test('no key, no API', async (t) => {
    const r = await cli(w, ['api', '--listen', '127.0.0.1:1'], { env: { OZWALD_SYSTEM_KEY: '' } });
    t.equal(r.code, 1);
    t.match(r.stderr, 'OZW_USAGE: OZWALD_SYSTEM_KEY is not set');
    const short = await cli(w, ['api', '--listen', '127.0.0.1:1'], { env: { OZWALD_SYSTEM_KEY: 'hunter2' } });
    t.match(short, { code: 1, stderr: 'OZW_USAGE: OZWALD_SYSTEM_KEY is 7 characters long; the API wants at least 16' });
    t.notMatch(short.stderr, 'hunter2');
    // The port the running API holds: a clear usage error, not an internal one.
    const busy = await cli(w, ['api', '--listen', `127.0.0.1:${port}`], { env: { OZWALD_SYSTEM_KEY: KEY } });
    t.match(busy, { code: 1, stderr: `OZW_USAGE: cannot listen on 127.0.0.1:${port}: the address is in use` });
    const health = await fetch(`${base}/health?probe=1`);
    t.equal(health.status, 200, '/health needs no auth with a query string either');
  });

  await t.test('the canary token, the secret and the system key appear nowhere', async (t) => {
    api.proc.kill('SIGTERM');
    await new Promise((r) => api.proc.once('close', r));
    await ctl.stop();
    const text = w.transcript.join('\n') + (await redisDump(w.redis));
    t.ok(/"url":"\/srv\/secrets\/update\/"/.test(text), 'the API logged its requests');
    for (const needle of [TOKEN, SECRET, KEY]) t.notMatch(text, needle);
  });
});
