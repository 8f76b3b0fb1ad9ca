import t from 'tap';
import { runArgs } from '../../src/runtime/docker.js';
import { maskLine } from '../../src/runtime/docker.js';
import { containerName } from '../../src/runtime/labels.js';

const spec = {
  realm: 'demo', instance: 'llm-small', service: 'llm', variety: 'cpu', profile: null, specHash: 'abc123', secrets: 'keys=0a1b2c',
  image: 'ozwald-demo:latest', command: ['serve', '--port', '8000'], entrypoint: ['/bin/ozwald-demo', '--flag'], volumes: ['/data:/data:ro'],
  networks: ['oznet--demo--front', 'oznet--demo--back'], ports: ['7656:8000'],
};

t.test('docker run arguments: labels, env-file, no environment values, image after --', async (t) => {
  t.same(runArgs('local', spec, '/dev/shm/ozwald-0/local/env-0123'), [
    'run', '--detach', '--name', 'ozsvc--demo--llm-small', '--restart', 'no',
    '--label', 'ozwald.managed=true', '--label', 'ozwald.provisioner=local', '--label', 'ozwald.realm=demo',
    '--label', 'ozwald.instance=llm-small', '--label', 'ozwald.service=llm', '--label', 'ozwald.variety=cpu',
    '--label', 'ozwald.profile=', '--label', 'ozwald.spec-hash=abc123', '--label', 'ozwald.secrets=keys=0a1b2c',
    '--env-file', '/dev/shm/ozwald-0/local/env-0123',
    '--volume', '/data:/data:ro',
    '--network', 'oznet--demo--front', '--publish', '7656:8000',
    '--entrypoint', '/bin/ozwald-demo',
    '--', 'ozwald-demo:latest', '--flag', 'serve', '--port', '8000',
  ]);
  const bare = runArgs('p', { ...spec, command: null, entrypoint: null, volumes: [], secrets: '', networks: [], ports: [] }, '/f');
  t.notOk(bare.some((a) => a.startsWith('ozwald.secrets')), 'no secrets label without lockers');
  t.same(bare.slice(bare.indexOf('--env-file')), ['--env-file', '/f', '--', 'ozwald-demo:latest']);
  t.notOk(bare.some((a) => a === '-e' || a === '--env'), 'environment only ever travels in the env-file');
  t.equal(containerName('r', 'i'), 'ozsvc--r--i');
});

t.test('the docker CLI gets a minimal environment', async (t) => {
  const { cliEnv } = await import('../../src/runtime/docker.js');
  t.same(cliEnv({ PATH: '/bin', DOCKER_HOST: 'unix:///x.sock', OZWALD_TOKEN: 'tok', API_KEY: 'v', HOME: '/root', OZWALD_REDIS_URL: 'redis://:pw@h' }),
    { PATH: '/bin', HOME: '/root', DOCKER_HOST: 'unix:///x.sock' });
  t.same(cliEnv({}), { PATH: '/usr/local/bin:/usr/bin:/bin' });
});

t.test('crash output is masked in the shapes credentials take, and loses terminal controls', async (t) => {
  const table: [string, string][] = [
    ['password=hunter2', 'password=[masked]'],
    ['PASSWORD=x', 'PASSWORD=[masked]'],
    ['token: abc', 'token=[masked]'],
    ['MY_API_KEY=sk-1', 'MY_API_KEY=[masked]'],
    ['{"password":"x"}', '{"password"=[masked]}'],
    ['https://user:pa55@db/x', 'https://user:[masked]@db/x'],
    ['Authorization: Bearer abc', 'Authorization=[masked] [masked]'],
    ['--password x', '--password [masked]'],
    ['esc \u001b]0;PWNED\u0007 done', 'esc ?]0;PWNED? done'],
    ['listening on :8080', 'listening on :8080'],
    [`id ${'a'.repeat(30)}`, 'id [masked]'],
  ];
  for (const [line, want] of table) t.equal(maskLine(line), want, JSON.stringify(line));
});
