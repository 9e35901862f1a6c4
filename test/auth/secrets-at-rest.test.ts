import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { generateSigningKey } from '../../src/auth/credentials.js';
import { SOCKET_PORT } from '../../src/engine/local/cluster.js';
import { api, type PierProcess, runPier, startPier, tempDataDir } from '../helpers/pier.js';

let dataDir: string;
let pier: PierProcess | undefined;
const requestId = randomUUID();
let credential: { token: string; expiration_time: string };
let pat: string;

const keyFile = () => join(dataDir, 'keys', 'master.key');

/** The embedded store, read directly as someone with access to its files or socket would. */
async function withStore<T>(work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({
    host: join(dataDir, 'run', 'store'),
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'pier',
  });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

/** Every row of every table of the store, as JSON text. */
const dumpStore = () =>
  withStore(async (db) => {
    const { rows: tables } = await db.query<{ name: string }>(
      `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name
         FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`,
    );
    const dump: string[] = [];
    for (const { name } of tables) {
      const { rows } = await db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${name} t`);
      dump.push(...rows.map((r) => `${name} ${r.row}`));
    }
    return dump.join('\n');
  });

const signingKeyRows = () =>
  withStore(async (db) => (await db.query('SELECT * FROM signing_keys ORDER BY kid')).rows);

async function up(env: NodeJS.ProcessEnv = {}): Promise<PierProcess> {
  pier = await startPier({ dataDir, env });
  return pier;
}

const requestCredential = (p: PierProcess) =>
  api(p, p.adminToken, 'POST', '/api/2.0/database/credentials', {
    request_id: requestId,
    instance_names: ['secrets-db'],
  });

before(async () => {
  dataDir = await tempDataDir('pier-secrets-');
  const p = await up();
  const created = await api(p, p.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'secrets-db',
    stopped: true,
  });
  assert.equal(created.status, 200);
  const answer = await requestCredential(p);
  assert.equal(answer.status, 200);
  credential = answer.body as typeof credential;
  pat = (await api(p, p.adminToken, 'POST', '/api/2.0/token/create', { comment: 'x' })).body
    .token_value as string;
});
after(async () => {
  await pier?.stop();
  await runPier(['down', '--data-dir', dataDir]);
  await rm(dataDir, { recursive: true, force: true });
});

test('the store holds no private key material and no token text', async () => {
  const dump = await dumpStore();
  assert.match(dump, /signing_keys/, 'the dump sees the signing keys table');
  assert.match(dump, /sealed_private_jwk/);
  assert.doesNotMatch(dump, /"d":/, 'no private JWK in any table');
  for (const secret of [credential.token, pat, pier!.adminToken]) {
    assert.equal(dump.includes(secret), false, 'no issued token in any table');
  }
  // The signature alone (the part that cannot be re-made without the key) is not there either.
  assert.equal(dump.includes(credential.token.split('.')[2]), false);

  const file = await stat(keyFile());
  assert.equal(file.mode & 0o777, 0o600);
  assert.equal(Buffer.from((await readFile(keyFile(), 'utf8')).trim(), 'base64').length, 32);
});

test('a Pier with the wrong or no master key refuses to start and changes nothing', async () => {
  const keysBefore = await signingKeyRows();
  const keyBefore = await readFile(keyFile(), 'utf8');
  await pier!.stop();

  const wrong = await runPier(['up', '--data-dir', dataDir, '--api-port', '0', '--proxy-port', '0'], {
    PIER_MASTER_KEY: randomBytes(32).toString('base64'),
  });
  assert.equal(wrong.code, 1);
  const message = wrong.stderr.trim();
  assert.equal(message.split('\n').length, 1, message);
  assert.match(
    message,
    /sealed with master key [0-9a-f]{16}, but PIER_MASTER_KEY is master key [0-9a-f]{16}/,
  );
  assert.match(message, /Start Pier with the master key this store was started with/);

  const malformed = await runPier(['up', '--data-dir', dataDir, '--api-port', '0'], {
    PIER_MASTER_KEY: 'not-a-key',
  });
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /PIER_MASTER_KEY is not a master key: it must be 32 random bytes in base64/);

  // The key file gone (e.g. a data dir restored without keys/): no new key is made in its place.
  await rename(keyFile(), `${keyFile()}.saved`);
  const missing = await runPier(['up', '--data-dir', dataDir, '--api-port', '0']);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /there is no master key: PIER_MASTER_KEY is unset and .*master\.key does not exist/,
  );
  await assert.rejects(stat(keyFile()), { code: 'ENOENT' });

  // The right key, given in the environment, opens everything as before.
  const p = await up({ PIER_MASTER_KEY: keyBefore.trim() });
  assert.deepEqual(await signingKeyRows(), keysBefore);
  const again = await requestCredential(p);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, credential, 'the retry still gets the same credential');
  await p.stop();
  await rename(`${keyFile()}.saved`, keyFile());
});

test('a private key an older Pier stored in plain text is sealed on start and stops signing', async () => {
  const p = await up();
  const legacy = await generateSigningKey();
  await withStore(async (db) => {
    await db.query('UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL');
    await db.query('INSERT INTO signing_keys (kid, private_jwk, public_jwk) VALUES ($1, $2, $3)', [
      legacy.kid,
      JSON.stringify(legacy.privateJwk),
      JSON.stringify(legacy.publicJwk),
    ]);
  });
  assert.match(await dumpStore(), /"d":/);
  await p.stop();

  const restarted = await up();
  assert.doesNotMatch(await dumpStore(), /"d":/);
  const rows = await signingKeyRows();
  const sealed = rows.find((row) => row.kid === legacy.kid);
  assert.equal(sealed.private_jwk, null);
  assert.equal(typeof sealed.sealed_private_jwk.ciphertext, 'string');
  assert.ok(sealed.retired_at, 'the key that was in plain text signs nothing new');
  const jwks = await api(restarted, undefined, 'GET', '/oidc/v1/keys');
  assert.ok(
    (jwks.body.keys as { kid: string }[]).some((k) => k.kid === legacy.kid),
    'but still verifies',
  );
  const fresh = await api(restarted, restarted.adminToken, 'POST', '/api/2.0/database/credentials', {
    instance_names: ['secrets-db'],
  });
  const kid = JSON.parse(Buffer.from((fresh.body.token as string).split('.')[0], 'base64url').toString()).kid;
  assert.notEqual(kid, legacy.kid);
});
