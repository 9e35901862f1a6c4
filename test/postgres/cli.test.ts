import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  availableInstance,
  connectThroughProxy,
  databaseCredential,
  userWithToken,
} from '../helpers/access.js';
import { api, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { expectError, lro, PG, query } from './autoscaling.js';

const ADMIN = 'admin@pier.local';

let pier: PierProcess;
after(async () => {
  if (pier) await removePier(pier);
});

describe('in-place upgrade of a Provisioned instance', () => {
  let uid: string;
  const grants = `SELECT grantee, privilege_type FROM information_schema.role_table_grants
                   WHERE table_name = 'ledger' AND grantee IN ('reader@pier.local', 'app_writer') ORDER BY 1, 2`;
  let seen: { rows: unknown[]; roles: unknown[]; grants: unknown[] };

  before(async () => {
    pier = await startPier();
    await userWithToken(pier, 'reader@pier.local');
    uid = await availableInstance(pier, pier.adminToken, 'ledger-db', {
      capacity: 'CU_2',
      enable_pg_native_login: true,
    });
    for (const role of [
      { name: 'reader@pier.local', identity_type: 'USER' },
      { name: 'app_writer', identity_type: 'PG_ONLY', attributes: { createdb: true } },
    ]) {
      const made = await api(
        pier,
        pier.adminToken,
        'POST',
        '/api/2.0/database/instances/ledger-db/roles',
        role,
      );
      assert.equal(made.status, 200, JSON.stringify(made.body));
    }
    const { client } = await connectThroughProxy(
      pier,
      'ledger-db',
      ADMIN,
      await databaseCredential(pier, pier.adminToken, 'ledger-db'),
    );
    assert.ok(client);
    await client.query(`CREATE TABLE ledger (id int PRIMARY KEY, amount numeric);
      INSERT INTO ledger SELECT g, g * 1.5 FROM generate_series(1, 500) g;
      GRANT SELECT ON ledger TO "reader@pier.local"; GRANT INSERT, UPDATE ON ledger TO app_writer`);
    seen = {
      rows: (await client.query('SELECT sum(amount)::text AS total, count(*)::int AS n FROM ledger')).rows,
      roles: (
        await client.query(
          "SELECT rolname, rolcreatedb FROM pg_roles WHERE rolname IN ('reader@pier.local', 'app_writer') ORDER BY 1",
        )
      ).rows,
      grants: (await client.query(grants)).rows,
    };
    await client.end();
  });
  test('the instance becomes a project: production branch, primary endpoint on the same host, its roles and databases', async () => {
    const { body: instance } = await api(
      pier,
      pier.adminToken,
      'GET',
      '/api/2.0/database/instances/ledger-db',
    );
    const upgraded = await api(
      pier,
      pier.adminToken,
      'PATCH',
      '/api/2.0/database/instances/ledger-db/upgrade',
    );
    assert.equal(upgraded.status, 200, JSON.stringify(upgraded.body));
    assert.equal(upgraded.body.state, 'AVAILABLE');
    const { body: project } = await api(pier, pier.adminToken, 'GET', `${PG}/projects/ledger-db`);
    assert.equal(
      (project.status as Record<string, unknown>).default_branch,
      'projects/ledger-db/branches/production',
    );
    const { body: endpoint } = await api(
      pier,
      pier.adminToken,
      'GET',
      `${PG}/projects/ledger-db/branches/production/endpoints/primary`,
    );
    const status = endpoint.status as Record<string, unknown>;
    assert.equal((status.hosts as { host: string }).host, instance.read_write_dns);
    // CU_2 (16 GB a CU) is 8-16 Autoscaling CU (2 GB a CU), as Databricks maps it.
    assert.equal(status.autoscaling_limit_min_cu, 8);
    assert.equal(status.autoscaling_limit_max_cu, 16);
    assert.equal(status.current_state, 'ACTIVE');
    const { body: roles } = await api(
      pier,
      pier.adminToken,
      'GET',
      `${PG}/projects/ledger-db/branches/production/roles`,
    );
    const byName = new Map(
      (roles.roles as { status: Record<string, unknown> }[]).map((r) => [r.status.postgres_role, r.status]),
    );
    assert.equal(byName.get('reader@pier.local')?.identity_type, 'USER');
    assert.equal(byName.get('app_writer')?.auth_method, 'PG_PASSWORD_SCRAM_SHA_256');
    assert.deepEqual(byName.get('app_writer')?.attributes, {
      bypassrls: false,
      createdb: true,
      createrole: false,
    });
    const { body: databases } = await api(
      pier,
      pier.adminToken,
      'GET',
      `${PG}/projects/ledger-db/branches/production/databases`,
    );
    assert.ok(
      (databases.databases as { status: { postgres_database: string } }[]).some(
        (d) => d.status.postgres_database === 'databricks_postgres',
      ),
    );
    // Nothing moved: the same data directory serves the endpoint.
    const [dir] = await query(
      pier,
      pier.adminToken,
      'projects/ledger-db/branches/production/endpoints/primary',
      ADMIN,
      "SELECT current_setting('data_directory') AS d",
    );
    assert.ok(String(dir.d).endsWith(uid));
  });

  test('every row, role and grant survives, through the endpoint and through read_write_dns with a Provisioned credential', async () => {
    const endpoint = 'projects/ledger-db/branches/production/endpoints/primary';
    const after = {
      rows: await query(
        pier,
        pier.adminToken,
        endpoint,
        ADMIN,
        'SELECT sum(amount)::text AS total, count(*)::int AS n FROM ledger',
        'postgres',
      ),
      roles: await query(
        pier,
        pier.adminToken,
        endpoint,
        ADMIN,
        "SELECT rolname, rolcreatedb FROM pg_roles WHERE rolname IN ('reader@pier.local', 'app_writer') ORDER BY 1",
      ),
      grants: await query(pier, pier.adminToken, endpoint, ADMIN, grants, 'postgres'),
    };
    assert.deepEqual(after, seen);
    const { client } = await connectThroughProxy(
      pier,
      'ledger-db',
      ADMIN,
      await databaseCredential(pier, pier.adminToken, 'ledger-db'),
    );
    assert.ok(client, 'the Provisioned credential and routing keep working');
    assert.equal((await client.query('SELECT count(*)::int AS n FROM ledger')).rows[0].n, 500);
    await client.end();
  });

  test('the Provisioned API refuses changes and a second upgrade; the project manages the compute', async () => {
    expectError(
      await api(pier, pier.adminToken, 'PATCH', '/api/2.0/database/instances/ledger-db?update_mask=stopped', {
        stopped: true,
      }),
      400,
      'INVALID_STATE',
      /projects\/ledger-db/,
    );
    expectError(
      await api(pier, pier.adminToken, 'DELETE', '/api/2.0/database/instances/ledger-db'),
      400,
      'INVALID_STATE',
    );
    expectError(
      await api(pier, pier.adminToken, 'PATCH', '/api/2.0/database/instances/ledger-db/upgrade'),
      400,
      'INVALID_STATE',
      /already upgraded/,
    );
    expectError(
      await api(pier, pier.adminToken, 'PATCH', '/api/2.0/database/instances/nope/upgrade'),
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
    const branch = await lro(
      pier,
      pier.adminToken,
      'POST',
      'projects/ledger-db/branches?branch_id=rehearsal',
      {},
    );
    assert.equal(
      (branch.response?.status as Record<string, unknown> | undefined)?.source_branch,
      'projects/ledger-db/branches/production',
    );
    const rows = await query(
      pier,
      pier.adminToken,
      'projects/ledger-db/branches/rehearsal/endpoints/primary',
      ADMIN,
      'SELECT count(*)::int AS n FROM ledger',
      'postgres',
    );
    assert.equal(rows[0].n, 500);
  });
});

describe('pier postgres … and pier psql', () => {
  const env = () => ({
    DATABRICKS_HOST: pier.apiUrl,
    DATABRICKS_TOKEN: pier.adminToken,
    PGPORT: String(pier.proxyPort),
    PGSSLROOTCERT: pier.caCertPath as string,
  });
  const cli = async (...args: string[]) => {
    const result = await runPier(args, env());
    // biome-ignore lint/suspicious/noExplicitAny: the CLI prints whatever the API answers
    let json: any;
    try {
      json = result.code === 0 && result.stdout.trim() ? JSON.parse(result.stdout) : undefined;
    } catch {
      json = undefined; // psql's output
    }
    return { ...result, json };
  };

  test('the lifecycle: create-project, create-branch (waiting), --no-wait and get-operation, updates, credential, psql, deletes', async () => {
    const project = await cli(
      'postgres',
      'create-project',
      'cli-app',
      '--json',
      '{"spec": {"display_name": "CLI app"}}',
    );
    assert.equal(project.code, 0, project.stderr);
    assert.equal(project.json.status.display_name, 'CLI app');
    const branch = await cli(
      'postgres',
      'create-branch',
      'projects/cli-app',
      'dev',
      '--json',
      '{"spec": {"no_expiry": true}}',
    );
    assert.equal(branch.code, 0, branch.stderr);
    assert.equal(branch.json.status.current_state, 'READY');
    assert.equal(branch.json.status.source_branch, 'projects/cli-app/branches/production');
    const started = await cli(
      'postgres',
      'update-branch',
      'projects/cli-app/branches/dev',
      'spec.is_protected',
      '--json',
      '{"spec": {"is_protected": true}}',
      '--no-wait',
    );
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.json.name, /^projects\/cli-app\/branches\/dev\/operations\//);
    const polled = await cli('postgres', 'get-operation', started.json.name);
    assert.equal(polled.code, 0, polled.stderr);
    assert.equal(polled.json.name, started.json.name);
    const branches = await cli('postgres', 'list-branches', 'projects/cli-app');
    assert.deepEqual(branches.json.map((b: { name: string }) => b.name).sort(), [
      'projects/cli-app/branches/dev',
      'projects/cli-app/branches/production',
    ]);
    const refused = await cli('postgres', 'delete-branch', 'projects/cli-app/branches/dev');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /protected/);
    const badMask = await cli(
      'postgres',
      'update-endpoint',
      'projects/cli-app/branches/dev/endpoints/primary',
      'spec.autoscaling_limit_max_cu',
      '--json',
      '{"spec": {}}',
    );
    assert.equal(badMask.code, 1);
    assert.match(badMask.stderr, /does not set it/);
    const credential = await cli(
      'postgres',
      'generate-database-credential',
      'projects/cli-app/branches/dev/endpoints/primary',
      '--ttl',
      '10m',
    );
    assert.equal(credential.code, 0, credential.stderr);
    assert.ok(credential.json.token && credential.json.expire_time);
    const psql = await cli(
      'psql',
      '--project',
      'cli-app',
      '--branch',
      'dev',
      '--',
      '-Atc',
      'SELECT current_user',
    );
    assert.equal(psql.code, 0, psql.stderr);
    assert.equal(psql.stdout.trim(), ADMIN);
    await cli(
      'postgres',
      'update-branch',
      'projects/cli-app/branches/dev',
      'spec.is_protected',
      '--json',
      '{"spec": {"is_protected": false}}',
    );
    const deleted = await cli('postgres', 'delete-branch', 'projects/cli-app/branches/dev');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(deleted.json, { '@type': 'type.googleapis.com/google.protobuf.Empty' });
    const purged = await cli('postgres', 'delete-project', 'projects/cli-app', '--purge');
    assert.equal(purged.code, 0, purged.stderr);
    const gone = await cli('postgres', 'get-project', 'projects/cli-app');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /NOT_FOUND/);
  });

  test('pier psql INSTANCE opens psql on a Provisioned instance with a fresh credential', async () => {
    const psql = await cli('psql', 'ledger-db', '--', '-Atc', 'SELECT current_user');
    assert.equal(psql.code, 0, psql.stderr);
    assert.equal(psql.stdout.trim(), ADMIN);
  });
});
