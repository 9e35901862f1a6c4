import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { expectError, lro, type Operation, PG, query, waitOperation } from './autoscaling.js';

const ADMIN = 'admin@pier.local';

describe('Lakebase Autoscaling API', () => {
  let pier: PierProcess;
  let token: string;
  let devUid = '';
  before(async () => {
    pier = await startPier({ args: ['--min-suspend-timeout', '1'] });
    token = pier.adminToken;
  });
  after(async () => {
    if (pier) await removePier(pier);
  });

  test("a project comes with its production branch, primary endpoint, database and the caller's role", async () => {
    const done = await lro(pier, token, 'POST', 'projects?project_id=shop', {
      spec: { display_name: 'Shop' },
    });
    assert.equal(done.response?.name, 'projects/shop');
    const byId = await api(pier, token, 'GET', `${PG}/operations/${done.name.split('/').pop()}`);
    assert.equal(byId.body.name, done.name);
    assert.deepEqual(done.metadata, {
      '@type': 'type.googleapis.com/databricks.postgres.v1.ProjectOperationMetadata',
    });
    const { body: project } = await api(pier, token, 'GET', `${PG}/projects/shop`);
    const status = project.status as Record<string, unknown>;
    assert.equal(status.display_name, 'Shop');
    assert.equal(status.default_branch, 'projects/shop/branches/production');
    assert.equal(status.history_retention_duration, '604800s');
    assert.deepEqual(status.default_endpoint_settings, {
      autoscaling_limit_min_cu: 1,
      autoscaling_limit_max_cu: 1,
      suspend_timeout_duration: '86400s',
    });
    const { body: branches } = await api(pier, token, 'GET', `${PG}/projects/shop/branches`);
    const [production] = branches.branches as { name: string; status: Record<string, unknown> }[];
    assert.equal(production.name, 'projects/shop/branches/production');
    assert.equal(production.status.default, true);
    assert.equal(production.status.current_state, 'READY');
    const { body: endpoint } = await api(
      pier,
      token,
      'GET',
      `${PG}/projects/shop/branches/production/endpoints/primary`,
    );
    const endpointStatus = endpoint.status as Record<string, unknown>;
    assert.equal(endpointStatus.endpoint_type, 'ENDPOINT_TYPE_READ_WRITE');
    assert.equal(endpointStatus.current_state, 'ACTIVE');
    assert.match(String(endpoint.uid), /^ep-[a-z]+$/);
    assert.ok((endpointStatus.hosts as { host: string }).host);
    const { body: databases } = await api(
      pier,
      token,
      'GET',
      `${PG}/projects/shop/branches/production/databases`,
    );
    assert.deepEqual(
      (databases.databases as { status: { postgres_database: string } }[]).map(
        (d) => d.status.postgres_database,
      ),
      ['databricks_postgres'],
    );
    const { body: roles } = await api(pier, token, 'GET', `${PG}/projects/shop/branches/production/roles`);
    const [role] = roles.roles as { status: Record<string, unknown> }[];
    assert.equal(role.status.postgres_role, ADMIN);
    assert.deepEqual(role.status.membership_roles, ['DATABRICKS_SUPERUSER']);
    const rows = await query(
      pier,
      token,
      'projects/shop/branches/production/endpoints/primary',
      ADMIN,
      'CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100); SELECT current_user',
    );
    assert.equal(rows[0].current_user, ADMIN);
  });

  test("create and get refusals use Autoscaling's codes", async () => {
    expectError(
      await api(pier, token, 'POST', `${PG}/projects`, {}),
      400,
      'INVALID_PARAMETER_VALUE',
      /Field 'project_id' is required/,
    );
    expectError(await api(pier, token, 'POST', `${PG}/projects?project_id=shop`, {}), 409, 'ALREADY_EXISTS');
    expectError(
      await api(pier, token, 'POST', `${PG}/projects?project_id=Bad_Id`, {}),
      400,
      'INVALID_PARAMETER_VALUE',
    );
    expectError(await api(pier, token, 'GET', `${PG}/projects/nope`), 404, 'NOT_FOUND');
    expectError(await api(pier, token, 'GET', `${PG}/projects/shop/branches/nope`), 404, 'NOT_FOUND');
    expectError(await api(pier, token, 'GET', `${PG}/projects/shop/operations/nope`), 404, 'NOT_FOUND');
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches/production/endpoints?endpoint_id=second`, {
        spec: { endpoint_type: 'ENDPOINT_TYPE_READ_WRITE' },
      }),
      400,
      'BAD_REQUEST',
      /at most one/,
    );
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches/production/endpoints?endpoint_id=second`, {
        spec: {},
      }),
      400,
      'INVALID_PARAMETER_VALUE',
      /endpoint_type' is required/,
    );
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches/production/databases`, {
        spec: { postgres_database: 'x' },
      }),
      400,
      'INVALID_PARAMETER_VALUE',
      /database.spec.role' is required/,
    );
    const { body: list } = await api(pier, token, 'GET', `${PG}/projects`);
    assert.deepEqual(
      (list.projects as { name: string }[]).map((p) => p.name),
      ['projects/shop'],
    );
  });

  test('every rejected update mask changes nothing', async () => {
    const before = await api(pier, token, 'GET', `${PG}/projects/shop`);
    const endpoint = 'projects/shop/branches/production/endpoints/primary';
    const beforeEndpoint = await api(pier, token, 'GET', `${PG}/${endpoint}`);
    const refusals: [string, string, unknown, RegExp][] = [
      ['projects/shop', '', { spec: { display_name: 'x' } }, /update_mask is required/],
      ['projects/shop', 'spec.display_name', { spec: {} }, /does not set it/],
      ['projects/shop', 'spec.nonsense', { spec: { nonsense: 1 } }, /Unknown field path/],
      ['projects/shop', 'spec.pg_version', { spec: { pg_version: 17 } }, /cannot be updated/],
      [
        'projects/shop',
        'spec.history_retention_duration',
        { spec: { history_retention_duration: '60s' } },
        /between 172800s/,
      ],
      [
        endpoint,
        'spec.autoscaling_limit_max_cu',
        { spec: { autoscaling_limit_max_cu: 65 } },
        /between 0.5 and 64/,
      ],
      [
        endpoint,
        'spec.autoscaling_limit_min_cu,spec.autoscaling_limit_max_cu',
        { spec: { autoscaling_limit_min_cu: 0.5, autoscaling_limit_max_cu: 32 } },
        /at most 16 CU/,
      ],
      [
        endpoint,
        'spec.autoscaling_limit_min_cu',
        { spec: { autoscaling_limit_min_cu: 0.25 } },
        /steps of 0.5/,
      ],
      [
        endpoint,
        'spec.suspend_timeout_duration',
        { spec: { suspend_timeout_duration: '700000s' } },
        /604800s/,
      ],
      [
        endpoint,
        'spec.suspension',
        { spec: { suspend_timeout_duration: '60s', no_suspension: true } },
        /not both/,
      ],
      [
        endpoint,
        'spec.endpoint_type',
        { spec: { endpoint_type: 'ENDPOINT_TYPE_READ_ONLY' } },
        /cannot be updated/,
      ],
      [
        'projects/shop/branches/production',
        'spec.source_branch',
        { spec: { source_branch: 'x' } },
        /cannot be updated/,
      ],
      ['projects/shop/branches/production', 'spec.expiration', { spec: {} }, /does not set it/],
    ];
    for (const [name, mask, body, message] of refusals) {
      const result = await api(pier, token, 'PATCH', `${PG}/${name}?update_mask=${mask}`, body);
      expectError(result, 400, 'INVALID_PARAMETER_VALUE', message);
    }
    const roles = 'projects/shop/branches/production/roles';
    const { body: roleList } = await api(pier, token, 'GET', `${PG}/${roles}`);
    const role = (roleList.roles as { name: string }[])[0].name;
    for (const mask of ['spec.postgres_role', 'spec.auth_method', 'spec.identity_type']) {
      const field = mask.split('.')[1];
      expectError(
        await api(pier, token, 'PATCH', `${PG}/${role}?update_mask=${mask}`, { spec: { [field]: 'x' } }),
        400,
        'INVALID_PARAMETER_VALUE',
      );
    }
    assert.deepEqual((await api(pier, token, 'GET', `${PG}/projects/shop`)).body, before.body);
    assert.deepEqual(
      (await api(pier, token, 'GET', `${PG}/${endpoint}`)).body.status,
      beforeEndpoint.body.status,
    );
    // A good mask applies only what it names.
    const done = await lro(pier, token, 'PATCH', 'projects/shop?update_mask=spec.display_name', {
      spec: { display_name: 'Shop 2', enable_pg_native_login: true },
    });
    const status = done.response?.status as Record<string, unknown>;
    assert.equal(status.display_name, 'Shop 2');
    assert.equal(status.enable_pg_native_login, false);
  });

  test('replace_existing adopts the implicit production branch and primary endpoint (as bundles and Terraform do)', async () => {
    const branch = await lro(
      pier,
      token,
      'POST',
      'projects/shop/branches?branch_id=production&replace_existing=true',
      {
        spec: { is_protected: false, no_expiry: true },
      },
    );
    assert.equal(branch.response?.name, 'projects/shop/branches/production');
    const endpoint = await lro(
      pier,
      token,
      'POST',
      'projects/shop/branches/production/endpoints?endpoint_id=primary&replace_existing=true',
      {
        spec: {
          endpoint_type: 'ENDPOINT_TYPE_READ_WRITE',
          autoscaling_limit_min_cu: 1,
          autoscaling_limit_max_cu: 1,
        },
      },
    );
    assert.equal((endpoint.response?.status as Record<string, unknown> | undefined)?.current_state, 'ACTIVE');
    expectError(
      await api(
        pier,
        token,
        'POST',
        `${PG}/projects/shop/branches/production/endpoints?endpoint_id=primary&replace_existing=true`,
        {
          spec: { endpoint_type: 'ENDPOINT_TYPE_READ_ONLY' },
        },
      ),
      400,
      'INVALID_PARAMETER_VALUE',
      /cannot change/,
    );
  });

  test("a branch has the parent's rows as of its creation, and writes on either side stay there", async () => {
    const before = instanceDirs();
    const done = await lro(pier, token, 'POST', 'projects/shop/branches?branch_id=dev', {
      spec: { no_expiry: true },
    });
    devUid = instanceDirs().filter((uid) => !before.includes(uid))[0];
    const status = done.response?.status as Record<string, unknown>;
    assert.equal(status.source_branch, 'projects/shop/branches/production');
    assert.match(String(status.source_branch_lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(
      Number(status.logical_size_bytes) > 1_000_000,
      `logical_size_bytes ${status.logical_size_bytes}`,
    );
    const dev = 'projects/shop/branches/dev/endpoints/primary';
    const production = 'projects/shop/branches/production/endpoints/primary';
    assert.equal((await query(pier, token, dev, ADMIN, 'SELECT count(*)::int AS n FROM orders'))[0].n, 100);
    await query(pier, token, dev, ADMIN, 'INSERT INTO orders SELECT generate_series(101, 150)');
    await query(pier, token, production, ADMIN, 'DELETE FROM orders WHERE id <= 10');
    assert.equal(
      (await query(pier, token, production, ADMIN, 'SELECT count(*)::int AS n FROM orders'))[0].n,
      90,
    );
    assert.equal((await query(pier, token, dev, ADMIN, 'SELECT count(*)::int AS n FROM orders'))[0].n, 150);
    const timeline = await query(pier, token, dev, ADMIN, 'SELECT timeline_id FROM pg_control_checkpoint()');
    assert.ok(timeline[0].timeline_id > 1, 'a branch runs on a timeline of its own');
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches?branch_id=dev`, {}),
      409,
      'ALREADY_EXISTS',
    );
  });

  test('a protected branch refuses delete; unprotected, its delete finishes with a response and its data is gone', async () => {
    await lro(pier, token, 'PATCH', 'projects/shop/branches/dev?update_mask=spec.is_protected', {
      spec: { is_protected: true },
    });
    expectError(
      await api(pier, token, 'DELETE', `${PG}/projects/shop/branches/dev`),
      400,
      'BAD_REQUEST',
      /protected/,
    );
    expectError(
      await api(pier, token, 'DELETE', `${PG}/projects/shop/branches/production`),
      400,
      'BAD_REQUEST',
      /default branch/,
    );
    expectError(
      await api(pier, token, 'DELETE', `${PG}/projects/shop/branches/production/endpoints/primary`),
      400,
      'BAD_REQUEST',
    );
    const { body: kept } = await api(pier, token, 'GET', `${PG}/projects/shop/branches/dev`);
    assert.equal((kept.status as Record<string, unknown>).is_protected, true);
    await lro(pier, token, 'PATCH', 'projects/shop/branches/dev?update_mask=spec.is_protected', {
      spec: { is_protected: false },
    });
    assert.ok(devUid && existsSync(join(pier.dataDir, 'instances', devUid)));
    // Soft: hidden, its server stopped, its data kept; undelete brings it back.
    const soft = await lro(pier, token, 'DELETE', 'projects/shop/branches/dev');
    assert.deepEqual(soft.response, { '@type': 'type.googleapis.com/google.protobuf.Empty' });
    expectError(await api(pier, token, 'GET', `${PG}/projects/shop/branches/dev`), 404, 'NOT_FOUND');
    const { body: listed } = await api(pier, token, 'GET', `${PG}/projects/shop/branches?show_deleted=true`);
    const deleted = (listed.branches as { name: string; status: Record<string, unknown> }[]).find((b) =>
      b.name.endsWith('/dev'),
    );
    assert.equal(deleted?.status.current_state, 'DELETED');
    assert.ok(deleted?.status.delete_time && deleted.status.purge_time);
    await eventually(
      async () => (existsSync(join(pier.dataDir, 'instances', devUid, 'postmaster.pid')) ? undefined : true),
      20_000,
      'the deleted branch stopped',
    );
    await lro(pier, token, 'POST', 'projects/shop/branches/dev/undelete', {});
    const rows = await query(
      pier,
      token,
      'projects/shop/branches/dev/endpoints/primary',
      ADMIN,
      'SELECT count(*)::int AS n FROM orders',
    );
    assert.equal(rows[0].n, 150);
    const done = await lro(pier, token, 'DELETE', 'projects/shop/branches/dev?purge=true');
    assert.deepEqual(done.response, { '@type': 'type.googleapis.com/google.protobuf.Empty' });
    expectError(await api(pier, token, 'GET', `${PG}/projects/shop/branches/dev`), 404, 'NOT_FOUND');
    assert.equal(existsSync(join(pier.dataDir, 'instances', devUid)), false);
  });

  /** Instance data directories (a branch holds one). */
  function instanceDirs(): string[] {
    return readdirSync(join(pier.dataDir, 'instances')).filter((e) => /^[0-9a-f-]{36}$/.test(e));
  }

  test('a branch with a ttl is removed once it expires', async () => {
    const done = await lro(pier, token, 'POST', 'projects/shop/branches?branch_id=scratch', {
      spec: { ttl: '8s' },
    });
    assert.ok((done.response?.status as Record<string, unknown> | undefined)?.expire_time);
    await eventually(
      async () =>
        (await api(pier, token, 'GET', `${PG}/projects/shop/branches/scratch`)).status === 404
          ? true
          : undefined,
      20_000,
      'expired branch removed',
    );
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches?branch_id=x`, {
        spec: { ttl: '60s', no_expiry: true },
      }),
      400,
      'INVALID_PARAMETER_VALUE',
    );
  });

  test('a branch at an LSN or a time has exactly the rows committed up to it', async () => {
    const production = 'projects/shop/branches/production/endpoints/primary';
    await query(pier, token, production, ADMIN, 'INSERT INTO orders VALUES (1000)');
    // After the commit (one simple query with several statements is one transaction).
    const [mark] = await query(
      pier,
      token,
      production,
      ADMIN,
      'SELECT pg_current_wal_lsn()::text AS lsn, clock_timestamp() AS at, count(*)::int AS n FROM orders',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await query(pier, token, production, ADMIN, 'INSERT INTO orders VALUES (1001), (1002)');
    for (const [id, spec] of [
      ['at-lsn', { source_branch_lsn: mark.lsn }],
      ['at-time', { source_branch_time: new Date(mark.at).toISOString() }],
    ] as const) {
      // The first base backup is taken just after the endpoint starts: until it exists, the point is outside the window.
      const started = await eventually(
        async () => {
          const result = await api(pier, token, 'POST', `${PG}/projects/shop/branches?branch_id=${id}`, {
            spec: { ...spec, ttl: '600s' },
          });
          return result.status === 200 ? result : undefined;
        },
        30_000,
        `branch ${id}`,
      );
      const done = await waitOperation(pier, token, started.body as unknown as Operation);
      assert.equal(done.error, undefined, JSON.stringify(done.error));
      const rows = await query(
        pier,
        token,
        `projects/shop/branches/${id}/endpoints/primary`,
        ADMIN,
        'SELECT count(*)::int AS n, max(id) AS top FROM orders',
      );
      assert.deepEqual(rows[0], { n: mark.n, top: 1000 }, id);
      await lro(pier, token, 'DELETE', `projects/shop/branches/${id}?purge=true`);
    }
    expectError(
      await api(pier, token, 'POST', `${PG}/projects/shop/branches?branch_id=future`, {
        spec: { source_branch_lsn: 'FF/0' },
      }),
      400,
      'INVALID_PARAMETER_VALUE',
      /source_branch_lsn FF\/0 is in the future/,
    );
  });

  test("roles and databases: created on the branch's Postgres, leaf masks honoured", async () => {
    const branch = 'projects/shop/branches/production';
    const role = await lro(pier, token, 'POST', `${branch}/roles?role_id=app-owner`, {
      spec: { postgres_role: 'app_owner', attributes: { createdb: true } },
    });
    assert.deepEqual((role.response?.status as Record<string, unknown> | undefined)?.attributes, {
      bypassrls: false,
      createdb: true,
      createrole: false,
    });
    expectError(
      await api(pier, token, 'POST', `${PG}/${branch}/roles?role_id=app-owner`, {
        spec: { postgres_role: 'app_owner' },
      }),
      400,
      'BAD_REQUEST',
      /already exists/,
    );
    const updated = await lro(
      pier,
      token,
      'PATCH',
      `${branch}/roles/app-owner?update_mask=spec.attributes.createrole`,
      { spec: { attributes: { createrole: true, createdb: false } } },
    );
    assert.deepEqual((updated.response?.status as Record<string, unknown> | undefined)?.attributes, {
      bypassrls: false,
      createdb: true,
      createrole: true,
    });
    const database = await lro(pier, token, 'POST', `${branch}/databases?database_id=inventory`, {
      spec: { postgres_database: 'inventory', role: `${branch}/roles/app-owner` },
    });
    assert.equal(
      (database.response?.status as Record<string, unknown> | undefined)?.role,
      `${branch}/roles/app-owner`,
    );
    const owner = await query(
      pier,
      token,
      `${branch}/endpoints/primary`,
      ADMIN,
      "SELECT pg_get_userbyid(datdba) AS owner, (SELECT rolcreaterole FROM pg_roles WHERE rolname = 'app_owner') AS createrole FROM pg_database WHERE datname = 'inventory'",
    );
    assert.deepEqual(owner, [{ owner: 'app_owner', createrole: true }]);
    expectError(
      await api(pier, token, 'POST', `${PG}/${branch}/databases`, {
        spec: { postgres_database: 'inventory', role: `${branch}/roles/app-owner` },
      }),
      400,
      'BAD_REQUEST',
      /already exists/,
    );
    await lro(pier, token, 'DELETE', `${branch}/databases/inventory`);
    await lro(pier, token, 'DELETE', `${branch}/roles/app-owner`);
    const gone = await query(
      pier,
      token,
      `${branch}/endpoints/primary`,
      ADMIN,
      "SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'app_owner'",
    );
    assert.equal(gone[0].n, 0);
  });

  test('replace_existing replaces a role and a database in place; lists page; an endpoint has one compute instance', async () => {
    const branch = 'projects/shop/branches/production';
    await lro(pier, token, 'POST', `${branch}/roles?role_id=svc-owner`, {
      spec: {
        postgres_role: 'svc_owner',
        membership_roles: ['DATABRICKS_SUPERUSER'],
        attributes: { createdb: true },
      },
    });
    await lro(pier, token, 'POST', `${branch}/roles?role_id=svc-other`, {
      spec: { postgres_role: 'svc_other' },
    });
    // The whole spec is replaced: membership_roles and attributes not sent are cleared.
    const replaced = await lro(
      pier,
      token,
      'POST',
      `${branch}/roles?role_id=svc-owner&replace_existing=true`,
      {
        spec: { postgres_role: 'svc_owner', attributes: { createrole: true } },
      },
    );
    const replacedStatus = replaced.response?.status as Record<string, unknown>;
    assert.deepEqual(replacedStatus.membership_roles, []);
    assert.deepEqual(replacedStatus.attributes, { bypassrls: false, createdb: false, createrole: true });
    const roleSql = `SELECT rolcreatedb, rolcreaterole, pg_has_role('svc_owner', 'databricks_superuser', 'MEMBER') AS member
                       FROM pg_roles WHERE rolname = 'svc_owner'`;
    const endpoint = `${branch}/endpoints/primary`;
    const roleRow = [{ rolcreatedb: false, rolcreaterole: true, member: false }];
    assert.deepEqual(await query(pier, token, endpoint, ADMIN, roleSql), roleRow);
    expectError(
      await api(pier, token, 'POST', `${PG}/${branch}/roles?role_id=svc-owner&replace_existing=true`, {
        spec: { postgres_role: 'svc_owner', auth_method: 'NO_LOGIN', attributes: { createdb: true } },
      }),
      400,
      'INVALID_PARAMETER_VALUE',
      /cannot change/,
    );
    assert.deepEqual(await query(pier, token, endpoint, ADMIN, roleSql), roleRow);

    await lro(pier, token, 'POST', `${branch}/databases?database_id=svc-db`, {
      spec: { postgres_database: 'svc', role: `${branch}/roles/svc-owner` },
    });
    const database = await lro(
      pier,
      token,
      'POST',
      `${branch}/databases?database_id=svc-db&replace_existing=true`,
      {
        spec: { postgres_database: 'svc_v2', role: `${branch}/roles/svc-other` },
      },
    );
    assert.deepEqual(database.response?.status, {
      database_id: 'svc-db',
      postgres_database: 'svc_v2',
      role: `${branch}/roles/svc-other`,
    });
    assert.deepEqual(
      await query(
        pier,
        token,
        endpoint,
        ADMIN,
        "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'svc_v2'",
      ),
      [{ owner: 'svc_other' }],
    );

    // Pages of one role at a time hold every role once, in order.
    const { body: all } = await api(pier, token, 'GET', `${PG}/${branch}/roles`);
    const paged: string[] = [];
    let pageToken: string | undefined;
    do {
      const { body } = await api(
        pier,
        token,
        'GET',
        `${PG}/${branch}/roles?page_size=1${pageToken ? `&page_token=${pageToken}` : ''}`,
      );
      assert.equal((body.roles as unknown[]).length, 1);
      paged.push(...(body.roles as { name: string }[]).map((r) => r.name));
      pageToken = body.next_page_token as string | undefined;
    } while (pageToken);
    assert.deepEqual(paged, (all.roles as { name: string }[]).map((r) => r.name).sort());
    assert.ok(paged.length >= 3);

    const { body: computes } = await api(pier, token, 'GET', `${PG}/${endpoint}/compute-instances`);
    const [compute] = computes.compute_instances as Record<string, string>[];
    const { body: found } = await api(pier, token, 'GET', `${PG}/${endpoint}`);
    assert.equal(compute.compute_host, (found.status as { hosts: { host: string } }).hosts.host);
    assert.equal(compute.role, 'READ_WRITE');
    assert.equal(compute.current_state, 'ACTIVE');
    assert.deepEqual((await api(pier, token, 'GET', `${PG}/${compute.name}`)).body, compute);
    expectError(await api(pier, token, 'GET', `${PG}/${endpoint}/compute-instances/nope`), 404, 'NOT_FOUND');

    // min CU is recorded only: changing it alone does not restart the compute.
    const started = 'SELECT pg_postmaster_start_time()::text AS at';
    const before = await query(pier, token, endpoint, ADMIN, started);
    const resized = await lro(pier, token, 'PATCH', `${endpoint}?update_mask=spec.autoscaling_limit_min_cu`, {
      spec: { autoscaling_limit_min_cu: 0.5 },
    });
    assert.equal(
      (resized.response?.status as Record<string, unknown> | undefined)?.autoscaling_limit_min_cu,
      0.5,
    );
    assert.deepEqual(await query(pier, token, endpoint, ADMIN, started), before);

    // allow_missing: deleting a branch that is not there succeeds.
    expectError(await api(pier, token, 'DELETE', `${PG}/projects/shop/branches/never`), 404, 'NOT_FOUND');
    const missing = await lro(pier, token, 'DELETE', 'projects/shop/branches/never?allow_missing=true');
    assert.deepEqual(missing.response, { '@type': 'type.googleapis.com/google.protobuf.Empty' });

    await lro(pier, token, 'DELETE', `${branch}/databases/svc-db`);
    for (const id of ['svc-owner', 'svc-other']) await lro(pier, token, 'DELETE', `${branch}/roles/${id}`);
  });

  test('a read-only endpoint is a hot standby: it reads the branch, refuses writes (25006), and goes with its delete', async () => {
    const readOnly = 'projects/shop/branches/production/endpoints/reader';
    const before = instanceDirs();
    const done = await lro(
      pier,
      token,
      'POST',
      'projects/shop/branches/production/endpoints?endpoint_id=reader',
      {
        spec: {
          endpoint_type: 'ENDPOINT_TYPE_READ_ONLY',
          autoscaling_limit_min_cu: 0.5,
          autoscaling_limit_max_cu: 1,
        },
      },
    );
    const status = done.response?.status as Record<string, unknown>;
    assert.equal(status.endpoint_type, 'ENDPOINT_TYPE_READ_ONLY');
    assert.equal(status.current_state, 'ACTIVE');
    const hosts = status.hosts as { host: string; read_only_host: string };
    const { body: primary } = await api(
      pier,
      token,
      'GET',
      `${PG}/projects/shop/branches/production/endpoints/primary`,
    );
    assert.notEqual(
      hosts.read_only_host,
      ((primary.status as Record<string, unknown>).hosts as { host: string }).host,
    );
    const standbyUid = instanceDirs().filter((uid) => !before.includes(uid))[0];
    await query(
      pier,
      token,
      'projects/shop/branches/production/endpoints/primary',
      ADMIN,
      'INSERT INTO orders VALUES (2000)',
    );
    await eventually(
      async () => {
        const rows = await query(
          pier,
          token,
          readOnly,
          ADMIN,
          'SELECT count(*)::int AS n FROM orders WHERE id = 2000',
        );
        return rows[0].n === 1 ? true : undefined;
      },
      10_000,
      'the standby replays the write',
    );
    await assert.rejects(
      query(pier, token, readOnly, ADMIN, 'INSERT INTO orders VALUES (2001)'),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, '25006');
        return true;
      },
    );
    await lro(pier, token, 'DELETE', 'projects/shop/branches/production/endpoints/reader');
    await eventually(
      async () => (existsSync(join(pier.dataDir, 'instances', standbyUid)) ? undefined : true),
      20_000,
      'the standby removed',
    );
    expectError(await api(pier, token, 'GET', `${PG}/${readOnly}`), 404, 'NOT_FOUND');
  });

  test('credentials: ttl bounds, an unknown endpoint', async () => {
    const endpoint = 'projects/shop/branches/production/endpoints/primary';
    const ok = await api(pier, token, 'POST', `${PG}/credentials`, { endpoint, ttl: '900s' });
    assert.equal(ok.status, 200);
    const expires = new Date(String(ok.body.expire_time)).getTime() - Date.now();
    assert.ok(expires > 800_000 && expires <= 900_000, `expires in ${expires} ms`);
    expectError(
      await api(pier, token, 'POST', `${PG}/credentials`, { endpoint, ttl: '10s' }),
      400,
      'INVALID_PARAMETER_VALUE',
      /between 300s and 3600s/,
    );
    expectError(
      await api(pier, token, 'POST', `${PG}/credentials`, {}),
      400,
      'INVALID_PARAMETER_VALUE',
      /endpoint' is required/,
    );
    expectError(
      await api(pier, token, 'POST', `${PG}/credentials`, {
        endpoint: 'projects/shop/branches/production/endpoints/nope',
      }),
      404,
      'NOT_FOUND',
    );
  });

  test('soft delete hides a project and stops its computes; undelete brings it back with its data; purge removes it', async () => {
    await lro(pier, token, 'DELETE', 'projects/shop');
    expectError(await api(pier, token, 'GET', `${PG}/projects/shop`), 404, 'NOT_FOUND');
    const { body: listed } = await api(pier, token, 'GET', `${PG}/projects?show_deleted=true`);
    const [deleted] = listed.projects as Record<string, string>[];
    assert.ok(deleted.delete_time && deleted.purge_time);
    assert.equal(
      new Date(deleted.purge_time).getTime() - new Date(deleted.delete_time).getTime(),
      7 * 86_400_000,
    );
    assert.deepEqual((await api(pier, token, 'GET', `${PG}/projects`)).body.projects, []);
    await lro(pier, token, 'POST', 'projects/shop/undelete', {});
    const rows = await query(
      pier,
      token,
      'projects/shop/branches/production/endpoints/primary',
      ADMIN,
      'SELECT count(*)::int AS n FROM orders',
    );
    assert.equal(rows[0].n, 94);
    const purged = await lro(pier, token, 'DELETE', 'projects/shop?purge=true');
    assert.deepEqual(purged.response, { '@type': 'type.googleapis.com/google.protobuf.Empty' });
    assert.deepEqual((await api(pier, token, 'GET', `${PG}/projects?show_deleted=true`)).body.projects, []);
  });
});
