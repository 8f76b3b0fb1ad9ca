// `ozwald secrets …`: seal, list, remove, rotate, verify and migrate lockers.
import { promises as fs } from 'node:fs';
import { loadManifests } from '../config/load.js';
import { OzwError, isOzwError } from '../errors.js';
import { listOf } from '../config/suggest.js';
import { vaultKey } from '../state/keys.js';
import type { Store } from '../state/store.js';
import { inspect, open, seal } from '../vault/envelope.js';
import { parsePayload } from '../vault/payload.js';
import { openStore, type Globals } from './context.js';
import { checkName, need, out, TOKEN_OPTIONS, GLOBAL_HELP, type Command } from './shared.js';
import { readToken, type TokenOptions } from './token.js';

const NEW_TOKEN_OPTIONS = {
  'new-token-stdin': { type: 'boolean' },
  'new-token-file': { type: 'string' },
  'new-token': { type: 'string' },
} as const;

function realmLocker(pos: string[]): [string, string] {
  const [realm, locker] = need(pos, 2, 'REALM LOCKER');
  return [checkName('realm', realm!), checkName('locker', locker!)];
}

async function blobOrThrow(store: Store, realm: string, locker: string): Promise<string> {
  const blob = await store.getVault(realm, locker);
  if (blob === null) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${locker}`);
  return blob;
}

/**
 * Re-seals a locker atomically: WATCH the key, open, seal, and write in a
 * MULTI that fails if anyone changed the key meanwhile. The locker is never
 * missing or half-written; a wrong token changes nothing.
 */
async function reseal(g: Globals, realm: string, locker: string, oldToken: string, newToken: string, expect?: 'fernet'): Promise<{ keys: number; from: string }> {
  const { store, redis, close } = await openStore(g);
  try {
    const key = vaultKey(realm, locker);
    await redis.watch(key);
    const blob = await blobOrThrow(store, realm, locker);
    const opened = await open(realm, locker, oldToken, blob);
    if (expect === 'fernet' && opened.format !== 'fernet') {
      throw new OzwError('OZW_USAGE', `vault:${realm}:${locker} is already in the v1 envelope; nothing to migrate`);
    }
    const next = await seal(realm, locker, newToken, opened.payload);
    const done = await redis.multi().set(key, next).exec();
    if (done === null) throw new OzwError('OZW_CONFLICT', `vault:${realm}:${locker} changed while it was being re-sealed; nothing was written`, [], 'run the command again (someone sealed this locker meanwhile: check with `ozwald secrets list`)');
    await store.wake(`resealed ${realm}:${locker}`);
    return { keys: Object.keys(opened.payload).length, from: opened.format };
  } finally {
    await redis.unwatch().catch(() => {});
    close();
  }
}

export const SECRETS_COMMANDS: Record<string, Command> = {
  'secrets set': {
    summary: 'seal a JSON object or .env file into a locker',
    help: `ozwald secrets set REALM LOCKER --file F [--strict] [--token-stdin | --token-file F]

Seals the KEY/VALUE pairs of F (a JSON object of strings, or KEY=VALUE lines)
into vault:REALM:LOCKER, encrypted with a key derived from the token. The
token is asked for on a no-echo prompt (twice), or read from --token-stdin,
--token-file, OZWALD_TOKEN. A locker the manifests do not declare is a
warning, or an error with --strict. Running containers keep their old values
until the locker is unlocked again.

example: ozwald secrets set demo api-keys --file secrets.json
${GLOBAL_HELP}`,
    options: { file: { type: 'string' }, strict: { type: 'boolean' }, ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = realmLocker(pos);
      if (typeof v.file !== 'string') throw new OzwError('OZW_USAGE', 'secrets set needs --file F (a JSON object or a .env file)');
      let text: string;
      try {
        const buf = await fs.readFile(v.file);
        // Decoding leniently would seal U+FFFD in place of the bytes written.
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
        } catch {
          throw new OzwError('OZW_PAYLOAD_INVALID', `${v.file}: not valid UTF-8 text (the values are not shown)`, [], 'save the file as UTF-8');
        }
      } catch (e) {
        if (isOzwError(e)) throw e;
        throw new OzwError('OZW_USAGE', `cannot read --file ${v.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, [], 'check the path given to --file, and that this user may read it');
      }
      const payload = parsePayload(text, v.file);
      const declared = await loadManifests(g.manifests).catch(() => ({ model: undefined }));
      if (!declared.model?.realms.get(realm)?.lockers.has(locker)) {
        const r = declared.model?.realms.get(realm);
        const msg = declared.model
          ? `the manifests in ${g.manifests} declare no locker "${locker}" in realm "${realm}" (${r ? `its lockers: ${listOf(r.lockers.keys())}` : `realms: ${listOf(declared.model.realms.keys())}`})`
          : `the manifests in ${g.manifests} could not be loaded to check that locker "${locker}" is declared`;
        if (v.strict) throw new OzwError('OZW_UNKNOWN_REFERENCE', `${msg}; nothing was written (--strict)`, [], `declare it in the realm's vault.lockers first, or use one of the names listed`);
        process.stderr.write(`ozwald: warning: ${msg}\n`);
      }
      const token = await readToken(v as TokenOptions, { confirm: true });
      const blob = await seal(realm, locker, token, payload);
      const { store, close } = await openStore(g);
      try {
        await store.setVault(realm, locker, blob);
        await store.wake(`sealed ${realm}:${locker}`);
      } finally {
        close();
      }
      out(`sealed ${Object.keys(payload).length} key(s) into vault:${realm}:${locker}`);
      return 0;
    },
  },

  'secrets list': {
    summary: 'list sealed lockers (never values)',
    help: `ozwald secrets list [REALM] [--keys] [--json]

Lists the lockers sealed in Redis: realm, locker, envelope format, when sealed;
with --keys also the key names (never values). Needs no token.

example: ozwald secrets list demo --keys`,
    options: { json: { type: 'boolean' }, keys: { type: 'boolean' } },
    async run(g, v, pos) {
      const { store, close } = await openStore(g);
      try {
        const all = (await store.listVault()).filter((x) => !pos[0] || x.realm === pos[0]);
        const rows = all.map((x) => {
          try {
            const i = inspect(x.blob);
            return { realm: x.realm, locker: x.locker, format: i.format === 'ozv1' ? 'v1' : 'legacy-fernet', sealedAt: i.sealedAt ?? null, keys: i.keys ?? null };
          } catch {
            return { realm: x.realm, locker: x.locker, format: 'unreadable', sealedAt: null, keys: null };
          }
        });
        if (v.json) out(JSON.stringify(rows.map((r) => (v.keys ? r : { ...r, keys: undefined })), null, 2));
        else if (!rows.length) out('no lockers sealed');
        else {
          for (const r of rows) {
            const keys = v.keys ? `\t${r.keys ? r.keys.join(',') : r.format === 'unreadable' ? '(unreadable blob)' : '(names not recorded: legacy envelope)'}` : '';
            out(`${r.realm}\t${r.locker}\t${r.format}\t${r.sealedAt ?? '-'}${keys}`);
          }
        }
        return 0;
      } finally {
        close();
      }
    },
  },

  'secrets rm': {
    summary: 'delete a sealed locker',
    help: 'ozwald secrets rm REALM LOCKER\n\nDeletes vault:REALM:LOCKER. Running containers keep their environment.\n\nexample: ozwald secrets rm demo api-keys',
    options: {},
    async run(g, _v, pos) {
      const [realm, locker] = realmLocker(pos);
      const { store, close } = await openStore(g);
      try {
        if (!(await store.delVault(realm, locker))) throw new OzwError('OZW_VAULT_EMPTY', `nothing sealed at vault:${realm}:${locker}`, [], 'nothing to remove: `ozwald secrets list` shows what is sealed');
        out(`deleted vault:${realm}:${locker}`);
        return 0;
      } finally {
        close();
      }
    },
  },

  'secrets verify': {
    summary: 'check that a token opens a locker',
    help: `ozwald secrets verify REALM LOCKER [--token-stdin | --token-file F]

Exit 0 when the token opens vault:REALM:LOCKER, 1 (OZW_VAULT_WRONG_TOKEN) when
not. Prints the number of keys, never their values.

example: ozwald secrets verify demo api-keys --token-file ~/.ozwald-token`,
    options: { ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = realmLocker(pos);
      const token = await readToken(v as TokenOptions);
      const { store, close } = await openStore(g);
      try {
        const opened = await open(realm, locker, token, await blobOrThrow(store, realm, locker)).catch((e: unknown) => {
          if (isOzwError(e, 'OZW_VAULT_WRONG_TOKEN')) e.fix = 'try the token it was sealed with; if that is lost, seal the values again with `ozwald secrets set`';
          throw e;
        });
        out(`the token opens vault:${realm}:${locker} (${opened.format === 'ozv1' ? 'v1' : 'legacy Fernet'} envelope, ${Object.keys(opened.payload).length} key(s))`);
        return 0;
      } finally {
        close();
      }
    },
  },

  'secrets rotate': {
    summary: 're-seal a locker under a new token',
    help: `ozwald secrets rotate REALM LOCKER [--token-file OLD] [--new-token-file NEW]

Opens vault:REALM:LOCKER with the current token and re-seals the same values
under a new one, atomically: a wrong old token, or a concurrent change of the
locker, writes nothing. The new token comes from --new-token-stdin,
--new-token-file, OZWALD_NEW_TOKEN or a prompt. Running containers keep their
values and show StaleSecrets until the locker is unlocked with the new token.

example: ozwald secrets rotate demo api-keys --token-file old.tok --new-token-file new.tok`,
    options: { ...TOKEN_OPTIONS, ...NEW_TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = realmLocker(pos);
      if (v['token-stdin'] && v['new-token-stdin']) throw new OzwError('OZW_USAGE', 'only one of --token-stdin and --new-token-stdin can read standard input');
      const oldToken = await readToken(v as TokenOptions, { label: 'current token' });
      const newToken = await readToken(v as TokenOptions, { which: 'new-token', confirm: true });
      if (newToken === oldToken) throw new OzwError('OZW_USAGE', 'the new token is the same as the current one');
      const r = await reseal(g, realm, locker, oldToken, newToken);
      out(`re-sealed ${r.keys} key(s) in vault:${realm}:${locker} under the new token`);
      return 0;
    },
  },

  'secrets migrate': {
    summary: 're-seal a Python Ozwald (Fernet) locker in the v1 envelope',
    help: `ozwald secrets migrate REALM LOCKER [--token-stdin | --token-file F]

Opens a locker written by the Python Ozwald (Fernet, key = urlsafe-base64(sha256(token)))
and re-seals it, atomically, in the v1 envelope under the same token.

example: ozwald secrets migrate default api-keys --token-file token.txt`,
    options: { ...TOKEN_OPTIONS },
    async run(g, v, pos) {
      const [realm, locker] = realmLocker(pos);
      const token = await readToken(v as TokenOptions);
      const r = await reseal(g, realm, locker, token, token, 'fernet');
      out(`migrated vault:${realm}:${locker} (${r.keys} key(s)) from the legacy Fernet envelope to v1`);
      return 0;
    },
  },
};
