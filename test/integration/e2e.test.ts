// Steps 2–8 of the foundation issue, end to end: the real CLI as a separate
// process, the real Redis and the real dockerd that hack/test.sh starts.
import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import {
  IMAGE, cli, container, execEnv, filesUnder, phaseIs, redisDump, startController, statuses, teardown, waitFor, world, type World,
} from '../helpers/harness.js';

const CANARY = 'canary-secret-e2e-5Q7x';
const TOKEN = 'token-e2e-VXk3-right';
const WRONG = 'token-e2e-VXk3-wrong';

function manifest(w: World, o: { webEnv?: string; withLlm?: boolean; extra?: string; vaultedEnv?: string } = {}): string {
  return `realms:
  ${w.realm}:
    vault:
      lockers:
        keys: {}
    service-definitions:
      - name: web
        type: container
        image: ${IMAGE}
        environment:
          GREETING: ${o.webEnv ?? 'hello'}
          VERSION: 1.10
      - name: llm
        type: container
        image: ${IMAGE}
        environment: {MODEL: tiny}
        varieties:
          cpu: {environment: {THREADS: 2}}
          gpu: {environment: {GPU: true}}
        profiles:
          small: {environment: {MAX_LEN: 4096}}
      - name: vaulted
        type: container
        image: ${IMAGE}
        lockers: [keys]
        environment:
          PLAIN: ${o.vaultedEnv ?? 'visible'}
${o.extra ?? ''}    persistent-services:
      - {name: web, service: web}
${o.withLlm === false ? '' : '      - {name: llm-small, service: llm, variety: cpu, profile: small}\n'}      - {name: vaulted, service: vaulted}
`;
}

async function writeManifest(w: World, text: string): Promise<void> {
  // Save as editors do: write aside, then rename over.
  const file = join(w.manifests, 'realm.yaml');
  await fs.writeFile(`${file}.tmp~`, text);
  await fs.rename(`${file}.tmp~`, file);
}

t.test('the foundation, end to end', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  await writeManifest(w, manifest(w));

  // Containers we must never touch: no labels at all, and another provisioner's.
  const foreign = await w.docker.createContainer({ Image: IMAGE, name: `foreign-${w.provisioner}`, Labels: { 'ozwald.realm': w.realm } });
  await foreign.start();
  const other = await w.docker.createContainer({
    Image: IMAGE, name: `ozsvc--${w.realm}--other-${w.provisioner}`,
    Labels: { 'ozwald.managed': 'true', 'ozwald.provisioner': `${w.provisioner}-other`, 'ozwald.realm': w.realm, 'ozwald.instance': 'web', 'ozwald.spec-hash': 'x' },
  });
  await other.start();
  t.teardown(async () => {
    await foreign.remove({ force: true }).catch(() => {});
    await other.remove({ force: true }).catch(() => {});
  });

  let ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));

  await t.test('plain services run; the locker service is Locked and says which locker', async (t) => {
    const web = await phaseIs(w, 'web', 'Running');
    const llm = await phaseIs(w, 'llm-small', 'Running');
    const c = await container(w, 'web');
    t.ok(c, 'docker shows ozsvc--<realm>--web');
    t.equal(c!.State, 'running');
    t.equal(c!.Id, web.containerId);
    const ours = (labels: Record<string, string>) => Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('ozwald.') && k !== 'ozwald.spec-digest'));
    t.equal(JSON.parse(c!.Labels['ozwald.spec-digest']!).image, IMAGE, 'a per-field digest of the spec rides along');
    t.same(ours(c!.Labels), {
      'ozwald.managed': 'true', 'ozwald.provisioner': w.provisioner, 'ozwald.realm': w.realm, 'ozwald.instance': 'web',
      'ozwald.service': 'web', 'ozwald.variety': '', 'ozwald.profile': '', 'ozwald.spec-hash': web.specHash,
    });
    const l = await container(w, 'llm-small');
    t.same(ours(l!.Labels), {
      'ozwald.managed': 'true', 'ozwald.provisioner': w.provisioner, 'ozwald.realm': w.realm, 'ozwald.instance': 'llm-small',
      'ozwald.service': 'llm', 'ozwald.variety': 'cpu', 'ozwald.profile': 'small', 'ozwald.spec-hash': llm.specHash,
    });
    const env = await execEnv(w, l!.Id);
    t.match(env, /^MODEL=tiny$/m);
    t.match(env, /^THREADS=2$/m);
    t.match(env, /^MAX_LEN=4096$/m);
    t.match(await execEnv(w, c!.Id), /^VERSION=1\.10$/m, 'environment values are the text written');

    const v = await phaseIs(w, 'vaulted', 'Locked', 'LockerEmpty');
    t.same(v.lockers, ['keys']);
    t.notOk(await container(w, 'vaulted'), 'no container for the locked service');

    const st = await cli(w, ['status']);
    t.equal(st.code, 0);
    t.match(st.stdout, new RegExp(`${w.realm}:vaulted\\s+vaulted\\s+Locked\\s+LockerEmpty\\s+.*vault:${w.realm}:keys.*\\(lockers: keys\\)`));
    t.match(st.stdout, new RegExp(`${w.realm}:web\\s+web\\s+Running`));
    const js = await cli(w, ['status', '--json']);
    const parsed = JSON.parse(js.stdout);
    t.same(parsed.instances.map((i: { instance: string; phase: string }) => `${i.instance}=${i.phase}`).sort(), ['llm-small=Running', 'vaulted=Locked', 'web=Running']);
    t.equal(parsed.controller.manifests.ok, true);
  });

  await t.test('secrets set seals the payload; Redis holds no plaintext and no token', async (t) => {
    const file = join(w.dir, 'secrets.json');
    await fs.writeFile(file, JSON.stringify({ API_KEY: CANARY, PLAIN: 'from-locker', SPACED: ' a b = c ' }));
    const r = await cli(w, ['secrets', 'set', w.realm, 'keys', '--file', file, '--token-stdin'], { input: `${TOKEN}\n` });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `sealed 3 key(s) into vault:${w.realm}:keys\n`);
    const blob = await w.redis.get(`vault:${w.realm}:keys`);
    t.ok(blob);
    t.notMatch(blob!, CANARY);
    t.notMatch(blob!, TOKEN);
    const dump = await redisDump(w.redis);
    t.notMatch(dump, CANARY);
    t.notMatch(dump, TOKEN);
    await fs.rm(file);
    await phaseIs(w, 'vaulted', 'Locked', 'WaitingForUnlock');
  });

  await t.test('a wrong token starts nothing and says so', async (t) => {
    const r = await cli(w, ['unlock', w.realm, 'keys', '--token-stdin', '--wait'], { input: WRONG });
    t.equal(r.code, 1, `unlock --wait reports the failure: ${r.stdout}${r.stderr}`);
    t.match(r.stdout, `${w.realm}:vaulted: not started: Locked (WrongToken) the token did not open locker vault:${w.realm}:keys`);
    const s = await phaseIs(w, 'vaulted', 'Locked', 'WrongToken');
    t.match(s.message, `the token did not open locker vault:${w.realm}:keys`);
    t.same(s.lockers, ['keys']);
    t.notOk(await container(w, 'vaulted'));
    t.equal(await w.redis.exists(`unlock:${w.realm}:keys`), 0, 'the wrong token was taken, not left in Redis');
  });

  await t.test('unlock: the controller takes the key at once, launches with an env-file and removes it', async (t) => {
    const before = Date.now();
    const r = await cli(w, ['unlock', w.realm, 'keys', '--ttl', '30'], { env: { OZWALD_TOKEN: TOKEN } });
    t.equal(r.code, 0, r.stderr);
    const s = await phaseIs(w, 'vaulted', 'Running');
    t.ok(Date.now() - before < 5000, 'noticed within seconds, not on a long poll');
    const c = await container(w, 'vaulted');
    t.equal(c!.Id, s.containerId);
    const env = await execEnv(w, c!.Id);
    t.match(env, new RegExp(`^API_KEY=${CANARY}$`, 'm'), 'the secret is inside the container');
    t.match(env, /^SPACED= a b = c $/m, 'values verbatim');
    t.match(env, /^PLAIN=visible$/m, 'explicit environment wins over a locker key');
    t.equal(await w.redis.exists(`unlock:${w.realm}:keys`), 0, 'unlock key gone');
    t.same(await filesUnder(w.runtimeDir), [], 'no env-file left');
    t.match(ctl.output(), /took unlock keys/);
  });

  await t.test('a secret service whose spec changes keeps running until unlocked again', async (t) => {
    const old = await container(w, 'vaulted');
    await writeManifest(w, manifest(w, { vaultedEnv: 'changed' }));
    const s = await phaseIs(w, 'vaulted', 'Locked', 'WaitingForUnlock');
    t.match(s.message, 'keeps its previous spec');
    t.equal((await container(w, 'vaulted'))!.Id, old!.Id, 'the old container still runs');
    t.equal((await container(w, 'vaulted'))!.State, 'running');
    const r = await cli(w, ['unlock', w.realm, 'keys', '--token-file', join(w.dir, 'tok')], { env: {} }).catch(() => null);
    t.equal(r?.code, 1, 'a missing token file is an error');
    await fs.writeFile(join(w.dir, 'tok'), `${TOKEN}\n`, { mode: 0o600 });
    t.equal((await cli(w, ['unlock', w.realm, 'keys', '--token-file', join(w.dir, 'tok')])).code, 0);
    const after = await waitFor('vaulted replaced', async () => {
      const c = await container(w, 'vaulted');
      return c && c.Id !== old!.Id && c.State === 'running' ? c : undefined;
    });
    t.match(await execEnv(w, after.Id), /^PLAIN=changed$/m);
    await phaseIs(w, 'vaulted', 'Running');
    await fs.rm(join(w.dir, 'tok'));
  });

  await t.test('manifest edits: add starts, env change replaces, removal removes, syntax error changes nothing', async (t) => {
    const web1 = (await container(w, 'web'))!;
    const extra = `      - name: added\n        type: container\n        image: ${IMAGE}\n`;
    await writeManifest(w, manifest(w, { vaultedEnv: 'changed', extra }).replace('    persistent-services:\n', `    persistent-services:\n      - {name: added, service: added}\n`));
    await phaseIs(w, 'added', 'Running');
    t.equal((await container(w, 'added'))!.State, 'running', 'added service started');

    await writeManifest(w, manifest(w, { vaultedEnv: 'changed', webEnv: 'bonjour', withLlm: false }));
    const web2 = await waitFor('web replaced', async () => {
      const c = await container(w, 'web');
      return c && c.Id !== web1.Id && c.State === 'running' ? c : undefined;
    });
    t.not(web2.Labels['ozwald.spec-hash'], web1.Labels['ozwald.spec-hash'], 'new spec-hash label');
    t.match(await execEnv(w, web2.Id), /^GREETING=bonjour$/m);
    await waitFor('llm-small and added removed', async () => !(await container(w, 'llm-small')) && !(await container(w, 'added')));
    await waitFor('their status records removed', async () => {
      const s = await statuses(w);
      return !s['llm-small'] && !s['added'];
    });

    const vaulted = (await container(w, 'vaulted'))!;
    await fs.writeFile(join(w.manifests, 'broken.yaml'), `realms:\n  ${w.realm}:\n    service-definitions: [\n`);
    const err = await waitFor('the error reported', async () => {
      const c = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`)) ?? '{}');
      return c.manifests && !c.manifests.ok ? c.manifests.errors as string[] : undefined;
    });
    t.match(err[0], /broken\.yaml:\d+:\d+: YAML: /, 'file:line:col');
    const st = await cli(w, ['status']);
    t.match(st.stdout, /manifests: ERROR/);
    t.match(st.stdout, /broken\.yaml:\d+:\d+/);
    // A few resync periods pass; nothing may change.
    await new Promise((r) => setTimeout(r, 4500));
    t.equal((await container(w, 'web'))!.Id, web2.Id, 'web untouched');
    t.equal((await container(w, 'vaulted'))!.Id, vaulted.Id, 'vaulted untouched');
    t.equal((await container(w, 'vaulted'))!.State, 'running');
    await fs.rm(join(w.manifests, 'broken.yaml'));
    await waitFor('the error cleared', async () => JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`)) ?? '{}').manifests?.ok);
  });

  await t.test('restart adopts running containers: nothing is recreated', async (t) => {
    const before = await w.docker.listContainers({ filters: { label: [`ozwald.provisioner=${w.provisioner}`] } });
    t.equal(before.length, 2);
    t.equal(await ctl.stop('SIGINT'), 0, 'Ctrl-C exits cleanly');
    const still = await w.docker.listContainers({ filters: { label: [`ozwald.provisioner=${w.provisioner}`] } });
    t.same(still.map((c) => c.Id).sort(), before.map((c) => c.Id).sort(), 'containers keep running without the controller');
    ctl = startController(w);
    await waitFor('a few passes', async () => (ctl.output().match(/manifests loaded/g) ?? []).length >= 1 && (await new Promise((r) => setTimeout(r, 3000)), true));
    const after = await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } });
    t.same(after.map((c) => `${c.Id}:${c.State}`).sort(), before.map((c) => `${c.Id}:running`).sort(), 'same containers, still running');
    t.notMatch(ctl.output(), /"msg":"launching"/, 'no launch after restart');
    const s = await statuses(w);
    t.equal(s['web']!.phase, 'Running');
    t.equal(s['vaulted']!.phase, 'Running', 'the secret service is adopted without a token');
  });

  await t.test('foreign containers were never touched', async (t) => {
    t.equal((await foreign.inspect()).State.Running, true);
    t.equal((await other.inspect()).State.Running, true);
  });

  await t.test('the canary secret and the token appear nowhere but inside the container', async (t) => {
    await ctl.stop('SIGTERM');
    const text = w.transcript.join('\n');
    t.ok(text.length > 1000, 'there is output to search');
    for (const needle of [CANARY, TOKEN, WRONG]) {
      t.notMatch(text, needle, `${needle.slice(0, 12)}… not in any CLI or controller output`);
      t.notMatch(await redisDump(w.redis), needle, 'not in Redis outside the vault');
    }
    t.same(await filesUnder(w.runtimeDir), [], 'env-file directory empty');
    const c = await container(w, 'vaulted');
    t.match(await execEnv(w, c!.Id), CANARY, 'found inside the container');
  });
});
