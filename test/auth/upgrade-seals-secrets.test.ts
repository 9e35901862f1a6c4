import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { generateSigningKey, issueDatabaseCredential } from '../../src/auth/credentials.js';
import { migrations } from '../../src/store/migrations.js';
import { api, removePier, startPier } from '../helpers/pier.js';
import { startExternalPostgres } from '../helpers/postgres.js';

test('a store an older Pier left with secrets in clear is sealed on the first start', async () => {
  const external = await startExternalPostgres('old_store');
  const db = await external.connect();
  // The store as Pier left it before migration 7: private keys and retry tokens in plain text.
  await db.query(
    'CREATE TABLE pier_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  for (const migration of migrations.filter((m) => m.version <= 4)) {
    await db.query(migration.sql);
    await db.query('INSERT INTO pier_migrations (version, name) VALUES ($1, $2)', [
      migration.version,
      migration.name,
    ]);
  }
  const legacy = await generateSigningKey();
  await db.query('INSERT INTO signing_keys (kid, private_jwk, public_jwk) VALUES ($1, $2, $3)', [
    legacy.kid,
    JSON.stringify(legacy.privateJwk),
    JSON.stringify(legacy.publicJwk),
  ]);
  const user = await db.query(`INSERT INTO identities (user_name) VALUES ('old@example.com') RETURNING id`);
  const old = await issueDatabaseCredential(legacy, {
    subject: 'old@example.com',
    instanceUids: [randomUUID()],
    ttlSeconds: 3600,
  });
  await db.query(
    `INSERT INTO credential_requests (request_id, identity_id, instance_uids, token, expires_at)
     VALUES ('retry-1', $1, ARRAY[gen_random_uuid()], $2, now() + interval '1 hour')`,
    [user.rows[0].id, old.token],
  );

  const pier = await startPier({ args: ['--store-url', external.url] });
  try {
    const keys = await db.query('SELECT kid, private_jwk, sealed_private_jwk, retired_at FROM signing_keys');
    const dump = JSON.stringify(keys.rows);
    assert.doesNotMatch(dump, /"d":/, 'no private key in clear');
    const sealed = keys.rows.find((row) => row.kid === legacy.kid);
    assert.equal(sealed.private_jwk, null);
    assert.ok(sealed.retired_at, 'the key that was in clear signs nothing new');
    assert.equal(keys.rows.filter((row) => !row.retired_at).length, 1);
    const retries = await db.query('SELECT * FROM credential_requests');
    assert.equal(retries.rows.length, 0, 'no plain token kept');
    assert.equal(JSON.stringify(retries.rows).includes(old.token), false);
    const bound = await db.query(`SELECT value->>'id' AS id FROM settings WHERE key = 'master_key'`);
    assert.match(bound.rows[0].id, /^[0-9a-f]{16}$/);

    // Tokens the old key signed keep verifying until they expire.
    const jwks = await api(pier, undefined, 'GET', '/oidc/v1/keys');
    assert.ok((jwks.body.keys as { kid: string }[]).some((key) => key.kid === legacy.kid));
  } finally {
    await db.end();
    await removePier(pier);
    await external.remove();
  }
});
