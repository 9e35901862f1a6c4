import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { issueDatabaseCredential, publicJwks } from '../../src/auth/credentials.js';
import { credentialPasswordCheck } from '../../src/proxy/index.js';
import { connectError, type Harness, ISSUER, startHarness } from './harness.js';

/**
 * Which user names may log in at all. Behind the proxy Postgres trusts the
 * private socket, so the proxy is the only thing between a signed token and
 * the role it names: even a correctly signed credential for `postgres` must
 * not open the bootstrap superuser.
 */
let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

describe('login names', () => {
  it('a signed credential for a reserved name is refused before any role is reached (28000)', async () => {
    for (const user of [
      'postgres',
      'Postgres',
      'pg_monitor',
      'pg_execute_server_program',
      'databricks_superuser',
    ]) {
      const error = await connectError(h.clientConfig(user, await h.token(user)));
      assert.equal(error?.code, '28000', user);
      assert.match(String(error?.message), new RegExp(`"${user}" is reserved .*connect as your own user`));
    }
  });

  it('a name Postgres would cut to 63 bytes cannot log in as the role the cut names', async () => {
    const role = 'r'.repeat(63);
    const superuser = await h.superuser();
    try {
      await superuser.query(`CREATE ROLE ${role} LOGIN`);
    } finally {
      await superuser.end();
    }
    const longer = `${role}@example.com`;
    const error = await connectError(h.clientConfig(longer, await h.token(longer)));
    assert.equal(error?.code, '28000');
    assert.match(String(error?.message), /longer than 63 bytes/);
  });

  it('with an identity check, a credential for a gone identity or naming none is refused (28P01)', async () => {
    const active = new Set(['1001']);
    const proxy = await h.startProxy({
      passwords: credentialPasswordCheck({
        publicKeys: () => publicJwks([h.key]),
        issuer: ISSUER,
        identities: { isActive: async (id) => active.has(id) },
      }),
    });
    const config = (password: string) => ({ ...h.clientConfig('alice', password), port: proxy.port });
    const noId = await connectError(config(await h.token('alice')));
    assert.equal(noId?.code, '28P01');
    assert.match(String(noId?.message), /does not name the identity .*generate a new one/);
    const tokenOf = async (identityId: string) =>
      (
        await issueDatabaseCredential(h.key, {
          subject: 'alice',
          identityId,
          instanceUids: [h.db1.uid],
          ttlSeconds: 600,
          issuer: ISSUER,
        })
      ).token;
    assert.equal(await connectError(config(await tokenOf('1001'))), undefined);
    const gone = await connectError(config(await tokenOf('1002')));
    assert.equal(gone?.code, '28P01');
    assert.match(String(gone?.message), /issued to "alice", an identity that has since been deleted/);
  });
});
