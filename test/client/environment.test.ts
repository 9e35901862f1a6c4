import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { createPool, type PierClientError } from 'pier/client';
import { removePier } from '../helpers/pier.js';
import { type InstanceUnderTest, pierWithInstance } from './instance.js';

describe('createPool from the environment', () => {
  let target: InstanceUnderTest;
  let home: string;

  before(async () => {
    target = await pierWithInstance('env-db');
    // No ~/.databrickscfg of the machine running the tests is ever read.
    home = await mkdtemp(join(tmpdir(), 'pier-client-home-'));
  });
  after(async () => {
    if (target) await removePier(target.pier);
  });

  /** What Databricks Apps inject for a database resource, with user auth for the API. */
  function appsEnvironment(): Record<string, string> {
    return {
      HOME: home,
      DATABRICKS_HOST: target.pier.apiUrl,
      DATABRICKS_TOKEN: target.pier.adminToken,
      PGHOST: target.readWriteDns,
      PGPORT: String(target.pier.proxyPort),
      PGDATABASE: 'databricks_postgres',
      PGUSER: 'admin@pier.local',
      PGSSLMODE: 'require',
      PGSSLROOTCERT: target.pier.caCertPath!,
      PGAPPNAME: 'feature-flags',
    };
  }

  it('connects with nothing but the injected environment', async () => {
    const pool = createPool({ env: appsEnvironment() });
    try {
      const { rows } = await pool.query(
        "SELECT current_user, current_database(), current_setting('application_name') AS app",
      );
      assert.deepEqual(rows, [
        { current_user: 'admin@pier.local', current_database: 'databricks_postgres', app: 'feature-flags' },
      ]);
    } finally {
      await pool.end();
    }
  });

  it('finds host and user from instanceName alone (instance lookup, SCIM Me)', async () => {
    const { PGHOST: _h, PGUSER: _u, PGDATABASE: _d, ...env } = appsEnvironment();
    const pool = createPool({ instanceName: target.name, env });
    try {
      const { rows } = await pool.query('SELECT current_user, inet_server_port() IS NOT NULL AS ok');
      assert.equal(rows[0].current_user, 'admin@pier.local');
      assert.equal(pool.options.host, target.readWriteDns);
    } finally {
      await pool.end();
    }
  });

  it('reads the workspace from a ~/.databrickscfg profile', async () => {
    const { DATABRICKS_HOST: _h, DATABRICKS_TOKEN: _t, ...env } = appsEnvironment();
    await writeFile(
      join(home, '.databrickscfg'),
      `[pier]\nhost = ${target.pier.apiUrl}\ntoken = ${target.pier.adminToken}\n`,
    );
    const pool = createPool({ profile: 'pier', env });
    try {
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await pool.end();
    }
  });

  it('asks the API once for many connections opened at the same moment', async () => {
    const pool = createPool({ env: appsEnvironment(), max: 10 });
    try {
      const clients = await Promise.all(Array.from({ length: 10 }, () => pool.connect()));
      for (const client of clients) client.release();
      assert.equal(pool.totalCount, 10);
      assert.equal(pool.credentials.refreshes, 1);
    } finally {
      await pool.end();
    }
  });

  it('drives Kysely', async () => {
    interface Database {
      feature_flags: { name: string; enabled: boolean };
    }
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: createPool({ env: appsEnvironment() }) }),
    });
    try {
      await sql`CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL)`.execute(db);
      await db.insertInto('feature_flags').values({ name: 'dark-mode', enabled: true }).execute();
      await db.transaction().execute(async (tx) => {
        await tx
          .updateTable('feature_flags')
          .set({ enabled: false })
          .where('name', '=', 'dark-mode')
          .execute();
      });
      const flags = await db.selectFrom('feature_flags').selectAll().execute();
      assert.deepEqual(flags, [{ name: 'dark-mode', enabled: false }]);
    } finally {
      await db.destroy();
    }
  });

  it('verifies the server: without Pier’s CA the connection is refused', async () => {
    const { PGSSLROOTCERT: _ca, ...env } = appsEnvironment();
    const pool = createPool({ env });
    try {
      await assert.rejects(pool.query('SELECT 1'), /self-signed certificate|unable to verify/);
    } finally {
      await pool.end();
    }
  });

  it('refuses sslmodes that would send the token without TLS, and says why', () => {
    for (const mode of ['disable', 'allow', 'prefer']) {
      assert.throws(
        () => createPool({ env: { ...appsEnvironment(), PGSSLMODE: mode } }),
        (error: PierClientError) => error.kind === 'configuration' && /only takes TLS/.test(error.message),
      );
    }
  });

  it('says what is missing when nothing names the workspace or the instance', () => {
    assert.throws(
      () => createPool({ env: { HOME: home } }),
      /pass instanceName, endpoint or host, or set PGHOST or LAKEBASE_ENDPOINT/,
    );
    assert.throws(
      () => createPool({ env: { HOME: home, PGHOST: target.readWriteDns } }),
      /No workspace credentials: set DATABRICKS_HOST/,
    );
  });
});
