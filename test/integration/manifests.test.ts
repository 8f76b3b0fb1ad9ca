// Manifests as a GitOps source on a real engine: networks, volumes and ports
// reach the container; editor saves, ConfigMap symlink swaps, git moves,
// truncate-then-write and a folder briefly missing never stop a service.
import t from 'tap';
import { promises as fs, mkdirSync, writeFileSync, symlinkSync, renameSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { IMAGE, container, phaseIs, startController, statuses, teardown, waitFor, world, type World, freePort } from '../helpers/harness.js';


const ids = async (w: World) => Object.fromEntries((await w.docker.listContainers({ filters: { label: [`ozwald.provisioner=${w.provisioner}`] } })).map((c) => [c.Labels['ozwald.instance'], c.Id]));

t.test('networks, volumes and ports at launch', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const port = await freePort();
  await fs.mkdir(join(w.manifests, 'data'));
  await fs.writeFile(join(w.manifests, 'data', 'hello.txt'), 'served from a bind mount\n');
  const text = (withWeb: boolean) => `volumes:
  site:
    type: bind
    source: \${SETTINGS_FILE_DIR}/data
  cache-${w.provisioner}: {type: named}
realms:
  ${w.realm}:
    networks: [{name: front}, {name: back}]
    service-definitions:
      - name: web
        type: container
        image: ${IMAGE}
        command: [httpd, -f, -p, "8080", -h, /www]
        networks: [front, back]
        volumes: [{name: site, target: /www, read_only: true}, "cache-${w.provisioner}:/cache"]
        bridge-connector: {port: 8080, name: http}
      - name: idle
        type: container
        image: ${IMAGE}
    persistent-services:
${withWeb ? '      - {name: web, service: web}\n' : ''}      - {name: idle, service: idle}
portals:
  - {name: web, bridge: {realm: ${w.realm}, connector: http}, port: ${port}}
`;
  await fs.writeFile(join(w.manifests, 'realm.yaml'), text(true));
  const ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  const s = await phaseIs(w, 'web', 'Running');
  const info = await w.docker.getContainer(s.containerId!).inspect();
  t.same(Object.keys(info.NetworkSettings.Networks).sort(), [`oznet--${w.realm}--back`, `oznet--${w.realm}--front`], 'attached to both realm networks');
  t.same(info.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '', HostPort: String(port) }] });
  const mounts = info.Mounts.map((m: { Destination: string; RW: boolean; Type: string }) => `${m.Type}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
  t.same(mounts, ['bind:/www:ro', 'volume:/cache:rw']);
  const net = await w.docker.getNetwork(`oznet--${w.realm}--front`).inspect();
  t.equal(net.Labels?.['ozwald.provisioner'], w.provisioner, 'the network is labelled as ours');
  const body = await waitFor('the portal answers', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/hello.txt`).catch(() => null);
    return r?.ok ? r.text() : undefined;
  });
  t.equal(body, 'served from a bind mount\n', 'a request through the portal reaches the bind-mounted file');

  await fs.writeFile(join(w.manifests, 'realm.yaml'), text(false));
  await waitFor('web removed', async () => !(await container(w, 'web')));
  await waitFor('its networks removed', async () => {
    const nets = await w.docker.listNetworks({ filters: { label: [`ozwald.provisioner=${w.provisioner}`] } });
    return nets.length === 0;
  });
  t.ok(await container(w, 'idle'), 'the other service stays');
  await ctl.stop();
  await w.docker.getVolume(`cache-${w.provisioner}`).remove().catch(() => {});
});

t.test('reloads that must never stop a running service', async (t) => {
  const w = await world();
  t.teardown(() => teardown(w));
  const svc = (name: string, env = 'v1') => `      - name: ${name}\n        type: container\n        image: ${IMAGE}\n        environment: {VERSION: "${env}"}\n`;
  const realm = (services: string, persistent: string[]) => `realms:\n  ${w.realm}:\n    service-definitions:\n${services}    persistent-services:\n${persistent.map((p) => `      - {name: ${p}, service: ${p}}\n`).join('')}`;
  // A ConfigMap-style folder: realm.yaml -> ..data/realm.yaml, ..data -> ..v1
  const m = w.manifests;
  mkdirSync(join(m, '..v1'));
  writeFileSync(join(m, '..v1', 'realm.yaml'), realm(svc('a') + svc('b'), ['a', 'b']));
  symlinkSync('..v1', join(m, '..data'));
  symlinkSync('..data/realm.yaml', join(m, 'realm.yaml'));
  const ctl = startController(w);
  t.teardown(() => ctl.proc.kill('SIGKILL'));
  await phaseIs(w, 'a', 'Running');
  await phaseIs(w, 'b', 'Running');
  const start = await ids(w);

  await t.test('a ConfigMap symlink swap is seen; only the changed service is replaced', async (t) => {
    mkdirSync(join(m, '..v2'));
    writeFileSync(join(m, '..v2', 'realm.yaml'), realm(svc('a', 'v2') + svc('b'), ['a', 'b']));
    symlinkSync('..v2', join(m, '..data_tmp'));
    renameSync(join(m, '..data_tmp'), join(m, '..data'));
    await waitFor('a replaced', async () => (await ids(w))['a'] !== start['a'] && (await statuses(w))['a']?.phase === 'Running');
    t.equal((await ids(w))['b'], start['b'], 'b untouched');
  });

  // From here on, a plain git checkout.
  await fs.rm(join(m, 'realm.yaml'));
  await fs.writeFile(join(m, 'a.yaml'), realm(svc('a', 'v2') + svc('b'), ['a', 'b']));
  await fs.rm(join(m, '..data'));
  const settled = await waitFor('the checkout loaded', async () => {
    const c = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`)) ?? '{}');
    return c.manifests?.ok ? await ids(w) : undefined;
  });
  await new Promise((r) => setTimeout(r, 1000));
  t.same(await ids(w), settled, 'the same realm from another file changes nothing');
  const git = (...args: string[]) => execFileSync('git', ['-C', m, ...args], { stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
  git('init', '-q');
  git('add', '-A');
  git('commit', '-qm', 'one file');

  await t.test('git mv of the realm into another file, and splitting it, changes nothing', async (t) => {
    const before = await ids(w);
    git('mv', 'a.yaml', 'moved.yaml');
    git('commit', '-qm', 'move');
    await new Promise((r) => setTimeout(r, 1500));
    t.same(await ids(w), before, 'after git mv');
    // Split: service b's definition moves to its own file in one commit.
    await fs.writeFile(join(m, 'moved.yaml'), realm(svc('a', 'v2'), ['a', 'b']));
    await fs.writeFile(join(m, 'b.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n${svc('b')}`);
    git('add', '-A');
    git('commit', '-qm', 'split');
    await new Promise((r) => setTimeout(r, 1500));
    t.same(await ids(w), before, 'after the split');
    const c = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!);
    t.equal(c.manifests.ok, true);
  });

  await t.test('truncate, pause, then write: an error in between, nothing stopped', async (t) => {
    const before = await ids(w);
    const file = join(m, 'moved.yaml');
    const content = await fs.readFile(file, 'utf8');
    await fs.truncate(file, 0);
    const err = await waitFor('the empty file reported', async () => {
      const c = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!);
      return !c.manifests.ok ? c.manifests.errors as string[] : undefined;
    });
    t.match(err[0], /moved\.yaml:1:1: the file is empty/);
    await new Promise((r) => setTimeout(r, 1000));
    t.same(await ids(w), before, 'the half-written file stopped nothing');
    await fs.writeFile(file, content);
    await waitFor('loaded again', async () => JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!).manifests.ok);
    t.same(await ids(w), before);
  });

  await t.test('the folder briefly missing stops nothing; changes after it are seen', async (t) => {
    const before = await ids(w);
    await fs.rename(m, `${m}.away`);
    await waitFor('the missing folder reported', async () => {
      const c = JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!);
      return !c.manifests.ok && /no such file or directory/.test(c.manifests.errors.join('\n'));
    });
    await new Promise((r) => setTimeout(r, 2500));
    t.same(await ids(w), before, 'nothing stopped while the folder was gone');
    await fs.rename(`${m}.away`, m);
    await waitFor('loaded again', async () => JSON.parse((await w.redis.get(`ozwald:${w.provisioner}:controller`))!).manifests.ok, 30_000);
    t.same(await ids(w), before);
    await fs.writeFile(join(m, 'b.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n${svc('b', 'v3')}`);
    await waitFor('a change after the folder came back is acted on', async () => (await ids(w))['b'] !== before['b'] && (await statuses(w))['b']?.phase === 'Running', 30_000);
    t.equal((await ids(w))['a'], before['a']);
  });

  await t.test('a slow, non-atomic rewrite that a resync tick lands in stops nothing', async (t) => {
    const before = await ids(w);
    const file = join(m, 'moved.yaml');
    const content = await fs.readFile(file, 'utf8');
    // The first part alone is a valid realm with no persistent services: taken
    // as is, it would remove both. Written in two steps 200 ms apart (under
    // the settle window), over and over so resync ticks (every 2 s) fall inside.
    const cut = content.indexOf('    persistent-services:');
    t.ok(cut > 0);
    for (let i = 0; i < 12; i++) {
      const fh = await fs.open(file, 'w');
      await fh.write(content.slice(0, cut));
      await fh.sync();
      await new Promise((r) => setTimeout(r, 200));
      await fh.write(content.slice(cut));
      await fh.close();
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1000));
    t.same(await ids(w), before, 'nothing was removed or replaced');
  });

  await t.test('the folder deleted and made again between two resyncs: still watched', async (t) => {
    const before = await ids(w);
    const saved = await Promise.all(['moved.yaml', 'b.yaml'].map(async (f) => [f, await fs.readFile(join(m, f), 'utf8')] as const));
    const marker = ctl.output().length;
    await fs.rm(m, { recursive: true });
    await fs.mkdir(m);
    for (const [f, text] of saved) await fs.writeFile(join(m, f), text);
    // A resync (every 2 s) sees another folder under the same path.
    await waitFor('the new folder gets a watcher of its own', async () => /manifests folder is back \(or was replaced\); watching it again/.test(ctl.output().slice(marker)), 10_000);
    t.same(await ids(w), before, 'the same manifests: nothing changed');
    await fs.writeFile(join(m, 'b.yaml'), `realms:\n  ${w.realm}:\n    service-definitions:\n${svc('b', 'v4')}`);
    await waitFor('the edit acted on', async () => (await ids(w))['b'] !== before['b'] && (await statuses(w))['b']?.phase === 'Running', 30_000);
  });
  await ctl.stop();
});
