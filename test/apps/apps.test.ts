import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { findMarkedProcesses, freePort, processStart } from '../../src/apps/process.js';
import { availableInstance, grantInstance, instanceSuperuser, userWithToken } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { exampleTests } from './examples.js';

const FIXTURES = fileURLToPath(new URL('../../../test/apps/fixtures/', import.meta.url));
const PROBE = join(FIXTURES, 'probe');
/** Deployed apps run as nobody (Pier runs as root here): the tests deploy copies under /tmp, which it can enter. */
let SERVER: string;

/** What the deployed server answers: its pid. */
async function answer(url: string): Promise<{ pid: number; app: string } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return (await response.json()) as { pid: number; app: string };
  } catch {
    return undefined;
  }
}

/** The fields of the SDK's App the tests read. */
interface AppJson {
  url?: string;
  service_principal_client_id: string;
  resources: unknown;
  app_status: { state: string; message: string };
  compute_status: { state: string };
  active_deployment: { status: { state: string } };
}

function uidOf(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((text) => Number(/^Uid:\s+(\d+)/m.exec(text)?.[1]));
}

describe('apps', () => {
  let pier: PierProcess;
  let ports: string[];
  let instanceUid: string;
  let scratch: string;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runPier([...args, '--data-dir', pier.dataDir], env);
  const getApp = async (name: string) =>
    (await api(pier, pier.adminToken, 'GET', `/api/2.0/apps/${name}`)).body as unknown as AppJson;
  const restart = async (dataDir: string) => {
    pier = await startPier({ dataDir, args: ['--api-port', ports[0], '--proxy-port', ports[1]] });
  };

  before(async () => {
    ports = [String(await freePort()), String(await freePort())];
    pier = await startPier({ args: ['--api-port', ports[0], '--proxy-port', ports[1]] });
    scratch = await mkdtemp(join(tmpdir(), 'pier-apps-'));
    await chmod(scratch, 0o755);
    SERVER = join(scratch, 'server');
    await cp(join(FIXTURES, 'server'), SERVER, { recursive: true });
    instanceUid = await availableInstance(pier, pier.adminToken, 'order-mgmt-db');
    const stopped = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
      name: 'stopped-db',
      capacity: 'CU_1',
      stopped: true,
    });
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
  });

  after(async () => {
    await removePier(pier);
    await rm(scratch, { recursive: true, force: true });
  });

  // First, while this Pier runs undisturbed (the tests below kill and restart it).
  exampleTests(() => ({ pier, uid: instanceUid }));

  test('a bad app.yaml is refused with its line and what to write; nothing is created', async () => {
    const dir = join(scratch, 'bad');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'app.yaml'),
      "command: ['node', 'server.js']\nenv:\n  - name: GREETING\n    valu: hi\n",
    );
    const deployed = await cli(['apps', 'deploy', dir, '--name', 'bad-yaml']);
    assert.equal(deployed.code, 1);
    assert.match(
      deployed.stderr,
      /app\.yaml:4:5: Unknown field 'valu' in env entry GREETING; use value or valueFrom/,
    );
    assert.equal((await api(pier, pier.adminToken, 'GET', '/api/2.0/apps/bad-yaml')).status, 404);

    // Names follow Databricks' rule.
    for (const name of ['Feature_Flags', 'a', '-flags', 'x'.repeat(31)]) {
      const refused = await api(pier, pier.adminToken, 'POST', '/api/2.0/apps', { name });
      assert.equal(refused.status, 400, name);
      assert.match(String(refused.body.message), /2 to 30 lowercase letters, digits and '-'/);
    }

    // The API says the same, and makes no deployment.
    await api(pier, pier.adminToken, 'POST', '/api/2.0/apps', { name: 'bad-yaml-api' });
    const refused = await api(pier, pier.adminToken, 'POST', '/api/2.0/apps/bad-yaml-api/deployments', {
      source_code_path: dir,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(refused.body.message), /^app\.yaml:4:5: /);
    const listed = await api(pier, pier.adminToken, 'GET', '/api/2.0/apps/bad-yaml-api/deployments');
    assert.deepEqual(listed.body.app_deployments, []);

    await writeFile(join(dir, 'app.yaml'), 'command: node server.js\n');
    const shell = await cli(['apps', 'deploy', dir, '--name', 'bad-yaml']);
    assert.match(
      shell.stderr,
      /app\.yaml:1:1: command must be a list .* write command: \["node","server.js"\]/,
    );
  });

  test('pier apps run: the official SDK (oauth-m2m) and pg work from the injected environment alone', async () => {
    const ran = await cli(['apps', 'run', PROBE, '--resource', 'db=order-mgmt-db']);
    assert.equal(ran.code, 0, ran.stderr);
    const line = ran.stdout.split('\n').find((l) => l.startsWith('PROBE '));
    assert.ok(line, ran.stdout);
    const probe = JSON.parse(line.slice('PROBE '.length));
    const clientId = probe.env.DATABRICKS_CLIENT_ID;
    assert.equal(probe.authType, 'oauth-m2m');
    assert.equal(probe.me, clientId);
    assert.deepEqual(probe.sql, { user: clientId, database: 'databricks_postgres' });
    assert.equal(probe.env.DATABRICKS_HOST, pier.apiUrl);
    assert.equal(probe.env.DATABRICKS_APP_NAME, 'probe');
    assert.match(probe.env.DATABRICKS_WORKSPACE_ID, /^\d{15}$/);
    assert.match(probe.env.DATABRICKS_APP_PORT, /^\d+$/);
    assert.equal(probe.env.DATABRICKS_APP_URL, `http://127.0.0.1:${probe.env.DATABRICKS_APP_PORT}`);
    assert.equal(probe.env.PGUSER, clientId);
    assert.equal(probe.env.PGPORT, ports[1]);
    assert.equal(probe.env.PGDATABASE, 'databricks_postgres');
    assert.equal(probe.env.PGSSLMODE, 'require');
    assert.equal(probe.env.PGAPPNAME, 'probe');
    assert.equal(probe.env.PGSSLROOTCERT, pier.caCertPath);
    assert.equal(probe.env.PROBE_DB_HOST, probe.env.PGHOST); // valueFrom a database resource: its host
    assert.equal(probe.env.PROBE_GREETING, 'hello');

    const app = await getApp('probe');
    assert.equal(app.service_principal_client_id, clientId);
    assert.deepEqual(app.resources, [
      {
        name: 'db',
        database: {
          instance_name: 'order-mgmt-db',
          database_name: 'databricks_postgres',
          permission: 'CAN_CONNECT_AND_CREATE',
        },
      },
    ]);

    // Its role has exactly CONNECT and CREATE on the database, and nothing more.
    const superuser = await instanceSuperuser(pier, instanceUid);
    try {
      const granted = await superuser.query(
        `SELECT a.privilege_type FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee
          WHERE d.datname = 'databricks_postgres' AND r.rolname = $1 ORDER BY 1`,
        [clientId],
      );
      assert.deepEqual(
        granted.rows.map((row) => row.privilege_type),
        ['CONNECT', 'CREATE'],
      );
      const role = await superuser.query(
        `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,
                pg_has_role(oid, 'databricks_superuser', 'MEMBER') AS superuser_member
           FROM pg_roles WHERE rolname = $1`,
        [clientId],
      );
      assert.deepEqual(role.rows, [
        {
          rolcanlogin: true,
          rolsuper: false,
          rolcreatedb: false,
          rolcreaterole: false,
          rolbypassrls: false,
          superuser_member: false,
        },
      ]);
      const elsewhere = await superuser.query(
        `SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee
          WHERE r.rolname = $1 AND d.datname <> 'databricks_postgres'`,
        [clientId],
      );
      assert.deepEqual(elsewhere.rows, []);
    } finally {
      await superuser.end();
    }
  });

  test('a stopped instance, a crashing command or a missing permission fails the deployment with the fix', async () => {
    const stopped = await cli([
      'apps',
      'deploy',
      SERVER,
      '--name',
      'on-stopped',
      '--resource',
      'db=stopped-db',
    ]);
    assert.equal(stopped.code, 1);
    assert.match(
      stopped.stderr,
      /Database instance 'stopped-db' .* is STOPPED.* Start it with: pier database start-database-instance stopped-db, then deploy again/,
    );
    const deployments = await api(pier, pier.adminToken, 'GET', '/api/2.0/apps/on-stopped/deployments');
    const [failed] = deployments.body.app_deployments as { status: { state: string; message: string } }[];
    assert.equal(failed.status.state, 'FAILED');
    assert.match(failed.status.message, /start-database-instance stopped-db/);
    assert.equal((await getApp('on-stopped')).app_status.state, 'UNAVAILABLE');

    // A deployment whose command exits before it listens is FAILED with its last output.
    const crashing = join(scratch, 'crashing');
    await mkdir(crashing, { recursive: true });
    await writeFile(
      join(crashing, 'app.yaml'),
      `command: ['node', '-e', "console.error('boom: BILLING_URL is not set'); process.exit(3)"]\n`,
    );
    const crashed = await cli(['apps', 'deploy', crashing, '--name', 'crashing']);
    assert.equal(crashed.code, 1);
    assert.match(
      crashed.stderr,
      /Deployment of app crashing failed: The app exited with code 3 before it listened on its port\. Last output:\nboom: BILLING_URL is not set/,
    );
    const crashedApp = await eventually(async () => {
      const app = await getApp('crashing');
      return app.app_status.state === 'UNAVAILABLE' ? app : undefined;
    });
    assert.match(crashedApp.app_status.message, /^Deployment \w+ failed: The app exited with code 3/);

    // A directory the app's account cannot enter is named, with the fix.
    const hidden = join(scratch, 'hidden');
    await mkdir(join(hidden, 'app'), { recursive: true, mode: 0o700 });
    await chmod(hidden, 0o700);
    await writeFile(join(hidden, 'app', 'app.yaml'), "command: ['node', 'server.js']\n");
    const unreachable = await cli(['apps', 'deploy', join(hidden, 'app'), '--name', 'hidden']);
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      new RegExp(
        `runs as nobody \\(root owns its directory\\), which cannot enter ${hidden}\\. .* chmod o\\+x ${hidden}`,
      ),
    );

    const jane = await userWithToken(pier, 'jane@example.com');
    await grantInstance(pier, pier.adminToken, 'order-mgmt-db', 'jane@example.com', 'CAN_USE');
    const denied = await cli(
      ['apps', 'deploy', SERVER, '--name', 'janes', '--resource', 'db=order-mgmt-db'],
      {
        DATABRICKS_HOST: pier.apiUrl,
        DATABRICKS_TOKEN: jane.token,
      },
    );
    assert.equal(denied.code, 1);
    assert.match(
      denied.stderr,
      /needs CAN_MANAGE on it; jane@example.com has CAN_USE\. Ask a user with CAN_MANAGE on 'order-mgmt-db'/,
    );
  });

  test('pier up supervises a deployed app: restarted after kill -9, adopted after Pier is killed, back after a restart', async () => {
    const deployed = await cli(['apps', 'deploy', SERVER, '--name', 'server']);
    assert.equal(deployed.code, 0, deployed.stderr);
    const app = await getApp('server');
    assert.equal(app.app_status.state, 'RUNNING');
    assert.equal(app.compute_status.state, 'ACTIVE');
    assert.equal(app.active_deployment.status.state, 'SUCCEEDED');
    const url = app.url as string;
    assert.match(deployed.stdout, new RegExp(`SUCCEEDED, ${url}`));
    const first = await answer(url);
    assert.equal(first?.app, 'server');
    // Pier runs as root here, the directory is root's: the app runs as nobody, never as root or pier.
    assert.equal(await uidOf(first.pid), 65534);

    process.kill(first.pid, 'SIGKILL');
    const second = await eventually(
      async () => {
        const now = await answer(url);
        return now && now.pid !== first.pid ? now : undefined;
      },
      20_000,
      'the app restarted on its port',
    );
    const logs = await cli(['apps', 'logs', 'server']);
    assert.match(logs.stdout, new RegExp(`process ${first.pid} was killed by SIGKILL`));
    assert.match(logs.stdout, new RegExp(`server ${second.pid} listening on`));

    // kill -9 of Pier: the app keeps serving, and the next Pier adopts that very process.
    const dataDir = pier.dataDir;
    const nodeId = (await readFile(join(dataDir, 'node-id'), 'utf8')).trim();
    await pier.kill();
    assert.equal((await answer(url))?.pid, second.pid);
    await restart(dataDir);
    await eventually(async () =>
      (await getApp('server')).app_status?.state === 'RUNNING' ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few supervisor ticks
    assert.equal((await answer(url))?.pid, second.pid);
    const marked = await findMarkedProcesses(`${nodeId}/server/`);
    assert.deepEqual(
      marked.map((p) => p.pid),
      [second.pid],
    );

    // A clean stop ends the app; the next start brings it back.
    await pier.stop();
    assert.equal(existsSync(`/proc/${second.pid}`), false);
    await restart(dataDir);
    const third = await eventually(async () => answer(url), 30_000, 'the app back after the restart');
    assert.notEqual(third.pid, second.pid);

    // kill -9 again, and Pier comes back on other ports: the old process's environment is stale,
    // so it is replaced, not adopted — and there is still exactly one.
    await pier.kill();
    ports = [String(await freePort()), String(await freePort())];
    await restart(dataDir);
    const fourth = await eventually(
      async () => {
        const now = await answer(url);
        return now && now.pid !== third.pid ? now : undefined;
      },
      30_000,
      'the app replaced',
    );
    assert.equal(await processStart(third.pid), undefined); // gone (at most a zombie left to init)
    assert.deepEqual(
      (await findMarkedProcesses(`${nodeId}/server/`)).map((p) => p.pid),
      [fourth.pid],
    );
  });

  test('the official SDK: create and wait, deploy and wait, list, stop and wait, delete', async () => {
    const w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
    const created = await (
      await w.apps.create({ app: { name: 'sdk-app', description: 'made by the SDK' } })
    ).wait();
    assert.equal(created.compute_status?.state, 'ACTIVE');
    assert.equal(created.app_status?.state, 'UNAVAILABLE');
    assert.match(created.service_principal_client_id ?? '', /^[0-9a-f-]{36}$/);
    const deployment = await (
      await w.apps.deploy({ app_name: 'sdk-app', app_deployment: { source_code_path: SERVER } })
    ).wait();
    assert.equal(deployment.status?.state, 'SUCCEEDED');
    const app = await w.apps.get({ name: 'sdk-app' });
    assert.equal(app.app_status?.state, 'RUNNING');
    assert.equal(app.active_deployment?.deployment_id, deployment.deployment_id);
    assert.equal((await answer(app.url as string))?.app, 'sdk-app');
    const names: string[] = [];
    for await (const listed of w.apps.list({ page_size: 1 })) names.push(listed.name);
    assert.ok(names.includes('sdk-app') && names.includes('server'), names.join(','));
    const deployments: string[] = [];
    for await (const listed of w.apps.listDeployments({ app_name: 'sdk-app' }))
      deployments.push(listed.deployment_id ?? '');
    assert.deepEqual(deployments, [deployment.deployment_id]);
    const stopped = await (await w.apps.stop({ name: 'sdk-app' })).wait();
    assert.equal(stopped.compute_status?.state, 'STOPPED');
    assert.equal(await answer(app.url as string), undefined);
    await w.apps.delete({ name: 'sdk-app' });
    assert.equal((await api(pier, pier.adminToken, 'GET', '/api/2.0/apps/sdk-app')).status, 404);
  });

  test('stop, start and delete', async () => {
    const stopped = await cli(['apps', 'stop', 'server', '--json']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(JSON.parse(stopped.stdout).compute_status.state, 'STOPPED');
    const app = await getApp('server');
    assert.equal(app.app_status.state, 'UNAVAILABLE');
    assert.equal(app.url, undefined);

    const started = await cli(['apps', 'start', 'server']);
    assert.equal(started.code, 0, started.stderr);
    const url = await eventually(async () => (await getApp('server')).url);
    const running = await eventually(async () => answer(url), 20_000, 'the app started again');

    const clientId = (await getApp('server')).service_principal_client_id;
    const deleted = await cli(['apps', 'delete', 'server']);
    assert.equal(deleted.code, 0, deleted.stderr);
    await eventually(
      async () => (existsSync(`/proc/${running.pid}`) ? undefined : true),
      10_000,
      'the process ended',
    );
    assert.equal((await api(pier, pier.adminToken, 'GET', '/api/2.0/apps/server')).status, 404);
    const principals = await api(
      pier,
      pier.adminToken,
      'GET',
      `/api/2.0/preview/scim/v2/ServicePrincipals?filter=${encodeURIComponent(`applicationId eq "${clientId}"`)}`,
    );
    assert.equal(JSON.stringify(principals.body).includes(clientId), false);
    const list = await cli(['apps', 'list', '--json']);
    assert.equal(
      (JSON.parse(list.stdout) as { name: string }[]).some((a) => a.name === 'server'),
      false,
    );

    // An app bound to a database: its role goes too, what it owned passes to databricks_superuser.
    const probe = (await getApp('probe')).service_principal_client_id;
    const superuser = await instanceSuperuser(pier, instanceUid, 'databricks_postgres');
    try {
      await superuser.query(`CREATE SCHEMA probe_data AUTHORIZATION "${probe}"`);
      assert.equal((await cli(['apps', 'delete', 'probe'])).code, 0);
      assert.deepEqual(
        (await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [probe])).rows,
        [],
      );
      const owner = await superuser.query(
        "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'probe_data'",
      );
      assert.deepEqual(owner.rows, [{ owner: 'databricks_superuser' }]);
    } finally {
      await superuser.end();
    }
  });
});
