import pg from 'pg';
import { createRole, deleteRole } from '../access/roles.js';
import type { ControlContext } from '../control/context.js';
import { isPierError, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { changeInstancePermissions, permissionOn } from '../instances/permissions.js';
import { findInstancePermission } from '../instances/permissions-store.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByName, type InstanceRow } from '../instances/store.js';
import { instanceDnsName } from '../instances/view.js';
import { instanceConnection } from '../nodes/service.js';
import type { DatabaseResource } from './resources.js';
import type { AppRow } from './store.js';

/** A database resource bound to its app: the instance, and the host the app reaches it at. */
export interface BoundDatabase {
  resource: DatabaseResource;
  instance: InstanceRow;
  host: string;
}

/**
 * Binds each database resource to the app, as Databricks Apps do: the
 * caller must hold CAN_MANAGE on the instance, which must be AVAILABLE and
 * hold the database; the app's service principal gets CAN_USE on the
 * instance and a Postgres role named by its client id (reused if it
 * exists) with exactly CONNECT and CREATE on the database. Idempotent.
 * Anything in the way is a PierError that says how to fix it.
 */
export async function bindDatabases(
  ctx: ControlContext,
  caller: IdentityRow,
  app: AppRow,
  resources: DatabaseResource[],
): Promise<BoundDatabase[]> {
  const bound: BoundDatabase[] = [];
  for (const resource of resources) bound.push(await bindDatabase(ctx, caller, app, resource));
  return bound;
}

async function bindDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  app: AppRow,
  resource: DatabaseResource,
): Promise<BoundDatabase> {
  const { instance_name: instanceName, database_name: database } = resource.database;
  const instance = await findInstanceByName(ctx.store, instanceName);
  const level = instance ? await permissionOn(ctx.store, caller, instance) : undefined;
  if (!instance || !level) {
    throw new PierError(
      'RESOURCE_DOES_NOT_EXIST',
      `Resource '${resource.name}' of app '${app.name}' names database instance '${instanceName}', which does not exist. Create it with: pier database create-database-instance ${instanceName} --capacity CU_1, or name another in instance_name.`,
    );
  }
  if (level !== 'CAN_MANAGE') {
    throw new PierError(
      'PERMISSION_DENIED',
      `Binding database instance '${instanceName}' to app '${app.name}' needs CAN_MANAGE on it; ${caller.user_name} has ${level}. Ask a user with CAN_MANAGE on '${instanceName}' (or an admin) to grant it: PATCH /api/2.0/permissions/database-instances/${instanceName} with {"access_control_list": [{"user_name": "${caller.user_name}", "permission_level": "CAN_MANAGE"}]}.`,
    );
  }
  const state = reportedState(instance);
  if (state !== 'AVAILABLE') {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instanceName}' (resource '${resource.name}' of app '${app.name}') is ${state}, so the app could not connect to it. ${state === 'STOPPED' ? `Start it with: pier database start-database-instance ${instanceName}, then deploy again.` : 'Wait until it is AVAILABLE (pier database get-database-instance), then deploy again.'}`,
    );
  }
  await requireDatabase(ctx, instance, database, resource);
  try {
    await createRole(ctx, caller, instanceName, { name: app.client_id, identity_type: 'SERVICE_PRINCIPAL' });
  } catch (error) {
    if (!(isPierError(error) && error.kind === 'RESOURCE_ALREADY_EXISTS')) throw error;
  }
  await grantConnectAndCreate(ctx, instance, database, app.client_id);
  if (!(await findInstancePermission(ctx.store, instance.uid, app.client_id))) {
    await changeInstancePermissions(
      ctx,
      caller,
      instanceName,
      { access_control_list: [{ service_principal_name: app.client_id, permission_level: 'CAN_USE' }] },
      'add',
    );
  }
  return { resource, instance, host: instanceDnsName(instance, ctx.config) };
}

async function withSuperuser<T>(
  ctx: ControlContext,
  instance: InstanceRow,
  database: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(await instanceConnection(ctx, instance, database));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function requireDatabase(
  ctx: ControlContext,
  instance: InstanceRow,
  database: string,
  resource: DatabaseResource,
): Promise<void> {
  const exists = await withSuperuser(ctx, instance, 'postgres', async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1 AND datallowconn', [
      database,
    ]);
    return (rowCount ?? 0) > 0;
  });
  if (!exists) {
    throw new PierError(
      'RESOURCE_DOES_NOT_EXIST',
      `Database '${database}' does not exist in instance '${instance.name}' (resource '${resource.name}'). Create it (CREATE DATABASE "${database}") or set database_name to an existing one, such as databricks_postgres.`,
    );
  }
}

/** Exactly CONNECT and CREATE on the database: whatever else the role was granted there goes. */
async function grantConnectAndCreate(
  ctx: ControlContext,
  instance: InstanceRow,
  database: string,
  role: string,
): Promise<void> {
  await withSuperuser(ctx, instance, 'postgres', async (client) => {
    const db = client.escapeIdentifier(database);
    const grantee = client.escapeIdentifier(role);
    await client.query('BEGIN');
    await client.query(`REVOKE ALL ON DATABASE ${db} FROM ${grantee}`);
    await client.query(`GRANT CONNECT, CREATE ON DATABASE ${db} TO ${grantee}`);
    await client.query('COMMIT');
  });
}

/**
 * Removes the app's Postgres role from each bound instance, handing what it
 * owns to databricks_superuser (the data stays). Instances that are gone or
 * not AVAILABLE are skipped: the role stays there and can be deleted later
 * with the roles API.
 */
export async function unbindDatabases(ctx: ControlContext, caller: IdentityRow, app: AppRow): Promise<void> {
  const names = new Set(app.resources.map((resource) => resource.database.instance_name));
  for (const name of names) {
    const instance = await findInstanceByName(ctx.store, name);
    if (!instance || reportedState(instance) !== 'AVAILABLE') continue;
    await deleteRole(ctx, caller, name, app.client_id, {
      allow_missing: 'true',
      reassign_owned_to: 'databricks_superuser',
    });
  }
}
