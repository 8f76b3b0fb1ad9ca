// `ozwald services update|list`: the dynamic desired set.
import { formatSpec, parseSpec } from '../config/spec.js';
import { updateDynamic } from '../controller/dynamic.js';
import { OzwError, isOzwError } from '../errors.js';
import { SAFE_NAME } from '../config/schema.js';
import { openStore } from './context.js';
import { out, loadOrThrow, TOKEN_OPTIONS, GLOBAL_HELP, type Command } from './shared.js';
import { readToken, type TokenOptions } from './token.js';

export const SERVICES_COMMANDS: Record<string, Command> = {
  'services update': {
    summary: 'set the dynamic desired set (replaces it)',
    help: `ozwald services update SPEC… [--token-for LOCKER[=FILE]]… [--clear] [--expect-generation N]

Replaces this provisioner's dynamic set with the instances given, each as
[realm:]NAME[service][variety][profile] (empty brackets skip a part; realm
defaults to "default"). Names are checked against the manifests first.
--token-for LOCKER delivers a token for that locker as an unlock key (from
FILE, or the usual channels: --token-stdin, --token-file, OZWALD_TOKEN,
prompt); tokens are never stored with the set. --expect-generation makes the
update fail (OZW_CONFLICT) if someone else changed the set since you read it.

example: ozwald services update 'demo:chat[assistant]' 'demo:big[llm][cpu-only][large]' --token-for api-keys
${GLOBAL_HELP}`,
    options: { 'token-for': { type: 'string', multiple: true }, clear: { type: 'boolean' }, 'expect-generation': { type: 'string' }, ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      if (v.clear && pos.length) throw new OzwError('OZW_USAGE', '--clear takes no instance specs');
      if (!v.clear && pos.length === 0) throw new OzwError('OZW_USAGE', 'give at least one instance spec, or --clear to empty the set');
      const entries = pos.map((p) => parseSpec(p));
      const model = await loadOrThrow(g.manifests, ', so the names cannot be checked');
      const tokens = new Map<string, string>();
      const bare = ((v['token-for'] as string[] | undefined) ?? []).filter((x) => !x.includes('='));
      if (bare.length > 1 && (v['token-stdin'] || v['token-file'] || process.env.OZWALD_TOKEN) ) {
        throw new OzwError('OZW_USAGE', 'with several --token-for lockers, give each its file: --token-for LOCKER=FILE');
      }
      for (const tf of (v['token-for'] as string[] | undefined) ?? []) {
        const eq = tf.indexOf('=');
        const locker = eq < 0 ? tf : tf.slice(0, eq);
        const file = eq < 0 ? undefined : tf.slice(eq + 1);
        // Neither part is echoed when wrong: a token pasted here instead of a name or a path would be.
        if (!SAFE_NAME.test(locker)) throw new OzwError('OZW_USAGE', '--token-for LOCKER[=FILE]: the locker is not a valid name (not shown)', [], 'give a locker name from the manifests, e.g. --token-for api-keys or --token-for api-keys=token.txt');
        if (file === '') throw new OzwError('OZW_USAGE', `--token-for ${locker}=: the file name is empty`);
        const token = await readToken(file ? { 'token-file': file } : (v as TokenOptions), { label: `token for ${locker}` }).catch((e: unknown) => {
          if (file && isOzwError(e) && e.message.startsWith('cannot read')) {
            throw new OzwError('OZW_TOKEN_MISSING', `--token-for ${locker}=FILE: cannot read that file (the name is not shown, in case it is a token)`, [], 'give the path of a file that holds the token, or --token-for LOCKER alone to use the prompt or --token-stdin');
          }
          throw e;
        });
        tokens.set(locker, token);
      }
      let expect: number | undefined;
      if (v['expect-generation'] !== undefined) {
        expect = Number(v['expect-generation']);
        if (!Number.isInteger(expect) || expect < 0) throw new OzwError('OZW_USAGE', '--expect-generation takes a whole number (see `ozwald services list`)');
      }
      const { store, close } = await openStore(g);
      try {
        const r = await updateDynamic(store, model, entries, { tokens, now: Date.now(), ...(expect !== undefined ? { expect } : {}) });
        out(`dynamic set of provisioner "${g.provisioner}" is now generation ${r.set.generation} with ${entries.length} instance(s)`);
        for (const e of entries) out(`  ${formatSpec(e)}`);
        for (const u of r.unlocked) out(`unlock:${u} written (expires in 60s)`);
        return 0;
      } finally {
        close();
      }
    },
  },

  'services list': {
    summary: 'show the dynamic desired set and each instance\'s phase',
    help: 'ozwald services list [--json]\n\nShows the dynamic set (generation, instances) and the phase the controller last recorded for each.\n\nexample: ozwald services list --json',
    options: { json: { type: 'boolean' } },
    async run(g, v) {
      const { store, close } = await openStore(g);
      try {
        const set = await store.readDesired();
        const st = new Map((await store.readStatuses()).map((s) => [`${s.realm}/${s.instance}`, s]));
        const rows = set.services.map((e) => {
          const s = st.get(`${e.realm}/${e.name}`);
          return { spec: formatSpec(e), ...e, phase: s?.phase ?? null, reason: s?.reason ?? null, message: s?.message ?? null };
        });
        if (v.json) out(JSON.stringify({ generation: set.generation, services: rows }, null, 2));
        else {
          out(`generation ${set.generation}${rows.length ? '' : ': empty'}`);
          for (const r of rows) out(`${r.spec}\t${r.phase ?? '(no status yet)'}${r.reason ? `\t${r.reason}` : ''}`);
        }
        return 0;
      } finally {
        close();
      }
    },
  },
};
