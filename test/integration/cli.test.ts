// The CLI against bad input: every mistake gets a clear error with a stable
// code, exit 1, and nothing is written.
import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, cli, phaseIs, redisDump, startController, teardown, world } from '../helpers/harness.js';
import { COMMANDS } from '../../src/cli/commands.js';

const CANARY = 'canary-cli-ZZ91';

t.test('cli', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys]}
    service-definitions:
      - {name: web, type: container, image: ${IMAGE}}
      - {name: api, type: container, image: ${IMAGE}, lockers: [keys]}
    persistent-services:
      - {name: web, service: web}
      - {name: api, service: api}
`);

  await t.test('usage', async (t) => {
    const none = await cli(w, []);
    t.equal(none.code, 1);
    t.match(none.stdout, /^usage: ozwald/);
    t.equal((await cli(w, ['--help'])).code, 0);
    for (const name of Object.keys(COMMANDS)) {
      const r = await cli(w, [...name.split(' '), '--help']);
      t.equal(r.code, 0, `${name} --help`);
      t.match(r.stdout, /example: ozwald /, `${name} --help shows an example`);
    }
    t.match(await cli(w, ['bogus']), { code: 1, stderr: 'ozwald: OZW_USAGE: unknown command "bogus"; run ozwald --help\n' });
    t.match(await cli(w, ['secrets']), { code: 1, stderr: /OZW_USAGE: "secrets" needs a subcommand: set, list, rm/ });
    t.match(await cli(w, ['status', '--frobnicate']), { code: 1, stderr: `ozwald: OZW_USAGE: status: unknown option --frobnicate; a value that starts with '-' goes after '--'\n  fix: see \`ozwald status --help\` for the options and an example\n` });
    t.match(await cli(w, ['status', '--jsn']), { code: 1, stderr: 'status: unknown option --jsn (did you mean --json?)' });
    t.match(await cli(w, ['down'], { env: { DOCKER_HOST: 'garbage://x' } }), { code: 1, stderr: 'OZW_USAGE: DOCKER_HOST=garbage://x is not an engine address' });
    for (const bad of ['../victim', '..', 'a b', '', 'x*', 'a/b']) {
      t.match(await cli(w, ['--provisioner', bad, 'run']), { code: 1, stderr: /OZW_USAGE: the provisioner name .* is not a valid name/ }, `provisioner ${JSON.stringify(bad)} refused`);
    }
    t.match(await cli(w, ['statsu']), { code: 1, stderr: 'unknown command "statsu" (did you mean status?)' });
    t.match(await cli(w, ['unlock', 'x']), { code: 1, stderr: 'OZW_USAGE: expected REALM LOCKER\n  fix: see `ozwald unlock --help`' });
    const help = await cli(w, ['help', 'secrets', 'set']);
    t.equal(help.code, 0);
    t.match(help.stdout, /^ozwald secrets set REALM LOCKER --file F/, '`ozwald help CMD` is `ozwald CMD --help`');
    t.match(await cli(w, ['unlock', w.realm]), { code: 1, stderr: /OZW_USAGE: expected REALM LOCKER/ });
    t.match(await cli(w, ['unlock', 'bad:realm', 'keys']), { code: 1, stderr: /OZW_USAGE: realm "bad:realm" is not a valid name/ });
    t.match((await cli(w, ['--version'])).stdout, /^\d+\.\d+\.\d+\n$/);
    const group = await cli(w, ['secrets', '--help']);
    t.equal(group.code, 0);
    t.match(group.stdout, /secrets rotate\s+re-seal a locker under a new token/);
    for (const [args, msg] of [
      [['--resync', '0'], '--resync 0: give a number from 1 to 3600'],
      [['--resync', 'abc'], '--resync abc: give a number from 1 to 3600'],
      [['--concurrency', '0'], '--concurrency 0: give a whole number from 1 to 64'],
      [['--concurrency', '2.5'], '--concurrency 2.5: give a whole number from 1 to 64'],
      [['--log-level', 'bogus'], '--log-level bogus: use one of trace, debug, info, warn, error, fatal, silent'],
    ] as const) {
      t.match(await cli(w, ['run', ...args]), { code: 1, stderr: `ozwald: OZW_USAGE: ${msg}\n` }, args.join(' '));
    }
  });

  await t.test('tokens and TTLs', async (t) => {
    for (const ttl of ['0', '3601', 'abc', '1.5', '-1', '']) {
      const r = await cli(w, ['unlock', w.realm, 'keys', `--ttl=${ttl}`], { input: 'x' });
      t.equal(r.code, 1, `--ttl ${ttl}`);
      t.match(r.stderr, `OZW_TTL_INVALID: --ttl ${ttl}: give whole seconds from 1 to 3600\n  fix: use --ttl with whole seconds from 1 to 3600 (default 60)\n`);
    }
    const none = await cli(w, ['unlock', w.realm, 'keys']);
    t.equal(none.code, 1);
    t.match(none.stderr, /OZW_TOKEN_MISSING: no token given: use the prompt \(on a terminal\), --token-stdin, --token-file F or OZWALD_TOKEN/);
    t.match(await cli(w, ['unlock', w.realm, 'keys', '--token-stdin'], { input: '\n' }), { code: 1, stderr: /OZW_TOKEN_MISSING/ });
    const argv = await cli(w, ['unlock', w.realm, 'keys', '--token', CANARY]);
    t.match(argv.stderr, /warning: --token puts the token in argv and shell history/);
    t.match(argv.stderr, new RegExp(`OZW_VAULT_EMPTY: nothing sealed at vault:${w.realm}:keys`), 'no unlock key for an empty locker');
    t.equal(await w.redis.exists(`unlock:${w.realm}:keys`), 0);
    // Nothing waits for the locker: --wait says so at once and leaves the key to expire.
    const env = join(w.dir, 'nw.env');
    await fs.writeFile(env, 'K=v\n');
    t.equal((await cli(w, ['secrets', 'set', w.realm, 'spare', '--file', env, '--token-stdin'], { input: 'tok-spare' })).code, 0);
    const started = Date.now();
    const nw = await cli(w, ['unlock', w.realm, 'spare', '--token-stdin', '--wait', '--ttl', '30'], { input: 'tok-spare' });
    t.equal(nw.code, 0);
    t.match(nw.stdout, `no instance is waiting for ${w.realm}:spare; the key expires in 30s unless a controller takes it`);
    t.ok(Date.now() - started < 5000, 'no waiting');
    const ttl = await w.redis.ttl(`unlock:${w.realm}:spare`);
    t.ok(ttl > 20 && ttl <= 30, `the key is left with its TTL (${ttl}s)`);
    await w.redis.del(`unlock:${w.realm}:spare`, `vault:${w.realm}:spare`);
  });

  await t.test('secrets set refuses bad payloads naming the key, never the value', async (t) => {
    const f = join(w.dir, 'bad.json');
    await fs.writeFile(f, JSON.stringify({ GOOD: 'x', BAD: `${CANARY}\ninjected=1`, 'no spaces': 'y' }));
    const r = await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', f, '--token-stdin'], { input: 'tok' });
    t.equal(r.code, 1);
    t.match(r.stderr, `OZW_PAYLOAD_INVALID: ${f}: the value of BAD contains a newline`);
    t.match(r.stderr, `${f}: key #3 is not a valid environment name`);
    t.notMatch(r.stderr + r.stdout, CANARY);
    t.equal(await w.redis.exists(`vault:${w.realm}:keys`), 0, 'nothing written');
    const latin1 = join(w.dir, 'latin1.env');
    await fs.writeFile(latin1, Buffer.concat([Buffer.from(`KEY=${CANARY}`), Buffer.from([0xe9, 0xff]), Buffer.from('\n')]));
    const r2 = await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', latin1, '--token-stdin'], { input: 'tok' });
    t.match(r2, { code: 1, stderr: `OZW_PAYLOAD_INVALID: ${latin1}: not valid UTF-8 text` }, 'refused, not sealed with U+FFFD');
    t.notMatch(r2.stderr, CANARY);
    t.match(await cli(w, ['secrets', 'set', w.realm, 'keys', '--token-stdin'], { input: 'tok' }), { code: 1, stderr: /OZW_USAGE: secrets set needs --file F/ });
    t.match(await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', join(w.dir, 'nope.json'), '--token-stdin'], { input: 'tok' }), { code: 1, stderr: /OZW_USAGE: cannot read --file .*nope\.json: ENOENT\n  fix: check the path given to --file/ });
    const env = join(w.dir, 'ok.env');
    await fs.writeFile(env, `# keys\nAPI_KEY=${CANARY}\n`);
    const undeclared = await cli(w, ['secrets', 'set', w.realm, 'other', '--file', env, '--token-stdin'], { input: 'tok' });
    t.equal(undeclared.code, 0);
    t.match(undeclared.stderr, `warning: the manifests in ${w.manifests} declare no locker "other" in realm "${w.realm}"`);
    const list = await cli(w, ['secrets', 'list', w.realm]);
    t.match(list.stdout, new RegExp(`^${w.realm}\\tother\\tv1\\t\\d{4}-`, 'm'));
    t.notMatch(list.stdout, CANARY);
    t.equal((await cli(w, ['secrets', 'rm', w.realm, 'other'])).code, 0);
    t.match(await cli(w, ['secrets', 'rm', w.realm, 'other']), { code: 1, stderr: /OZW_VAULT_EMPTY/ });
    t.notMatch(await redisDump(w.redis), CANARY);
  });

  await t.test('validate and plan', async (t) => {
    t.match(await cli(w, ['validate']), { code: 0, stdout: `${w.manifests}: valid (1 realm(s), 2 persistent service(s))\n` });
    const bad = join(w.dir, 'bad.yaml');
    await fs.writeFile(bad, 'realms:\n  r:\n    service-definitions:\n      - name: a\n        type: container\n        imgae: x\n        environment: {A: null}\n');
    const v = await cli(w, ['validate', bad]);
    t.equal(v.code, 1);
    t.equal(v.stderr, [
      `${bad}:6:9: unknown key "imgae"; did you mean "image"? (realms.r.service-definitions.0.imgae)`,
      `${bad}:7:26: environment values must be a string, number or boolean, not null (realms.r.service-definitions.0.environment.A)`,
      '',
    ].join('\n'));
    const js = JSON.parse((await cli(w, ['validate', bad, '--json'])).stdout);
    t.equal(js.ok, false);
    t.same(js.problems[0], { file: bad, line: 6, col: 9, path: 'realms.r.service-definitions.0.imgae', message: 'unknown key "imgae"; did you mean "image"?' });
    t.match(await cli(w, ['validate', join(w.dir, 'missing')]), { code: 1, stderr: `${join(w.dir, 'missing')}: no such file or directory\n` });
    t.match(await cli(w, ['plan', '--manifests', join(w.dir, 'missing')]), { code: 1, stderr: /OZW_MANIFEST_NOT_FOUND/ });

    const p = await cli(w, ['plan']);
    t.equal(p.code, 2, 'changes pending');
    t.match(p.stdout, `+ create  ${w.realm}/web image=${IMAGE}`);
    t.match(p.stdout, `! locked  ${w.realm}/api: nothing sealed at vault:${w.realm}:keys`);
    // With web running, a changed manifest: plan names the changed fields.
    const ctl = startController(w);
    await phaseIs(w, 'web', 'Running');
    await ctl.stop();
    const m = join(w.manifests, 'm.yaml');
    await fs.writeFile(m, (await fs.readFile(m, 'utf8')).replace(`{name: web, type: container, image: ${IMAGE}}`, `{name: web, type: container, image: ${IMAGE}, environment: {MODE: fast}}`));
    const changed = await cli(w, ['plan']);
    t.equal(changed.code, 2);
    t.match(changed.stdout, `~ replace ${w.realm}/web (spec-changed: environment.MODE)`);
    t.notMatch(changed.stdout, /\+ create/, 'nothing else to create');
    const js2 = JSON.parse((await cli(w, ['plan', '--json'])).stdout);
    t.same(js2.actions, [{ kind: 'replace', key: `${w.realm}/web`, why: 'spec-changed', changed: ['environment.MODE'] }]);
    const schema = JSON.parse((await cli(w, ['schema'])).stdout);
    t.equal(schema.type, 'object');
    t.ok(schema.properties.realms, 'schema has realms');
  });

  await t.test('an unreachable Redis is a clear error', async (t) => {
    const r = await cli(w, ['status', '--redis', 'redis://:hunter2@127.0.0.1:1/0']);
    t.equal(r.code, 1);
    t.match(r.stderr, /OZW_REDIS_UNAVAILABLE: cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/);
    t.notMatch(r.stderr, 'hunter2', 'the password is not printed');
    t.match(await cli(w, ['status', '--redis', 'notaurl']), { code: 1, stderr: /OZW_USAGE: the Redis URL \(unparseable\) is not of the form redis:\/\// });
    t.match(await cli(w, ['status', '--redis', 'http://:pw@127.0.0.1:6379']), { code: 1, stderr: 'ozwald: OZW_USAGE: the Redis URL http://:***@127.0.0.1:6379/ is not of the form redis://[:password@]host[:port][/db] (or rediss:// for TLS)\n' });
    t.match(r.stderr, 'ECONNREFUSED', 'the socket\'s own reason, not just "Connection is closed"');
    // A database the server lacks, or no number at all, is refused: not database 0 among other keys.
    const url = new URL(w.env.OZWALD_REDIS_URL!);
    for (const db of ['16', 'abc', '-1']) {
      url.pathname = `/${db}`;
      t.match(await cli(w, ['status', '--redis', url.toString()]), { code: 1, stderr: /OZW_USAGE: the Redis URL .* (selects database 16, which this server refuses|names database "(abc|-1)", which is not a number)/ }, `database ${db}`);
    }
  });
});
