// The env-file that carries a launch's environment to `docker run --env-file`.
// It lives in a private directory (0700, on tmpfs where there is one), is
// created exclusively with mode 0600 and never outlives the launch.
import { constants, promises as fs, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { OzwError } from '../errors.js';
import { envPairProblem } from './payload.js';

const PREFIX = 'env-';

/** Where env-files go when nothing is configured: tmpfs first, so plaintext never reaches a disk. */
export function defaultRuntimeBase(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OZWALD_RUNTIME_DIR) return env.OZWALD_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'ozwald');
  const uid = process.getuid?.() ?? 0;
  if (existsSync('/dev/shm')) return join('/dev/shm', `ozwald-${uid}`);
  return join(tmpdir(), `ozwald-${uid}`);
}

/**
 * Every folder above the env-file folder must be one that no other user can
 * rename entries in: owned by root or by us, and writable by others only with
 * the sticky bit (as /tmp and /dev/shm are). Otherwise another local user
 * could swap the env-file folder for one of theirs between our check and our
 * open, and read or replace a container's secrets.
 */
async function checkAncestors(dir: string, uid: number | undefined): Promise<void> {
  if (uid === undefined) return;
  let p = dirname(resolve(dir));
  for (;;) {
    const st = await fs.stat(p);
    if (st.uid !== 0 && st.uid !== uid) {
      throw new OzwError('OZW_ENVFILE_FAILED', `${p} (above the env-file folder ${dir}) is owned by uid ${st.uid}, neither root nor this process (uid ${uid}): that user could swap the folder`, [], 'use a runtime base that only root or this user can write, e.g. OZWALD_RUNTIME_DIR=/run/ozwald (systemd: RuntimeDirectory=ozwald)');
    }
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
      throw new OzwError('OZW_ENVFILE_FAILED', `${p} (above the env-file folder ${dir}) is writable by other users and not sticky (mode ${(st.mode & 0o7777).toString(8)}): they could swap the folder`, [], 'use a runtime base that only root or this user can write, e.g. OZWALD_RUNTIME_DIR=/run/ozwald (systemd: RuntimeDirectory=ozwald)');
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

async function ensurePrivateDir(dir: string, ancestorsChecked: boolean): Promise<void> {
  const uid = process.getuid?.();
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (!ancestorsChecked) await checkAncestors(dir, uid);
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new OzwError('OZW_ENVFILE_FAILED', `${dir} is not a directory (a symlink is refused)`);
  if (uid !== undefined && st.uid !== uid) throw new OzwError('OZW_ENVFILE_FAILED', `${dir} is owned by uid ${st.uid}, not by this process (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) {
    // We own it: tighten it rather than fail, then check it stuck.
    await fs.chmod(dir, 0o700);
    const again = await fs.lstat(dir);
    if ((again.mode & 0o077) !== 0) throw new OzwError('OZW_ENVFILE_FAILED', `${dir} is not private (mode ${(again.mode & 0o777).toString(8)})`);
  }
}

/** The text of an env-file: one KEY=VALUE per line, values verbatim. */
export function renderEnvFile(env: ReadonlyArray<readonly [string, string]>): string {
  let out = '';
  for (const [k, v] of env) {
    const p = envPairProblem(k, v);
    if (p) throw new OzwError('OZW_PAYLOAD_INVALID', p);
    out += `${k}=${v}\n`;
  }
  return out;
}

export class EnvFileDir {
  constructor(readonly dir: string) {}
  // Once the folders above are owned by root or us and not writable by
  // others, only root or we can change that: one check is enough.
  private ancestorsChecked = false;

  async prepare(): Promise<void> {
    await ensurePrivateDir(this.dir, this.ancestorsChecked);
    this.ancestorsChecked = true;
  }

  /** Removes env-files a crashed run left behind. Returns how many. */
  async sweep(): Promise<number> {
    await this.prepare();
    let n = 0;
    for (const name of await fs.readdir(this.dir)) {
      if (!name.startsWith(PREFIX)) continue;
      await fs.rm(join(this.dir, name), { force: true });
      n++;
    }
    return n;
  }

  async write(env: ReadonlyArray<readonly [string, string]>): Promise<string> {
    const text = renderEnvFile(env);
    await this.prepare();
    const path = join(this.dir, PREFIX + randomBytes(12).toString('hex'));
    let fh: fs.FileHandle | undefined;
    try {
      // O_EXCL | O_NOFOLLOW: never reuse or follow something already there.
      fh = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await fh.writeFile(text, 'utf8');
    } catch (e) {
      await fh?.close().catch(() => {});
      await fs.rm(path, { force: true }).catch(() => {});
      throw new OzwError('OZW_ENVFILE_FAILED', `could not write an env-file in ${this.dir}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    await fh.close();
    return path;
  }

  /** Writes the file, runs fn with its path, and removes it whatever fn does. */
  async with<T>(env: ReadonlyArray<readonly [string, string]>, fn: (path: string) => Promise<T>): Promise<T> {
    const path = await this.write(env);
    try {
      return await fn(path);
    } finally {
      await fs.rm(path, { force: true });
    }
  }
}
