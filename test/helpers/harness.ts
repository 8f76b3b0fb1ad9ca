// Shared by the integration tests: the real Redis and dockerd that
// hack/test.sh starts, the built CLI, and polling helpers.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import Docker from 'dockerode';
import { Redis } from 'ioredis';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');
export const IMAGE = 'ozwald-demo:latest';

export function requireEnv(): { redisUrl: string; dockerHost: string } {
  const redisUrl = process.env.OZWALD_TEST_REDIS_URL;
  const dockerHost = process.env.DOCKER_HOST;
  if (!redisUrl || !dockerHost) {
    throw new Error('integration tests need OZWALD_TEST_REDIS_URL and DOCKER_HOST: run them with `make test` (hack/test.sh starts both)');
  }
  return { redisUrl, dockerHost };
}

export const uid = () => randomBytes(4).toString('hex');

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface World {
  provisioner: string;
  realm: string;
  dir: string;
  manifests: string;
  runtimeDir: string;
  env: NodeJS.ProcessEnv;
  redis: Redis;
  docker: Docker;
  /** Everything any process printed in this world, for canary searches. */
  transcript: string[];
}

export async function world(): Promise<World> {
  const { redisUrl } = requireEnv();
  const id = uid();
  const dir = mkdtempSync(join(tmpdir(), `oz-it-${id}-`));
  const manifests = join(dir, 'manifests');
  await fs.mkdir(manifests);
  const runtimeDir = join(dir, 'run');
  const provisioner = `it-${id}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: process.env.DOCKER_HOST,
    OZWALD_REDIS_URL: redisUrl, OZWALD_PROVISIONER: provisioner, OZWALD_MANIFESTS: manifests, OZWALD_RUNTIME_DIR: runtimeDir,
    OZWALD_LOG_LEVEL: 'debug',
  };
  const redis = new Redis(redisUrl, { lazyConnect: true });
  await redis.connect();
  return { provisioner, realm: `r${id}`, dir, manifests, runtimeDir, env, redis, docker: new Docker(), transcript: [] };
}

export async function teardown(w: World): Promise<void> {
  const list = await w.docker.listContainers({ all: true, filters: { label: [`ozwald.provisioner=${w.provisioner}`] } });
  await Promise.all(list.map((c) => w.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  w.redis.disconnect();
}

export interface Result { code: number | null; stdout: string; stderr: string }

export function cli(w: World, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...w.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      w.transcript.push(`$ ozwald ${args.join(' ')}\n${stdout}${stderr}`);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

export interface Running { proc: ChildProcess; output(): string; stop(signal?: NodeJS.Signals): Promise<number | null> }

export function startController(w: World, extraArgs: string[] = []): Running {
  const proc = spawn(process.execPath, [CLI, 'run', '--resync', '2', ...extraArgs], { env: w.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  return {
    proc,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGINT') {
      proc.kill(signal);
      const code = await exited;
      w.transcript.push(`controller output:\n${out}`);
      return code;
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface StatusRow { realm: string; instance: string; phase: string; reason: string; message: string; lockers: string[]; containerId: string | null; specHash: string; since: string }

export async function statuses(w: World): Promise<Record<string, StatusRow>> {
  const all = await w.redis.hgetall(`ozwald:${w.provisioner}:status`);
  const out: Record<string, StatusRow> = {};
  for (const [k, v] of Object.entries(all)) out[k.split('/')[1]!] = JSON.parse(v);
  return out;
}

export async function phaseIs(w: World, instance: string, phase: string, reason?: string): Promise<StatusRow> {
  return waitFor(`${instance} to be ${phase}${reason ? `/${reason}` : ''}`, async () => {
    const s = (await statuses(w))[instance];
    return s && s.phase === phase && (!reason || s.reason === reason) ? s : undefined;
  });
}

export async function container(w: World, instance: string) {
  const list = await w.docker.listContainers({ all: true, filters: { name: [`^/ozsvc--${w.realm}--${instance}$`] } });
  return list[0];
}

/** Every value in Redis except the vault's blobs, as text. */
export async function redisDump(redis: Redis): Promise<string> {
  const keys = await redis.keys('*');
  const parts: string[] = [];
  for (const k of keys) {
    if (k.startsWith('vault:')) continue;
    const type = await redis.type(k);
    parts.push(k);
    if (type === 'string') parts.push(String(await redis.get(k)));
    else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(k)));
    else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(k, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(k)));
    else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(k, 0, -1)));
  }
  return parts.join('\n');
}

export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out;
}

export async function execEnv(w: World, id: string): Promise<string> {
  const exec = await w.docker.getContainer(id).exec({ Cmd: ['env'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  // Demultiplex docker's 8-byte frame headers.
  const buf = Buffer.concat(chunks);
  let text = '';
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    text += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  return text;
}
