// The secret's whole path under pressure: rotation while running, legacy
// Fernet blobs, verify, --strict, and a controller killed mid-launch.
import t from 'tap';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, cli, container, execEnv, filesUnder, phaseIs, redisDump, startController, statuses, teardown, waitFor, world, type World } from '../helpers/harness.js';
import { fernetSeal } from '../helpers/fernet.js';

const V1 = 'canary-vault-v1-Qa';
const V2 = 'canary-vault-v2-Wb';
const LEGACY = 'canary-vault-legacy-Ec';
const T1 = 'tok-vault-one-1111';
const T2 = 'tok-vault-two-2222';
const TL = 'tok-vault-legacy-3333';
const ENV_CANARY = 'tok-controller-env-4444';

async function sealFile(w: World, locker: string, payload: Record<string, string>, token: string, extra: string[] = []) {
  const file = join(w.dir, `${locker}.json`);
  await fs.writeFile(file, JSON.stringify(payload));
  const r = await cli(w, ['secrets', 'set', w.realm, locker, '--file', file, '--token-stdin', ...extra], { input: token });
  await fs.rm(file);
  return r;
}

t.test('vault paths', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await fs.writeFile(join(w.manifests, 'm.yaml'), `realms:
  ${w.realm}:
    vault: {lockers: [keys, old]}
    service-definitions:
      - {name: api, type: container, image: ${IMAGE}, lockers: [keys]}
      - {name: legacy, type: container, image: ${IMAGE}, lockers: [old]}
    persistent-services:
      - {name: api, service: api}
      - {name: legacy, service: legacy}
`);
  t.equal((await sealFile(w, 'keys', { SECRET: V1 }, T1)).code, 0);
  // The controller's own environment carries a canary: it must not reach the docker CLI.
  w.env.OZWALD_TOKEN = ENV_CANARY;
  let ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  delete w.env.OZWALD_TOKEN;
  t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-stdin'], { input: T1 })).code, 0);
  await phaseIs(w, 'api', 'Running');

  await t.test('verify says whether a token opens a locker', async (t) => {
    t.match(await cli(w, ['secrets', 'verify', w.realm, 'keys', '--token-stdin'], { input: T1 }), { code: 0, stdout: `the token opens vault:${w.realm}:keys (v1 envelope, 1 key(s))\n` });
    t.match(await cli(w, ['secrets', 'verify', w.realm, 'keys', '--token-stdin'], { input: T2 }), { code: 1, stderr: /OZW_VAULT_WRONG_TOKEN/ });
  });

  await t.test('list shows key names with --keys, never values', async (t) => {
    const r = await cli(w, ['secrets', 'list', w.realm, '--keys']);
    t.match(r.stdout, new RegExp(`^${w.realm}\\tkeys\\tv1\\t\\S+\\tSECRET$`, 'm'));
    t.notMatch(r.stdout, V1);
  });

  await t.test('--strict refuses a locker the manifests do not declare', async (t) => {
    const r = await sealFile(w, 'undeclared', { A: 'b' }, T1, ['--strict']);
    t.equal(r.code, 1);
    t.match(r.stderr, `OZW_UNKNOWN_REFERENCE: the manifests in ${w.manifests} declare no locker "undeclared" in realm "${w.realm}" (its lockers: keys or old); nothing was written (--strict)`);
    t.equal(await w.redis.exists(`vault:${w.realm}:undeclared`), 0);
  });

  await t.test('rotate: a wrong old token changes nothing; then running containers are stale until unlocked', async (t) => {
    const before = await w.redis.get(`vault:${w.realm}:keys`);
    const bad = await cli(w, ['secrets', 'rotate', w.realm, 'keys', '--token-stdin'], { input: 'not-the-token', env: { OZWALD_NEW_TOKEN: T2 } });
    t.equal(bad.code, 1);
    t.match(bad.stderr, /OZW_VAULT_WRONG_TOKEN/);
    t.equal(await w.redis.get(`vault:${w.realm}:keys`), before, 'blob untouched');
    const ok = await cli(w, ['secrets', 'rotate', w.realm, 'keys', '--token-stdin'], { input: T1, env: { OZWALD_NEW_TOKEN: T2 } });
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout, `re-sealed 1 key(s) in vault:${w.realm}:keys under the new token\n`);
    t.match(await cli(w, ['secrets', 'verify', w.realm, 'keys', '--token-stdin'], { input: T1 }), { code: 1 }, 'the old token no longer opens it');
    const stale = await phaseIs(w, 'api', 'Running', 'StaleSecrets');
    t.match(stale.message, `running with secrets sealed before the last change of vault:${w.realm}:keys; unlock to refresh`);
    const st = await cli(w, ['status']);
    t.match(st.stdout, /StaleSecrets/);

    // New values too; the running container keeps the old ones until unlock.
    t.equal((await sealFile(w, 'keys', { SECRET: V2 }, T2)).code, 0);
    const old = (await container(w, 'api'))!;
    t.match(await execEnv(w, old.Id), new RegExp(`^SECRET=${V1}$`, 'm'), 'old values until unlocked');

    // A wrong token: the container keeps running its old secrets, and says why.
    const wrong = await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: 'not-the-token' });
    t.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    t.match(wrong.stdout, `${w.realm}:api: not refreshed, still running its old secrets: Running (WrongToken)`);
    await new Promise((r) => setTimeout(r, 3000)); // passes after it (resync 2 s) keep the reason
    const kept = (await statuses(w))['api']!;
    t.same([kept.phase, kept.reason, kept.containerId], ['Running', 'WrongToken', old.Id], 'still running, with the reason');
    t.match(kept.message, 'the last unlock did not refresh it');

    const events: { id: string; action: string; time: number }[] = [];
    const stream = await w.docker.getEvents({ filters: { type: ['container'], label: [`ozwald.provisioner=${w.provisioner}`] } });
    stream.on('data', (b: Buffer) => {
      for (const line of b.toString().split('\n').filter(Boolean)) {
        const e = JSON.parse(line);
        events.push({ id: e.id, action: e.Action, time: e.timeNano });
      }
    });
    const un = await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: T2 });
    t.equal(un.code, 0, un.stdout + un.stderr);
    t.match(un.stdout, `${w.realm}:api: started: Running`);
    const now = (await container(w, 'api'))!;
    t.not(now.Id, old.Id, 'replaced');
    t.match(await execEnv(w, now.Id), new RegExp(`^SECRET=${V2}$`, 'm'));
    await waitFor('old container gone', async () => !(await w.docker.listContainers({ all: true, filters: { id: [old.Id] } })).length);
    (stream as unknown as { destroy(): void }).destroy();
    const newStart = events.find((e) => e.id === now.Id && e.action === 'start');
    const oldDie = events.find((e) => e.id === old.Id && (e.action === 'die' || e.action === 'kill'));
    t.ok(newStart && oldDie && newStart.time < oldDie.time, 'start new, then stop old');
    await phaseIs(w, 'api', 'Running', 'Running');
  });

  await t.test('Python Ozwald (Fernet) lockers open at launch and migrate to v1', async (t) => {
    await w.redis.set(`vault:${w.realm}:old`, fernetSeal(TL, { LEGACY_KEY: LEGACY, PORT: 8080 }));
    const list = await cli(w, ['secrets', 'list', w.realm]);
    t.match(list.stdout, new RegExp(`^${w.realm}\\told\\tlegacy-fernet\\t-$`, 'm'));
    t.equal((await cli(w, ['unlock', w.realm, 'old', '--token-stdin'], { input: TL })).code, 0);
    const s = await waitFor('the legacy note in status', async () => {
      const st = (await statuses(w))['legacy'];
      return st?.phase === 'Running' && st.message.includes('legacy envelope') ? st : undefined;
    });
    t.match(s.message, `legacy envelope: vault:${w.realm}:old; run \`ozwald secrets migrate\``);
    const env = await execEnv(w, s.containerId!);
    t.match(env, new RegExp(`^LEGACY_KEY=${LEGACY}$`, 'm'));
    t.match(env, /^PORT=8080$/m, 'numbers from Python payloads become text');

    t.match(await cli(w, ['secrets', 'migrate', w.realm, 'old', '--token-stdin'], { input: 'wrong' }), { code: 1, stderr: /OZW_VAULT_WRONG_TOKEN/ });
    const m = await cli(w, ['secrets', 'migrate', w.realm, 'old', '--token-stdin'], { input: TL });
    t.equal(m.code, 0, m.stderr);
    t.equal(m.stdout, `migrated vault:${w.realm}:old (2 key(s)) from the legacy Fernet envelope to v1\n`);
    const blob = JSON.parse((await w.redis.get(`vault:${w.realm}:old`))!);
    t.equal(blob.ozv, 1);
    t.same(blob.keys, ['LEGACY_KEY', 'PORT']);
    t.match(await cli(w, ['secrets', 'verify', w.realm, 'old', '--token-stdin'], { input: TL }), { code: 0, stdout: /v1 envelope, 2 key\(s\)/ });
    t.match(await cli(w, ['secrets', 'migrate', w.realm, 'old', '--token-stdin'], { input: TL }), { code: 1, stderr: /already in the v1 envelope/ });
  });

  await t.test('killed between writing the env-file and launching: the next start sweeps it', async (t) => {
    await ctl.stop();
    // A docker CLI that records its argv and environment, then waits before really running.
    const fake = join(w.dir, 'fake-docker');
    await fs.writeFile(fake, `#!/bin/sh\nenv > "${w.dir}/cli-env.txt"\nprintf '%s\\n' "$@" > "${w.dir}/cli-args.txt"\nsleep 30\nexec docker "$@"\n`, { mode: 0o755 });
    await w.docker.getContainer((await container(w, 'api'))!.Id).remove({ force: true });
    w.env.OZWALD_DOCKER_CLI = fake;
    w.env.OZWALD_TOKEN = ENV_CANARY;
    ctl = startController(w);
    delete w.env.OZWALD_DOCKER_CLI;
    delete w.env.OZWALD_TOKEN;
    await phaseIs(w, 'api', 'Locked');
    t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-stdin'], { input: T2 })).code, 0);
    const envFile = await waitFor('the env-file written', async () => (await filesUnder(w.runtimeDir))[0]);
    await waitFor('the fake CLI started', async () => (await fs.stat(join(w.dir, 'cli-args.txt')).catch(() => null)) !== null);
    t.equal((await fs.stat(envFile)).mode & 0o777, 0o600);
    // Nothing secret on any command line while the launch is under way.
    const cmdlines = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        return '';
      }
    }).join('\n');
    t.match(cmdlines, 'fake-docker', 'the launch is under way');
    for (const needle of [V2, T2, ENV_CANARY]) t.notMatch(cmdlines, needle, 'no secret or token in any /proc/*/cmdline');
    const args = readFileSync(join(w.dir, 'cli-args.txt'), 'utf8');
    t.match(args, /^--env-file$/m);
    t.notMatch(args, V2);
    const cliEnv = readFileSync(join(w.dir, 'cli-env.txt'), 'utf8');
    t.notMatch(cliEnv, ENV_CANARY, "the controller's environment does not reach the docker CLI");
    t.notMatch(cliEnv, /OZWALD_/);

    ctl.proc.kill('SIGKILL');
    await new Promise((r) => ctl.proc.once('close', r));
    // The orphaned fake CLI would launch later; stop it so the test is deterministic.
    for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(fake)) process.kill(Number(p), 'SIGKILL');
      } catch { /* gone */ }
    }
    t.same(await filesUnder(w.runtimeDir), [envFile], 'the crash left the env-file behind');
    ctl = startController(w);
    await waitFor('the sweep', async () => /removed env-files left by an earlier run/.test(ctl.output()));
    t.same(await filesUnder(w.runtimeDir), [], 'swept at start-up');
    const s = await phaseIs(w, 'api', 'Locked', 'WaitingForUnlock');
    t.same(s.lockers, ['keys'], 'the token was used up: unlock again');
    await ctl.stop();
  });

  await t.test('no secret or token anywhere but inside containers', async (t) => {
    const text = w.transcript.join('\n') + (await redisDump(w.redis)) + JSON.stringify(await statuses(w));
    for (const needle of [V1, V2, LEGACY, T1, T2, TL, ENV_CANARY]) t.notMatch(text, needle, `${needle.slice(0, 14)}…`);
  });
});
