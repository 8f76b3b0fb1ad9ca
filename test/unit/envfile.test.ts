import t from 'tap';
import { promises as fs, mkdtempSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { EnvFileDir, renderEnvFile, defaultRuntimeBase } from '../../src/vault/envfile.js';

const base = () => mkdtempSync(join(tmpdir(), 'oz-envfile-'));

t.test('renders one KEY=VALUE line per entry, values verbatim', async (t) => {
  t.equal(
    renderEnvFile([['A', 'plain'], ['B', ''], ['C', ' lead and trail '], ['D', 'x=y#z'], ['E', `"q" 'q' \\ $V`], ['F', 'ü✓']]),
    `A=plain\nB=\nC= lead and trail \nD=x=y#z\nE="q" 'q' \\ $V\nF=ü✓\n`,
  );
  t.equal(renderEnvFile([]), '');
  t.throws(() => renderEnvFile([['A', 'two\nlines']]), { code: 'OZW_PAYLOAD_INVALID', message: /the value of A contains a newline/ });
  t.throws(() => renderEnvFile([['BAD NAME', 'x']]), { code: 'OZW_PAYLOAD_INVALID' });
});

t.test('files are 0600 in a 0700 directory and gone after the launch', async (t) => {
  const dir = join(base(), 'prov');
  const d = new EnvFileDir(dir);
  let seen = '';
  const result = await d.with([['K', 'v']], async (path) => {
    seen = path;
    const st = await fs.stat(path);
    t.equal(st.mode & 0o777, 0o600, 'file mode 0600');
    t.equal((await fs.stat(dir)).mode & 0o777, 0o700, 'directory mode 0700');
    t.equal(await fs.readFile(path, 'utf8'), 'K=v\n');
    return 'launched';
  });
  t.equal(result, 'launched');
  await t.rejects(fs.stat(seen), { code: 'ENOENT' }, 'removed after success');
  await t.rejects(d.with([['K', 'v']], async (path) => {
    seen = path;
    throw new Error('docker run failed');
  }), { message: 'docker run failed' });
  await t.rejects(fs.stat(seen), { code: 'ENOENT' }, 'removed after failure');
  t.same(await fs.readdir(dir), [], 'nothing left behind');
});

t.test('a directory with loose permissions is tightened; a symlink is refused', async (t) => {
  const b = base();
  const loose = join(b, 'loose');
  mkdirSync(loose, { mode: 0o755 });
  await fs.chmod(loose, 0o755);
  await new EnvFileDir(loose).prepare();
  t.equal((await fs.stat(loose)).mode & 0o777, 0o700);
  const target = join(b, 'target');
  mkdirSync(target, { mode: 0o700 });
  symlinkSync(target, join(b, 'link'));
  await t.rejects(new EnvFileDir(join(b, 'link')).prepare(), { code: 'OZW_ENVFILE_FAILED', message: /symlink is refused/ });
});

t.test('the start-up sweep removes env-files a crash left, and nothing else', async (t) => {
  const dir = join(base(), 'p');
  const d = new EnvFileDir(dir);
  await d.prepare();
  writeFileSync(join(dir, 'env-leftover1'), 'K=v\n');
  writeFileSync(join(dir, 'env-leftover2'), 'K=v\n');
  writeFileSync(join(dir, 'unrelated'), 'x');
  t.equal(await d.sweep(), 2);
  t.same(await fs.readdir(dir), ['unrelated']);
});

t.test('two writes never share a file', async (t) => {
  const d = new EnvFileDir(join(base(), 'p'));
  const [a, b] = await Promise.all([d.write([['A', '1']]), d.write([['B', '2']])]);
  t.not(a, b);
  t.equal(await fs.readFile(a, 'utf8'), 'A=1\n');
  t.equal(await fs.readFile(b, 'utf8'), 'B=2\n');
});

t.test('default location prefers tmpfs', async (t) => {
  t.equal(defaultRuntimeBase({ OZWALD_RUNTIME_DIR: '/x/y' }), '/x/y');
  t.equal(defaultRuntimeBase({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/ozwald');
  t.match(defaultRuntimeBase({}), /^\/dev\/shm\/ozwald-\d+$|ozwald-\d+$/);
});

t.test('a folder above the env-file folder that another user could write is refused', async (t) => {
  // Another user owning the base, or a base anyone may write without the
  // sticky bit, could swap <base>/<provisioner> between the check and the open.
  const b1 = base();
  await fs.chmod(b1, 0o777);
  await t.rejects(new EnvFileDir(join(b1, 'prov')).write([['K', 'v']]), { code: 'OZW_ENVFILE_FAILED', message: /is writable by other users and not sticky \(mode 777\)/ });
  await fs.chmod(b1, 0o1777);
  const ok = await new EnvFileDir(join(b1, 'prov')).write([['K', 'v']]);
  t.ok(ok.startsWith(join(b1, 'prov')), 'sticky, like /tmp and /dev/shm: accepted');
  if (process.getuid?.() === 0) {
    const b2 = base();
    await fs.chown(b2, 65534, 65534);
    await t.rejects(new EnvFileDir(join(b2, 'prov')).write([['K', 'v']]), { code: 'OZW_ENVFILE_FAILED', message: /is owned by uid 65534, neither root nor this process/ });
    t.same(await fs.readdir(join(b2, 'prov')).catch(() => []), [], 'nothing was written there');
  }
});
