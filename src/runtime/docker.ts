// The Docker side. Launches go through the docker CLI (`docker run --env-file`)
// with an argument array and no shell; everything else goes through dockerode.
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { OzwError } from '../errors.js';
import { LABEL, containerName } from './labels.js';

export interface ObservedContainer {
  id: string;
  name: string;
  realm: string;
  instance: string;
  /** Label ozwald.service. */
  service?: string;
  provisioner: string;
  specHash: string;
  /** Label ozwald.secrets: which sealed version of each locker it was started with. */
  secrets?: string;
  /** Label ozwald.spec-digest: per-field fingerprint of the spec it runs. */
  digest?: string;
  running: boolean;
  state: string;
  status: string;
}

export interface LaunchSpec {
  realm: string;
  instance: string;
  service: string;
  variety: string | null;
  profile: string | null;
  specHash: string;
  /** specDigest() of the resolved spec. */
  digest?: string;
  secrets: string;
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  volumes: string[];
  networks: string[];
  ports: string[];
}

export function runArgs(provisioner: string, s: LaunchSpec, envFile: string, name = containerName(s.realm, s.instance)): string[] {
  const labels: [string, string][] = [
    [LABEL.managed, 'true'], [LABEL.provisioner, provisioner], [LABEL.realm, s.realm], [LABEL.instance, s.instance],
    [LABEL.service, s.service], [LABEL.variety, s.variety ?? ''], [LABEL.profile, s.profile ?? ''], [LABEL.specHash, s.specHash],
  ];
  if (s.digest) labels.push([LABEL.specDigest, s.digest]);
  if (s.secrets) labels.push([LABEL.secrets, s.secrets]);
  const args = ['run', '--detach', '--name', name, '--restart', 'no'];
  for (const [k, v] of labels) args.push('--label', `${k}=${v}`);
  args.push('--env-file', envFile);
  for (const v of s.volumes) args.push('--volume', v);
  if (s.networks[0]) args.push('--network', s.networks[0]);
  for (const p of s.ports) args.push('--publish', p);
  const ep = s.entrypoint;
  if (ep && ep.length) args.push('--entrypoint', ep[0]!);
  args.push('--', s.image);
  if (ep && ep.length > 1) args.push(...ep.slice(1));
  if (s.command) args.push(...s.command);
  return args;
}

/** DOCKER_HOST as the docker CLI accepts it, or a usage error naming it (dockerode would report a DNS failure). */
export function checkDockerHost(value: string | undefined): void {
  if (value === undefined || value === '') return;
  if (!/^(unix|tcp|ssh|npipe|fd|http|https):\/\/./.test(value)) {
    throw new OzwError('OZW_USAGE', `DOCKER_HOST=${value.slice(0, 120)} is not an engine address`, [], 'use unix:///path/to/docker.sock, tcp://host:2376 or ssh://user@host (or unset it for the default socket)');
  }
}

export class Runtime {
  readonly docker: Docker;
  constructor(readonly provisioner: string, opts: { docker?: Docker; cli?: string; stopTimeout?: number } = {}) {
    if (!opts.docker) checkDockerHost(process.env.DOCKER_HOST);
    this.docker = opts.docker ?? new Docker();
    this.cli = opts.cli ?? process.env.OZWALD_DOCKER_CLI ?? 'docker';
    this.stopTimeout = opts.stopTimeout ?? 10;
  }
  private readonly cli: string;
  private readonly stopTimeout: number;
  private readonly imagesSeen = new Map<string, number>();

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      throw new OzwError('OZW_DOCKER_UNAVAILABLE', `cannot reach the Docker engine (${process.env.DOCKER_HOST ?? 'default socket'}): ${(e as Error).message}`);
    }
  }

  /** This provisioner's containers, running or not. One API call. */
  async list(): Promise<ObservedContainer[]> {
    const raw = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managed}=true`, `${LABEL.provisioner}=${this.provisioner}`] },
    });
    return raw.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      realm: c.Labels[LABEL.realm] ?? '',
      instance: c.Labels[LABEL.instance] ?? '',
      service: c.Labels[LABEL.service],
      provisioner: c.Labels[LABEL.provisioner] ?? '',
      specHash: c.Labels[LABEL.specHash] ?? '',
      secrets: c.Labels[LABEL.secrets],
      digest: c.Labels[LABEL.specDigest],
      running: c.State === 'running',
      state: c.State,
      status: c.Status,
    }));
  }

  /**
   * `docker run -d` with an env-file. Returns the container id. The engine's
   * error is passed on with every known secret value cut out of it.
   */
  run(spec: LaunchSpec, envFile: string, secretValues: string[] = [], timeoutMs = 120_000): Promise<string> {
    const args = runArgs(this.provisioner, spec, envFile);
    return new Promise((resolve, reject) => {
      execFile(this.cli, args, { timeout: timeoutMs, maxBuffer: 1024 * 1024, env: cliEnv() }, (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout.trim().split('\n').pop() ?? '');
          return;
        }
        let why = (stderr || err.message).trim().split('\n').filter(Boolean).slice(-3).join(' / ');
        for (const v of secretValues) if (v.length >= 3) why = why.split(v).join('[redacted]');
        why = why.split(envFile).join('<env-file>');
        reject(new OzwError('OZW_LAUNCH_FAILED', `docker run for ${spec.realm}:${spec.instance} failed: ${why}`));
      });
    });
  }

  /**
   * Makes sure the image is here before anything running is touched: a typo
   * or an unreachable registry fails the launch while the old container runs.
   */
  async ensureImage(image: string, timeoutMs = 600_000): Promise<void> {
    // Seen a moment ago: skip the API call (docker run still pulls a missing image).
    if ((this.imagesSeen.get(image) ?? 0) > Date.now()) return;
    try {
      await this.docker.getImage(image).inspect();
      this.imagesSeen.set(image, Date.now() + 30_000);
      return;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
    await new Promise<void>((resolve, reject) => {
      execFile(this.cli, ['pull', '--quiet', '--', image], { timeout: timeoutMs, maxBuffer: 1024 * 1024, env: cliEnv() }, (err, _out, stderr) => {
        if (!err) return resolve();
        const why = (stderr || err.message).trim().split('\n').filter(Boolean).slice(-1)[0] ?? 'pull failed';
        reject(new OzwError('OZW_LAUNCH_FAILED', `image ${image} is not here and could not be pulled: ${why}`));
      });
    });
  }

  /** Why a container of ours stopped: exit code and the last lines it printed (masked). */
  async crashInfo(c: ObservedContainer, lines = 5): Promise<{ exitCode: number | null; oom: boolean; tail: string[] }> {
    this.guard(c);
    const ct = this.docker.getContainer(c.id);
    const info = await ct.inspect().catch(() => null);
    let tail: string[] = [];
    if (lines > 0) try {
      const raw = (await ct.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
      tail = demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).split('\n').filter((l) => l.trim()).slice(-lines).map(maskLine);
    } catch {
      /* no logs is no reason to fail */
    }
    return { exitCode: info?.State?.ExitCode ?? null, oom: !!info?.State?.OOMKilled, tail };
  }

  /** Creates the realm networks a launch needs (labelled as ours); existing ones are used as they are. */
  async ensureNetworks(names: string[], realm: string): Promise<void> {
    if (names.length === 0) return;
    const existing = new Set((await this.docker.listNetworks()).map((n) => n.Name));
    for (const name of names) {
      if (existing.has(name)) continue;
      try {
        await this.docker.createNetwork({
          Name: name, Driver: 'bridge', CheckDuplicate: true,
          Labels: { [LABEL.managed]: 'true', [LABEL.provisioner]: this.provisioner, [LABEL.realm]: realm },
        });
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 409) throw e;
      }
    }
  }

  /** Connects a started container to its further networks. */
  async connect(containerId: string, networks: string[]): Promise<void> {
    for (const n of networks) await this.docker.getNetwork(n).connect({ Container: containerId });
  }

  /** Removes this provisioner's networks that no container uses and nothing desires. */
  async pruneNetworks(keep: ReadonlySet<string>): Promise<string[]> {
    const ours = await this.docker.listNetworks({ filters: { label: [`${LABEL.managed}=true`, `${LABEL.provisioner}=${this.provisioner}`] } });
    const removed: string[] = [];
    for (const n of ours) {
      if (keep.has(n.Name)) continue;
      const info = await this.docker.getNetwork(n.Id).inspect().catch(() => null) as { Containers?: Record<string, unknown> } | null;
      if (!info || Object.keys(info.Containers ?? {}).length > 0) continue;
      await this.docker.getNetwork(n.Id).remove().catch(() => {});
      removed.push(n.Name);
    }
    return removed;
  }

  private guard(c: ObservedContainer): void {
    // Belt and braces: the planner only hands us our own containers.
    if (c.provisioner !== this.provisioner) throw new Error(`refusing to touch container ${c.name}: provisioner label is "${c.provisioner}"`);
  }

  async stopAndRemove(c: ObservedContainer): Promise<void> {
    this.guard(c);
    const ct = this.docker.getContainer(c.id);
    try {
      if (c.running) await ct.stop({ t: this.stopTimeout });
    } catch (e) {
      if (!ignorable(e)) throw e;
    }
    try {
      await ct.remove({ force: true, v: false });
    } catch (e) {
      if (!ignorable(e)) throw e;
    }
  }

  async rename(c: ObservedContainer, name: string): Promise<void> {
    this.guard(c);
    await this.docker.getContainer(c.id).rename({ name });
  }

  async stop(c: ObservedContainer): Promise<void> {
    this.guard(c);
    try {
      await this.docker.getContainer(c.id).stop({ t: this.stopTimeout });
    } catch (e) {
      if (!ignorable(e)) throw e;
    }
  }

  async start(c: ObservedContainer): Promise<void> {
    this.guard(c);
    await this.docker.getContainer(c.id).start().catch((e: unknown) => {
      if (!ignorable(e)) throw e;
    });
  }

  /** Our containers' lifecycle events; calls back on each, reconnects when the stream ends. */
  async events(onEvent: (e: { action: string; id: string }) => void, signal: AbortSignal): Promise<void> {
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], label: [`${LABEL.provisioner}=${this.provisioner}`] },
    })) as NodeJS.ReadableStream & { destroy?: () => void };
    signal.addEventListener('abort', () => stream.destroy?.(), { once: true });
    let buf = '';
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            const ev = JSON.parse(line) as { Action?: string; id?: string; Actor?: { ID?: string } };
            onEvent({ action: ev.Action ?? '', id: ev.id ?? ev.Actor?.ID ?? '' });
          } catch {
            /* a malformed line is skipped; the periodic resync covers anything missed */
          }
        }
      });
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', () => resolve());
    });
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) → text. */
function demux(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  return i === 0 ? buf.toString('utf8') : out;
}

/**
 * A log line as status may show it: short, and with anything that looks like
 * a credential masked (KEY=value pairs, long token-like strings). The
 * controller does not know a crashed container's secrets, so it masks by shape.
 */
export function maskLine(line: string): string {
  return line
    // Terminal control sequences would reach whoever reads `ozwald status`.
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?')
    .replace(/\b(bearer|basic)\s+\S+/gi, '$1 [masked]')
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]+@/gi, '$1[masked]@')
    .replace(/(["']?)([A-Za-z_-]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|AUTH|CREDENTIAL)[A-Za-z0-9_-]*)\1\s*[=:]\s*("[^"]*"|'[^']*'|\S+)/gi, '$1$2$1=[masked]')
    .replace(/(--?(?:password|passwd|token|secret|api-key))(?:=|\s+)\S+/gi, '$1 [masked]')
    .replace(/[A-Za-z0-9+/_=-]{24,}/g, '[masked]')
    .slice(0, 200);
}

// The docker CLI gets only what it needs to find and talk to the engine: none
// of the controller's own environment can reach a container through it.
const CLI_ENV = ['PATH', 'HOME', 'DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CONTEXT', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_API_VERSION', 'XDG_RUNTIME_DIR', 'TMPDIR'];
export function cliEnv(from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of CLI_ENV) if (from[k] !== undefined) env[k] = from[k];
  if (!env.PATH) env.PATH = '/usr/local/bin:/usr/bin:/bin';
  return env;
}

function ignorable(e: unknown): boolean {
  const code = (e as { statusCode?: number }).statusCode;
  return code === 304 || code === 404;
}
