import pg from 'pg';
import { reservedNameReason } from '../auth/reserved-names.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller, permissionOn } from '../instances/permissions.js';
import { reportedState } from '../instances/state.js';
import type { InstanceRow } from '../instances/store.js';
import { instanceConnection } from '../nodes/service.js';
import {
  ATTRIBUTES,
  type Attributes,
  deleteRoleRecord,
  IDENTITY_TYPES,
  type IdentityType,
  type PgRole,
  type RoleRecord,
  readPgRoles,
  roleRecords,
  saveRoleRecord,
} from './roles-store.js';

/** A role as a service returns it: what Postgres says, and what Pier recorded when it made it. */
export interface RoleResult {
  instance: InstanceRow;
  role: PgRole;
  record: RoleRecord | undefined;
}

/** An expired password: identity roles' own Postgres passwords never log in (see createRole). */
const IDENTITY_PASSWORD_NEVER_VALID = "VALID UNTIL '-infinity'";

/** Runs `work` as the instance's superuser over its private socket. */
async function withInstance<T>(
  ctx: ControlContext,
  instance: InstanceRow,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const state = reportedState(instance);
  if (state !== 'AVAILABLE') {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instance.name}' is ${state}; roles can be changed only while it is AVAILABLE.${state === 'STOPPED' ? ` Start it with: pier database start-database-instance ${instance.name}` : ''}`,
    );
  }
  const client = new pg.Client(await instanceConnection(ctx, instance, 'postgres'));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function parseRole(input: unknown) {
  const body = asObject(input, 'The database instance role');
  const name = optionalString(body, 'name');
  if (!name)
    throw invalidParameter(
      `Field 'name' is required: the Postgres role name (a user name, e.g. "jane@example.com").`,
    );
  if (Buffer.byteLength(name) > 63)
    throw invalidParameter(`Role name '${name}' is longer than Postgres' 63-byte limit.`);
  const reserved = reservedNameReason(name);
  if (reserved) throw invalidParameter(`Role name '${name}' is reserved: ${reserved}. Choose another name.`);
  const identityType = optionalString(body, 'identity_type') as IdentityType | undefined;
  if (identityType !== undefined && !IDENTITY_TYPES.includes(identityType)) {
    throw invalidParameter(
      `identity_type '${identityType}' is not valid; use one of ${IDENTITY_TYPES.join(', ')}.`,
    );
  }
  const membership = optionalString(body, 'membership_role');
  if (membership !== undefined && membership !== 'DATABRICKS_SUPERUSER') {
    throw invalidParameter(
      `membership_role '${membership}' is not valid; the only one is DATABRICKS_SUPERUSER.`,
    );
  }
  const attributes: Attributes = {};
  if (body.attributes !== undefined) {
    const given = asObject(body.attributes, 'attributes');
    for (const key of Object.keys(given)) {
      if (!ATTRIBUTES.includes(key as (typeof ATTRIBUTES)[number])) {
        throw invalidParameter(`Role attribute '${key}' is not supported; use ${ATTRIBUTES.join(', ')}.`);
      }
      attributes[key as keyof Attributes] = optionalBoolean(given, key);
    }
  }
  return { name, identityType, membership, attributes };
}

/**
 * What CAN_USE allows, as Databricks documents it: adding a role for one's
 * own identity. Anything that raises privileges — membership in
 * databricks_superuser, CREATEDB / CREATEROLE / BYPASSRLS, a GROUP or a
 * password-login (PG_ONLY) role, a role for someone else — needs CAN_MANAGE.
 */
function requireOwnPlainRole(
  caller: IdentityRow,
  instanceName: string,
  role: ReturnType<typeof parseRole> & { identityType: IdentityType },
): void {
  const refuse = (what: string) =>
    new PierError(
      'PERMISSION_DENIED',
      `With CAN_USE on '${instanceName}' you can create only a plain login role for yourself (name "${caller.user_name}", identity_type ${caller.kind}); asking for ${what} needs CAN_MANAGE. Ask a user with CAN_MANAGE on the instance.`,
    );
  if (role.name !== caller.user_name) throw refuse(`a role named '${role.name}'`);
  if (role.identityType !== caller.kind) throw refuse(`identity_type ${role.identityType}`);
  if (role.membership) throw refuse(`membership_role ${role.membership}`);
  const raised = ATTRIBUTES.filter((attribute) => role.attributes[attribute]);
  if (raised.length > 0) throw refuse(`${raised.join(', ').toUpperCase()}`);
}

/**
 * Creates a Postgres role in the instance and records how it was asked for.
 * CAN_USE holders may create only their own plain login role; CAN_MANAGE any.
 */
export async function createRole(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
  input: unknown,
): Promise<RoleResult> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  const parsed = parseRole(input);
  // Omitted: the kind of identity the name belongs to when it is the caller's own, else USER.
  const role = {
    ...parsed,
    identityType: parsed.identityType ?? (parsed.name === caller.user_name ? caller.kind : 'USER'),
  };
  if ((await permissionOn(ctx.store, caller, instance)) !== 'CAN_MANAGE') {
    requireOwnPlainRole(caller, instanceName, role);
  }
  if (role.identityType === 'PG_ONLY' && !instance.spec.enable_pg_native_login) {
    throw invalidParameter(
      `PG_ONLY roles log in with a Postgres password, which is off on '${instanceName}'. Turn it on with: pier database update-database-instance ${instanceName} enable_pg_native_login --enable-pg-native-login`,
    );
  }
  return withInstance(ctx, instance, async (client) => {
    if ((await readPgRoles(client, role.name)).length > 0) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Role '${role.name}' already exists in instance '${instanceName}'.`,
      );
    }
    const quoted = client.escapeIdentifier(role.name);
    const flags = [
      role.identityType === 'GROUP' ? 'NOLOGIN' : 'LOGIN',
      role.attributes.createdb ? 'CREATEDB' : '',
      role.attributes.createrole ? 'CREATEROLE' : '',
      role.attributes.bypassrls ? 'BYPASSRLS' : '',
      // A workspace identity logs in only with database credentials: any role may set its own
      // password, but one that has expired never validates, so losing CAN_USE or the identity
      // ends access on instances with native login too. Only CREATEROLE can change it.
      role.identityType === 'PG_ONLY' ? '' : IDENTITY_PASSWORD_NEVER_VALID,
    ].filter(Boolean);
    await client.query('BEGIN');
    await client.query(`CREATE ROLE ${quoted} ${flags.join(' ')}`);
    if (role.membership) {
      await client.query(`GRANT databricks_superuser TO ${quoted}`);
      // Role attributes are never inherited through membership: give them directly too.
      await client.query(`ALTER ROLE ${quoted} CREATEDB CREATEROLE BYPASSRLS`);
    }
    // Like roles made in SQL by a databricks_superuser member: its members administer it (e.g. set a PG_ONLY password).
    if (!role.membership) {
      await client.query(`GRANT ${quoted} TO databricks_superuser WITH ADMIN TRUE, INHERIT FALSE, SET FALSE`);
    }
    const record: RoleRecord = {
      identity_type: role.identityType,
      membership_role: role.membership ?? null,
      attributes: role.attributes,
    };
    await saveRoleRecord(ctx.store, instance.uid, role.name, record, caller.user_name);
    await client.query('COMMIT');
    const [created] = await readPgRoles(client, role.name);
    return { instance, role: created, record };
  });
}

export async function getRole(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
  name: string,
): Promise<RoleResult> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  const records = await roleRecords(ctx.store, instance.uid);
  return withInstance(ctx, instance, async (client) => {
    const [role] = await readPgRoles(client, name);
    if (!role) throw notFound(`Role '${name}' does not exist in instance '${instanceName}'.`);
    return { instance, role, record: records.get(name) };
  });
}

export async function listRoles(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
): Promise<RoleResult[]> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  const records = await roleRecords(ctx.store, instance.uid);
  return withInstance(ctx, instance, async (client) =>
    (await readPgRoles(client)).map((role) => ({ instance, role, record: records.get(role.rolname) })),
  );
}

/**
 * The role `reassign_owned_to` names, checked so that handing objects over
 * can never turn into dropping them: REASSIGN OWNED to the role itself is a
 * no-op, after which DROP OWNED would drop everything it owns. Any spelling
 * of databricks_superuser means that role; other reserved names, unknown
 * roles and the role being deleted are refused.
 */
async function reassignTarget(
  client: pg.Client,
  instanceName: string,
  role: string,
  target: string,
): Promise<string> {
  const what = `Pass reassign_owned_to=databricks_superuser, or another existing role of '${instanceName}'.`;
  if (target.toLowerCase() === 'databricks_superuser') return 'databricks_superuser';
  if (target === role) {
    throw invalidParameter(
      `reassign_owned_to names the role being deleted ('${role}'): its objects would be dropped, not handed over. ${what}`,
    );
  }
  const reserved = reservedNameReason(target);
  if (reserved) throw invalidParameter(`reassign_owned_to cannot be '${target}': ${reserved}. ${what}`);
  if ((await readPgRoles(client, target)).length === 0) {
    throw invalidParameter(
      `reassign_owned_to names '${target}', which is not a role in '${instanceName}' (role names are case-sensitive). ${what}`,
    );
  }
  return target;
}

/**
 * In one database, in one transaction: hand everything `role` owns to
 * `target`, check nothing is left, then revoke its privileges (DROP OWNED,
 * which by then has no object to drop).
 */
async function handOverOwned(
  ctx: ControlContext,
  instance: InstanceRow,
  database: string,
  role: string,
  target: string,
): Promise<void> {
  const client = new pg.Client(await instanceConnection(ctx, instance, database));
  await client.connect();
  try {
    const quoted = client.escapeIdentifier(role);
    await client.query('BEGIN');
    await client.query(`REASSIGN OWNED BY ${quoted} TO ${client.escapeIdentifier(target)}`);
    const { rows } = await client.query<{ owned: number }>(
      `SELECT count(*)::int AS owned FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
        WHERE r.rolname = $1 AND d.deptype = 'o'
          AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [role],
    );
    if (rows[0].owned > 0) {
      await client.query('ROLLBACK');
      throw new PierError(
        'INVALID_STATE',
        `Role '${role}' still owns ${rows[0].owned} object(s) in database '${database}' of '${instance.name}' that could not be handed to '${target}'; nothing was dropped. Change their owner in SQL, then delete the role again.`,
      );
    }
    await client.query(`DROP OWNED BY ${quoted}`);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** Drops a role; `reassign_owned_to` hands its objects to another role first. Needs CAN_MANAGE. */
export async function deleteRole(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
  name: string,
  query: { allow_missing?: string; reassign_owned_to?: string },
): Promise<void> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_MANAGE');
  await withInstance(ctx, instance, async (client) => {
    if ((await readPgRoles(client, name)).length === 0) {
      if (query.allow_missing === 'true') return;
      throw notFound(`Role '${name}' does not exist in instance '${instanceName}'.`);
    }
    if (query.reassign_owned_to) {
      const target = await reassignTarget(client, instanceName, name, query.reassign_owned_to);
      const databases = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname',
      );
      // The role is shut out first: a session of its own could otherwise create an object
      // between the hand-over and DROP OWNED, which would drop it. Undone if the deletion fails.
      const quoted = client.escapeIdentifier(name);
      const { rows } = await client.query<{ rolcanlogin: boolean }>(
        'SELECT rolcanlogin FROM pg_roles WHERE rolname = $1',
        [name],
      );
      await client.query(`ALTER ROLE ${quoted} NOLOGIN`);
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      try {
        // Ownership is per database: hand over in each.
        for (const { datname } of databases.rows) await handOverOwned(ctx, instance, datname, name, target);
      } catch (error) {
        // The deletion's own error is the one to report; a role left without LOGIN is logged and counted.
        if (rows[0]?.rolcanlogin)
          await client
            .query(`ALTER ROLE ${quoted} LOGIN`)
            .catch((cause) => noteFailure('roles.restore-login', cause));
        throw error;
      }
    }
    try {
      await client.query(`DROP ROLE ${client.escapeIdentifier(name)}`);
    } catch (error) {
      if ((error as { code?: string }).code === '2BP01') {
        throw new PierError(
          'INVALID_STATE',
          `Role '${name}' still owns objects or holds privileges in '${instanceName}'. Pass reassign_owned_to (e.g. databricks_superuser) to hand them over first.`,
        );
      }
      throw error;
    }
  });
  await deleteRoleRecord(ctx.store, instance.uid, name);
}
