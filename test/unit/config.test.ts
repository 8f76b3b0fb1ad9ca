import t from 'tap';
import { buildModel, type Model } from '../../src/config/model.js';
import { formatProblem } from '../../src/config/yaml.js';
import { resolveInstance, manifestRequests, type InstanceRequest } from '../../src/config/resolve.js';
import { parseSpec, formatSpec } from '../../src/config/spec.js';
import { IMAGE_REF } from '../../src/config/schema.js';

const problemsOf = (files: Record<string, string>) => buildModel(Object.entries(files).map(([file, text]) => ({ file, text }))).problems.map(formatProblem);
const modelOf = (text: string): Model => {
  const r = buildModel([{ file: 'm.yml', text }]);
  if (!r.model) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.model;
};
const req = (service: string, variety: string | null = null, profile: string | null = null, name = service): InstanceRequest =>
  ({ realm: 'r', name, service, variety, profile, source: 'manifest' });

const LLM = `
realms:
  r:
    vault:
      lockers: {base-keys: {}, gpu-keys: {}, prof-keys: {}}
    service-definitions:
      - name: llm
        type: container
        image: llm:base
        command: serve --port 8000
        environment: {MODEL: base, GPU: false, THREADS: 4, ORDER: base}
        lockers: [base-keys]
        volumes: ["/data/models:/models:ro", "/tmp/cache:/cache"]
        varieties:
          nvidia:
            image: llm:cuda
            environment: {GPU: true, ORDER: variety}
            lockers: [gpu-keys, base-keys]
            volumes: ["/fast/models:/models:ro"]
          cpu: {}
        profiles:
          small:
            environment: {MAX_LEN: 4096, ORDER: profile}
            command: [serve, --small]
            lockers: [prof-keys, gpu-keys]
          plain:
            image: llm:plain
`;

t.test('resolution: environment base < variety < profile; image and command profile > variety > base', async (t) => {
  const m = modelOf(LLM);
  const base = resolveInstance(m, req('llm'));
  t.same(base.spec, {
    image: 'llm:base', command: ['serve', '--port', '8000'], entrypoint: null,
    environment: [['MODEL', 'base'], ['GPU', 'false'], ['THREADS', '4'], ['ORDER', 'base']],
    lockers: ['base-keys'], volumes: ['/data/models:/models:ro', '/tmp/cache:/cache'], networks: [], ports: [],
  });
  const v = resolveInstance(m, req('llm', 'nvidia'));
  t.same(v.spec.image, 'llm:cuda');
  t.same(v.spec.environment, [['MODEL', 'base'], ['THREADS', '4'], ['GPU', 'true'], ['ORDER', 'variety']]);
  t.same(v.spec.lockers, ['base-keys', 'gpu-keys'], 'ordered union, duplicates dropped');
  t.same(v.spec.volumes, ['/fast/models:/models:ro', '/tmp/cache:/cache'], 'volumes merge by container path');
  const vp = resolveInstance(m, req('llm', 'nvidia', 'small'));
  t.same(vp.spec.image, 'llm:cuda', 'profile without image keeps the variety image');
  t.same(vp.spec.command, ['serve', '--small']);
  t.same(vp.spec.environment, [['MODEL', 'base'], ['THREADS', '4'], ['GPU', 'true'], ['MAX_LEN', '4096'], ['ORDER', 'profile']]);
  t.same(vp.spec.lockers, ['base-keys', 'gpu-keys', 'prof-keys']);
  t.same(resolveInstance(m, req('llm', 'nvidia', 'plain')).spec.image, 'llm:plain', 'profile image beats variety image');
  t.same(resolveInstance(m, req('llm', 'cpu')).spec.image, 'llm:base', 'empty variety keeps the base');
});

t.test('the spec hash follows the resolved spec', async (t) => {
  const m = modelOf(LLM);
  const a = resolveInstance(m, req('llm', 'nvidia', 'small'));
  t.equal(resolveInstance(m, req('llm', 'nvidia', 'small')).hash, a.hash, 'stable');
  t.match(a.hash, /^[0-9a-f]{24}$/);
  const changedEnv = modelOf(LLM.replace('MAX_LEN: 4096', 'MAX_LEN: 4097'));
  t.not(resolveInstance(changedEnv, req('llm', 'nvidia', 'small')).hash, a.hash, 'environment change');
  const changedImage = modelOf(LLM.replace('image: llm:cuda', 'image: llm:cuda2'));
  t.not(resolveInstance(changedImage, req('llm', 'nvidia', 'small')).hash, a.hash, 'image change');
  const changedLockers = modelOf(LLM.replace('lockers: [prof-keys, gpu-keys]', 'lockers: [gpu-keys]'));
  t.not(resolveInstance(changedLockers, req('llm', 'nvidia', 'small')).hash, a.hash, 'locker names are in the hash');
  const reordered = modelOf(LLM.replace('environment: {MAX_LEN: 4096, ORDER: profile}', 'environment: {ORDER: profile, MAX_LEN: 4096}'));
  t.equal(resolveInstance(reordered, req('llm', 'nvidia', 'small')).hash, a.hash, 'key order in the file does not matter');
  t.equal(resolveInstance(modelOf(`# a comment\n${LLM}`), req('llm', 'nvidia', 'small')).hash, a.hash, 'comments do not matter');
});

t.test('unknown names are errors that list what exists', async (t) => {
  const m = modelOf(LLM);
  t.throws(() => resolveInstance(m, { ...req('llm'), realm: 'nope' }), { code: 'OZW_UNKNOWN_REFERENCE', message: 'realm "nope" does not exist (realms: r)' });
  t.throws(() => resolveInstance(m, req('lm')), { message: 'service "lm" is not defined in realm "r" (services: llm)' });
  t.throws(() => resolveInstance(m, req('llm', 'amd')), { message: 'service "llm" has no variety "amd" (varieties: cpu or nvidia)' });
  t.throws(() => resolveInstance(m, req('llm', null, 'huge')), { message: 'service "llm" has no profile "huge" (profiles: plain or small)' });
});

t.test('environment values are the text written in the file', async (t) => {
  const m = modelOf(`%YAML 1.1
---
realms:
  r:
    service-definitions:
      - name: s
        type: container
        image: i
        environment:
          FLOAT: 0.9
          VERSION: 1.10
          OCTAL: 0640
          HEX: 0x1F
          NO_UPPER: NO
          YES: yes
          ON: on
          TRUE: true
          FALSE: False
          EXP: 1e3
          NEG: -0
          QUOTED: "0640"
          EMPTY: ""
          TILDE_STR: "~"
          SPACES: '  a  '
          BLOCK: |-
            text
`);
  t.same(Object.fromEntries(resolveInstance(m, req('s')).spec.environment), {
    FLOAT: '0.9', VERSION: '1.10', OCTAL: '0640', HEX: '0x1F', NO_UPPER: 'NO', YES: 'yes', ON: 'on', TRUE: 'true', FALSE: 'False',
    EXP: '1e3', NEG: '-0', QUOTED: '0640', EMPTY: '', TILDE_STR: '~', SPACES: '  a  ', BLOCK: 'text',
  });
});

const SVC = (extra: string) => `realms:\n  r:\n    service-definitions:\n      - name: a\n        type: container\n        image: i\n${extra}`;

t.test('schema errors carry file:line:col and the field path', async (t) => {
  t.same(problemsOf({ 'dup.yml': SVC('        image: j\n') }), ['dup.yml:7:9: YAML: Map keys must be unique']);
  t.same(problemsOf({ 'env.yml': SVC('        environment:\n          A:\n          B: [1]\n          C: {x: 1}\n          "bad name": x\n          D: ~\n') }), [
    'env.yml:8:13: environment values must be a string, number or boolean, not null (realms.r.service-definitions.0.environment.A)',
    'env.yml:9:14: environment values must be a string, number or boolean, not a list (realms.r.service-definitions.0.environment.B)',
    'env.yml:10:14: environment values must be a string, number or boolean, not a map (realms.r.service-definitions.0.environment.C)',
    'env.yml:11:11: invalid name "bad name": environment names must match [A-Za-z_][A-Za-z0-9_.-]* (realms.r.service-definitions.0.environment.bad name)',
    'env.yml:12:14: environment values must be a string, number or boolean, not null (realms.r.service-definitions.0.environment.D)',
  ]);
  t.same(problemsOf({ 'typo.yml': 'realms:\n  r:\n    service-definitons: []\n    vault:\n      lockers: {k: {}}\n      lokers: 1\n' }), [
    'typo.yml:3:5: unknown key "service-definitons"; did you mean "service-definitions"? (realms.r.service-definitons)',
    'typo.yml:6:7: unknown key "lokers"; did you mean "lockers"? (realms.r.vault.lokers)',
  ]);
  t.same(problemsOf({ 'typo.yml': SVC('        enviroment: {}\n        zzz: 1\n') }), [
    'typo.yml:7:9: unknown key "enviroment"; did you mean "environment"? (realms.r.service-definitions.0.enviroment)',
    'typo.yml:8:9: unknown key "zzz" (realms.r.service-definitions.0.zzz)',
  ]);
  t.same(problemsOf({ 't.yml': 'realms:\n  r:\n    service-definitions:\n      - name: a\n        type: container\n        image: 5\n        command: {x: 1}\n        bridge-connector: {port: "80", name: x}\n' }), [
    't.yml:6:16: expected string, got number (realms.r.service-definitions.0.image)',
    't.yml:7:18: must be a string or a list of strings (realms.r.service-definitions.0.command)',
    't.yml:8:34: expected number, got string (realms.r.service-definitions.0.bridge-connector.port)',
  ]);
  t.same(problemsOf({ 'q.yml': SVC(`        command: "sh -c 'oops"\n`) }), ['q.yml:7:18: command: unterminated single quote (realms.r.service-definitions.0.command)']);
});

t.test('YAML features that would surprise are refused', async (t) => {
  t.same(problemsOf({ 'm.yml': 'base: &b {x: 1}\nrealms:\n  r:\n    <<: *b\n' }), [
    'm.yml:4:5: merge keys (<<) are not supported: repeat the fields, or use a variety/profile (realms.r)',
  ]);
  t.same(problemsOf({ 'b.yml': 'realms:\n  r:\n    description: !!binary aGVsbG8=\n' }), [
    'b.yml:3:27: unsupported value (tag tag:yaml.org,2002:binary); use a plain string, number or boolean (realms.r.description)',
  ]);
  t.same(problemsOf({ 'u.yml': 'realms:\n  r:\n    description: !custom x\n' }), ['u.yml:3:18: YAML: Unresolved tag: !custom']);
  t.same(problemsOf({ 'a.yml': 'realms:\n  r:\n    description: *nope\n' }), ['a.yml:3:18: the alias *nope names no anchor (&nope) before it (realms.r.description)']);
  t.same(problemsOf({ 'v.yml': '%YAML 1.3\n---\nrealms: {}\n' }), ['v.yml:1:7: YAML: Unsupported YAML version 1.3']);
  t.same(problemsOf({ 'two.yml': 'realms: {}\n---\nrealms: {}\n' }), ['two.yml:2:1: a manifest file holds one YAML document; found more than one']);
  t.same(problemsOf({ 'e.yml': '' }), ['e.yml:1:1: the file is empty']);
  t.same(problemsOf({ 'c.yml': '# only a comment\n' }), ['c.yml:1:1: the file is empty']);
  t.same(problemsOf({ 'half.yml': 'realms:\n  r:\n    service-definitions:\n      - name: a\n        type: "contai' }), ['half.yml:5:22: YAML: Missing closing "quote']);
  t.same(problemsOf({ 'l.yml': '- 1\n- 2\n' }), ['l.yml:1:1: a manifest must be a map with keys such as realms, hosts, provisioners']);
});

t.test('names are restricted to a safe set', async (t) => {
  t.same(problemsOf({ 'n.yml': 'realms:\n  "bad:realm": {}\n  ok:\n    service-definitions:\n      - name: "a b"\n        type: container\n      - name: "x/../y"\n        type: container\n      - name: "*"\n        type: container\n' }), [
    `n.yml:2:3: invalid name "bad:realm": a realm name must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63 characters) (realms.bad:realm)`,
    `n.yml:5:15: a service name must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63 characters) (realms.ok.service-definitions.0.name)`,
    `n.yml:7:15: a service name must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63 characters) (realms.ok.service-definitions.1.name)`,
    `n.yml:9:15: a service name must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63 characters) (realms.ok.service-definitions.2.name)`,
  ]);
});

t.test('references between parts are checked', async (t) => {
  t.same(problemsOf({ 'refs.yml': 'realms:\n  r:\n    vault: {lockers: [k1]}\n    service-definitions:\n      - name: a\n        type: container\n        lockers: [k2]\n      - name: b\n        type: container\n        image: x\n        varieties: {v: {}}\n    persistent-services:\n      - {name: a, service: a}\n      - {name: b1, service: b, variety: w, profile: p}\n      - {name: c, service: nosuch}\n' }), [
    `refs.yml:7:19: locker "k2" is not in realm "r"'s vault (lockers: k1); did you mean "k1"? (realms.r.service-definitions.0.lockers.0)`,
    'refs.yml:13:28: service "a" has no image for this instance (set image on the service, its variety or its profile) (realms.r.persistent-services.0.service)',
    'refs.yml:14:41: service "b" has no variety "w" (varieties: v) (realms.r.persistent-services.1.variety)',
    'refs.yml:14:53: service "b" has no profile "p" (profiles: (none)) (realms.r.persistent-services.1.profile)',
    'refs.yml:15:28: service "nosuch" is not defined in realm "r" (services: a or b) (realms.r.persistent-services.2.service)',
  ]);
});

t.test('fragments merge by realm; a second definition names both files', async (t) => {
  const a = 'realms:\n  r:\n    vault: {lockers: {k: {}}}\n    service-definitions:\n      - {name: web, type: container, image: w}\n';
  const b = 'realms:\n  r:\n    service-definitions:\n      - {name: api, type: container, image: a, lockers: [k]}\n    persistent-services:\n      - {name: web, service: web}\n      - {name: api, service: api}\n';
  const r = buildModel([{ file: 'a.yml', text: a }, { file: 'b.yml', text: b }]);
  t.same(r.problems, []);
  t.same(manifestRequests(r.model!).map((x) => `${x.realm}/${x.name}`), ['r/web', 'r/api']);
  t.same(resolveInstance(r.model!, req('api')).spec.lockers, ['k'], 'a locker declared in another fragment counts');
  t.same(problemsOf({ 'a.yml': a, 'b.yml': a.replace('vault: {lockers: {k: {}}}', 'vault: {lockers: [k]}') }), [
    'b.yml:3:23: locker "k" of realm "r" is also defined at a.yml:3:23 (realms.r.vault.lockers.0)',
    'b.yml:5:16: service "web" of realm "r" is also defined at a.yml:5:16 (realms.r.service-definitions.0.name)',
  ]);
  t.same(problemsOf({ 'a.yml': b, 'c.yml': 'realms:\n  r:\n    persistent-services:\n      - {name: web, service: web}\n' }).slice(0, 1), [
    'c.yml:4:16: persistent service "web" of realm "r" is also defined at a.yml:6:16 (realms.r.persistent-services.0.name)',
  ]);
});

t.test('Python Ozwald settings load: list profiles, map lockers, other service types, all top-level keys', async (t) => {
  const py = `
hosts:
  - name: localhost
    ip: 127.0.0.1
provisioners:
  - name: localhost
    host: localhost
    cache: {type: redis, parameters: {host: localhost, port: 6479, db: 0}}
volumes:
  data:
    type: bind
    source: \${SETTINGS_FILE_DIR}/data
realms:
  default:
    networks:
      - {name: default, type: bridge}
    vault:
      lockers:
        api-keys: {}
    service-definitions:
      - name: llm
        type: container
        environment: {MODEL_NAME: "m/base"}
        properties: {tier: base}
        lockers: [api-keys]
        networks: [default]
        volumes:
          - {name: data, target: /data, read_only: true}
          - "\${SETTINGS_FILE_DIR}/cache:/cache"
        bridge-connector: {port: 8000, name: llm-api, network: default}
        footprint: {run-time: 30, run-script: run.sh}
        depends_on: [db]
        varieties:
          cpu-only: {image: llm.cpu, environment: {GPU: false}}
        profiles:
          - name: small
            environment: {MAX_MODEL_LEN: 4096}
      - name: db
        type: container
        image: postgres:16
      - name: fiction-sources
        type: source-files
        environment: {DIRECTORY: sources/}
    persistent-services:
      - {name: llm-main, service: llm, variety: cpu-only, profile: small}
portals:
  - name: llm-portal
    bridge: {realm: default, connector: llm-api}
    port: 7656
`;
  const r = buildModel([{ file: '/etc/ozwald/settings.yml', text: py }]);
  t.same(r.problems.map(formatProblem), []);
  const inst = resolveInstance(r.model!, { realm: 'default', name: 'llm-main', service: 'llm', variety: 'cpu-only', profile: 'small', source: 'manifest' });
  t.same(inst.spec.image, 'llm.cpu');
  t.same(inst.spec.environment, [['MODEL_NAME', 'm/base'], ['GPU', 'false'], ['MAX_MODEL_LEN', '4096']]);
  t.same(inst.spec.volumes, ['/etc/ozwald/data:/data:ro', '/etc/ozwald/cache:/cache'], 'bind volume through the top-level volumes, ${SETTINGS_FILE_DIR} substituted');
  t.same(inst.spec.networks, ['oznet--default--default']);
  t.same(inst.spec.ports, ['7656:8000'], 'the portal publishes the bridge-connector port');
});

t.test('instance specs: [realm:]NAME[service][variety][profile]', async (t) => {
  t.same(parseSpec('web'), { realm: 'default', name: 'web', service: 'web', variety: null, profile: null });
  t.same(parseSpec('demo:web'), { realm: 'demo', name: 'web', service: 'web', variety: null, profile: null });
  t.same(parseSpec('demo:big[llm][nvidia][large]'), { realm: 'demo', name: 'big', service: 'llm', variety: 'nvidia', profile: 'large' });
  t.same(parseSpec('big[llm][][large]'), { realm: 'default', name: 'big', service: 'llm', variety: null, profile: 'large' });
  t.same(parseSpec('llm[][cpu]'), { realm: 'default', name: 'llm', service: 'llm', variety: 'cpu', profile: null });
  t.equal(formatSpec(parseSpec('demo:big[llm][][large]')), 'demo:big[llm][][large]');
  for (const bad of ['', 'a:b:c', 'x[a][b][c][d]', 'x[', 'x]', 'demo:', ':x', 'a b', 'x[a/b]', 'x[*]']) {
    t.throws(() => parseSpec(bad), { code: 'OZW_SPEC_INVALID' }, JSON.stringify(bad));
  }
});

t.test('did you mean', async (t) => {
  const { didYouMean, listOf } = await import('../../src/config/suggest.js');
  const keys = ['image', 'environment', 'lockers', 'profiles', 'varieties'];
  t.equal(didYouMean('imgae', keys), 'image', 'a swap is one edit');
  t.equal(didYouMean('enviroment', keys), 'environment');
  t.equal(didYouMean('Lockers', keys), 'lockers', 'case-insensitive');
  t.equal(didYouMean('profile', keys), 'profiles');
  t.equal(didYouMean('zzz', keys), undefined, 'nothing close');
  t.equal(didYouMean('img', keys), undefined, 'too far for a short word');
  t.equal(listOf([]), '(none)');
  t.equal(listOf(['b', 'a', 'c']), 'a, b or c');
});

t.test('image references cannot be read as options, and follow the reference grammar', async (t) => {
  const msg = 'image must be a Docker image reference such as name:tag or registry/name@sha256:… (lower-case repository path)';
  t.same(problemsOf({ 'i.yml': 'realms:\n  r:\n    service-definitions:\n      - {name: a, type: container, image: "--privileged"}\n      - {name: b, type: container, image: "a b"}\n      - {name: c, type: container, image: "registry.local:5000/team/model@sha256:' + '0'.repeat(64) + '"}\n' }), [
    `i.yml:4:43: ${msg} (realms.r.service-definitions.0.image)`,
    `i.yml:5:43: ${msg} (realms.r.service-definitions.1.image)`,
  ]);
  const ok = ['ozwald-demo:latest', 'llm.cpu', 'postgres:16', 'ghcr.io/org/llm:cuda-12.4', 'localhost:5000/a/b', 'Registry.Example.com/x', `x@sha256:${'a'.repeat(64)}`, 'a__b', 'a---b:T_1'];
  const bad = ['UPPER/Case:tag', 'Llm', 'img@sha256:zz', 'a:', 'a/', ':tag', 'a//b', 'a:b:c', `a:${'t'.repeat(129)}`, '-x', 'a_-b'];
  for (const i of ok) t.ok(IMAGE_REF.test(i), `${i} is a reference`);
  for (const i of bad) t.notOk(IMAGE_REF.test(i), `${i} is not`);
});

const REALM = (svc: string, extra = '') => `volumes:
  models: {type: bind, source: /srv/models}
  cache: {type: named}
  share: {type: nfs, server: nas}
realms:
  r:
    networks: [{name: front}, {name: back, type: bridge}]
    volumes: [{name: scratch, type: tmp-writeable, source: x}]
    service-definitions:
      - name: a
        type: container
        image: i
${svc}
    persistent-services:
      - {name: a, service: a}
${extra}`;

t.test('volumes resolve through realm and top-level volumes, merged by container path', async (t) => {
  const m = modelOf(REALM(`        volumes:
          - {name: models, target: /models, read_only: true}
          - "cache:/cache"
          - "scratch:/tmp/s:ro"
          - /host/logs:/logs
        profiles:
          p: {volumes: ["/other:/models:rw"]}`));
  t.same(resolveInstance(m, req('a')).spec.volumes, ['/srv/models:/models:ro', 'cache:/cache:rw', 'scratch:/tmp/s:ro', '/host/logs:/logs']);
  t.same(resolveInstance(m, req('a', null, 'p')).spec.volumes, ['/other:/models:rw', 'cache:/cache:rw', 'scratch:/tmp/s:ro', '/host/logs:/logs']);
  t.same(problemsOf({ 'v.yml': REALM(`        volumes: ["nope:/x", "models:relative", "/a:/b:rx", {name: share, target: /s}, "justone"]`) }), [
    'v.yml:13:19: volume "nope" is not defined (realm "r" volumes: scratch; top-level volumes: cache, models or share); a host path must start with / (realms.r.service-definitions.0.volumes.0)',
    'v.yml:13:30: volume "models": the container path "relative" must be absolute (realms.r.service-definitions.0.volumes.1)',
    'v.yml:13:49: volume "/a:/b:rx": mode must be ro or rw (realms.r.service-definitions.0.volumes.2)',
    'v.yml:13:61: volume "share" is of type nfs, which this provisioner does not mount yet (bind and named are supported) (realms.r.service-definitions.0.volumes.3)',
    'v.yml:13:88: volume "justone" must be source:/target or source:/target:ro|rw (realms.r.service-definitions.0.volumes.4)',
  ]);
  t.same(problemsOf({ 'b.yml': 'volumes:\n  x: {type: bind, source: relative/path}\n  y: {type: weird}\n' }), [
    'b.yml:2:27: a bind volume needs an absolute source path (${SETTINGS_FILE_DIR} is the folder of this file) (volumes.x.source)',
    'b.yml:3:13: volume type must be bind, named, tmpfs or nfs (got "weird") (volumes.y.type)',
  ]);
});

t.test('networks must be declared; portals publish connector ports', async (t) => {
  const m = modelOf(REALM(`        networks: [front, back]
        bridge-connector: {port: 8000, name: api}`, `portals:
  - {name: web, bridge: {realm: r, connector: api}, port: 7000}
  - {name: alt, bridge: {realm: r, connector: api}, port: 7001}
`));
  const a = resolveInstance(m, req('a'));
  t.same(a.spec.networks, ['oznet--r--front', 'oznet--r--back']);
  t.same(a.spec.ports, ['7000:8000', '7001:8000']);
  t.same(problemsOf({ 'n.yml': REALM(`        networks: [front, mid]`) }), [
    'n.yml:13:27: network "mid" is not declared in realm "r" (networks: back or front) (realms.r.service-definitions.0.networks.1)',
  ]);
  t.same(problemsOf({ 'p.yml': REALM(`        bridge-connector: {port: 8000, name: api}`, `portals:
  - {name: one, bridge: {realm: r, connector: api}, port: 7000}
  - {name: two, bridge: {realm: r, connector: apx}, port: 7000}
  - {name: three, bridge: {connector: api}, port: 7002}
`) }), [
    'p.yml:18:5: port 7000 is also used by portal "one" at p.yml:17:5 (portals.two.port)',
    'p.yml:18:5: no service in realm "r" has a bridge-connector named "apx" (connectors: api) (portals.two.bridge.connector)',
    'p.yml:19:5: realm "default" does not exist (realms: r) (portals.three.bridge.realm)',
  ]);
});

t.test('two instances cannot publish the same host port', async (t) => {
  const { desiredSet } = await import('../../src/controller/desired.js');
  const m = modelOf(REALM(`        bridge-connector: {port: 8000, name: api}`, `      - {name: a2, service: a}
portals:
  - {name: web, bridge: {realm: r, connector: api}, port: 7000}
`).replace('    persistent-services:\n      - {name: a, service: a}\n', '    persistent-services:\n      - {name: a, service: a}\n'));
  const { desired, invalid } = desiredSet(m, []);
  t.same(desired.map((d) => d.key), ['r/a']);
  t.same(invalid.map((i) => `${i.key}: ${i.message}`), ['r/a2: host port 7000 is already published by r/a']);
});

t.test('hostile YAML: alias bombs, values an env-file cannot carry, empty lists', async (t) => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  const started = Date.now();
  const bomb = problemsOf({ 'bomb.yml': `${levels.join('\n')}\nrealms: {}\n` });
  t.ok(Date.now() - started < 5000, 'refused quickly');
  t.match(bomb[0], /^bomb\.yml:\d+:\d+: more than 200000 values after expanding aliases; refusing to go on/);
  t.same(problemsOf({ 'nl.yml': SVC('        environment:\n          NOTE: |\n            line one\n            line two\n          OK: |-\n            single\n') }), [
    'nl.yml:8:17: environment values cannot hold a newline, carriage return or NUL (an env-file cannot carry them; a "|" block keeps its final newline, "|-" does not) (realms.r.service-definitions.0.environment.NOTE)',
  ]);
  t.same(problemsOf({ 'big.yml': SVC(`        environment: {BIG: "${'x'.repeat(70000)}"}\n`) }).map((p) => p.replace(/^big\.yml:\d+:\d+: /, '')), [
    "environment values must stay under 64 KiB (the Docker CLI's env-file line limit) (realms.r.service-definitions.0.environment.BIG)",
  ]);
  const empty = buildModel([{ file: 'e.yml', text: 'realms:\n  r:\n    service-definitions:\n    persistent-services:\n    networks:\n' }]);
  t.same(empty.problems, [], 'a bare list key reads as an empty list');
});

t.test('reading a folder: size, encoding, broken links and loops', async (t) => {
  const { mkdtempSync, writeFileSync, symlinkSync, mkdirSync, rmSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { readSources } = await import('../../src/config/load.js');
  const d = mkdtempSync(join(tmpdir(), 'oz-load-'));
  writeFileSync(join(d, 'ok.yaml'), 'realms: {}\n');
  writeFileSync(join(d, '.hidden.yaml'), 'not: [valid\n');
  mkdirSync(join(d, '.git'));
  writeFileSync(join(d, '.git', 'x.yaml'), 'not: [valid\n');
  writeFileSync(join(d, 'notes.txt'), 'ignored');
  t.same((await readSources(d)).sources.map((s) => s.file), [join(d, 'ok.yaml')], 'dot entries and other files skipped');
  writeFileSync(join(d, 'latin1.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'latin1.yaml')}: not valid UTF-8 text`]);
  writeFileSync(join(d, 'latin1.yaml'), 'realms: {}\n');
  writeFileSync(join(d, 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`);
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'huge.yaml')}: larger than 1024 KiB; split it into several files`]);
  writeFileSync(join(d, 'huge.yaml'), 'realms: {}\n');
  symlinkSync(join(d, 'gone.yaml.target'), join(d, 'dangling.yaml'));
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'dangling.yaml')}: broken symlink (its target does not exist)`]);
  writeFileSync(join(d, 'gone.yaml.target'), 'realms: {}\n');
  mkdirSync(join(d, 'sub'));
  symlinkSync('..', join(d, 'sub', 'loop'));
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'sub', 'loop')}: symlink loop (already read as ${d})`]);
  rmSync(join(d, 'sub', 'loop'));
  symlinkSync('self.yaml', join(d, 'self.yaml'));
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'self.yaml')}: symlink loop (the link leads back to itself)`], 'a file link to itself is a loop, not a broken link');
  rmSync(join(d, 'self.yaml'));
  execFileSync('mkfifo', [join(d, 'pipe.yaml')]);
  t.same((await readSources(d)).problems.map(formatProblem), [`${join(d, 'pipe.yaml')}: not a regular file; a manifest must be one`], 'a FIFO is said, never read (it would block)');
});

t.test('plan names the fields a replacement changes', async (t) => {
  const { specDigest, digestDiff } = await import('../../src/config/resolve.js');
  const m = modelOf(LLM);
  const a = resolveInstance(m, req('llm', 'nvidia', 'small'));
  const b = resolveInstance(modelOf(LLM.replace('MAX_LEN: 4096', 'MAX_LEN: 8192').replace('image: llm:cuda', 'image: llm:cuda2').replace('ORDER: profile', 'ORDER: profile, NEW: x')), req('llm', 'nvidia', 'small'));
  t.same(digestDiff(specDigest(a.spec), specDigest(b.spec)), ['image', 'environment.MAX_LEN', 'environment.NEW']);
  t.same(digestDiff(specDigest(a.spec), specDigest(a.spec)), []);
  t.same(digestDiff(undefined, specDigest(a.spec)), ['(unknown: the container predates spec digests)']);
  t.notMatch(specDigest(a.spec), '4096', 'values are hashed');
});

t.test('depends-on: known services, no cycles; the instance keeps its list', async (t) => {
  const svc = (n: string, deps: string) => `      - {name: ${n}, type: container, image: i, depends-on: [${deps}]}\n`;
  const realm = (body: string) => `realms:\n  r:\n    service-definitions:\n${body}`;
  const m = modelOf(realm(svc('api', 'db') + '      - {name: db, type: container, image: i}\n'));
  t.same(resolveInstance(m, req('api')).dependsOn, ['db']);
  t.same(resolveInstance(m, req('db')).dependsOn, []);
  t.same(problemsOf({ 'c.yml': realm(svc('a', 'b') + svc('b', 'c') + svc('c', 'a')) }), ['c.yml:4:16: depends-on cycle: a → b → c → a (realms.r.service-definitions.a.depends-on)']);
  t.same(problemsOf({ 's.yml': realm(svc('a', 'a')) }), ['s.yml:4:16: depends-on cycle: a → a (realms.r.service-definitions.a.depends-on)']);
  t.same(problemsOf({ 'u.yml': realm('      - {name: a, type: container, image: i, depends_on: [dbb]}\n      - {name: db, type: container, image: i}\n') }), [
    'u.yml:4:59: depends on service "dbb", which realm "r" does not define (services: a or db); did you mean "db"? (realms.r.service-definitions.0.depends_on.0)',
  ]);
});

t.test('env_file loads but has no effect, and says so with its place', async (t) => {
  const text = 'realms:\n  r:\n    service-definitions:\n      - name: web\n        type: container\n        image: i\n        env_file: .env\n        profiles:\n          p: {env_file: [a.env, b.env]}\n';
  const r = buildModel([{ file: 'm.yml', text }]);
  t.same(r.problems, []);
  t.ok(r.model, 'the manifest is valid');
  t.same((r.warnings ?? []).map(formatProblem), [
    'm.yml:7:19: env_file is not used by this provisioner (the Python Ozwald did not use it either): put the values in environment, or in a locker if they are secret (realms.r.service-definitions.0.env_file)',
    'm.yml:9:25: env_file is not used by this provisioner (the Python Ozwald did not use it either): put the values in environment, or in a locker if they are secret (realms.r.service-definitions.0.profiles.p.env_file)',
  ]);
  t.same(buildModel([{ file: 'm.yml', text: text.replace(/.*env_file.*\n/g, '').replace('        profiles:\n', '') }]).warnings, [], 'no env_file, no warning');
});

t.test('a persistent service without a name is named after its service', async (t) => {
  const text = 'realms:\n  r:\n    service-definitions:\n      - {name: web, type: container, image: i}\n    persistent-services:\n      - {service: web}\n      - {service: web}\n';
  const r = buildModel([{ file: 'm.yml', text: text.replace(/      - \{service: web\}\n$/, '') }]);
  t.same(r.problems, []);
  t.same([...r.model!.realms.get('r')!.persistent.values()].map((p) => [p.name, p.service]), [['web', 'web']]);
  t.same(buildModel([{ file: 'm.yml', text }]).problems.map(formatProblem), [
    'm.yml:7:19: persistent service "web" of realm "r" is also defined at m.yml:6:19 (realms.r.persistent-services.1.service)',
  ], 'two unnamed instances of one service collide, and the error says where');
});

t.test('a type one typo away from container is warned about; other types are not', async (t) => {
  const text = (type: string) => `realms:\n  r:\n    service-definitions:\n      - {name: web, type: ${type}, image: i}\n`;
  t.same((buildModel([{ file: 'm.yml', text: text('contaner') }]).warnings ?? []).map(formatProblem),
    ['m.yml:4:27: type "contaner" is not run by this provisioner (did you mean container?) (realms.r.service-definitions.0.type)']);
  t.same(buildModel([{ file: 'm.yml', text: text('source-files') }]).warnings, []);
  t.same(buildModel([{ file: 'm.yml', text: text('container') }]).warnings, []);
});
