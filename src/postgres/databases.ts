import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { branchForCaller, startOperation } from './common.js';
import { onBranchServer } from './compute-sql.js';
import { badRequest, invalid, maskPaths, notFound, objectField, optionalId, optionalText } from './fields.js';
import {
  type BranchRow,
  type DatabaseRow,
  deleteDatabaseRow,
  findDatabase,
  findRole,
  insertDatabase,
  listDatabases,
  type OperationRow,
  type RoleRow,
  updateDatabase,
} from './store.js';
import { databaseView } from './view.js';

const DATABASE_PATHS = ['spec.postgres_database', 'spec.role'] as const;

const databaseName = (branch: BranchRow, id: string) =>
  `projects/${branch.project_id}/branches/${branch.branch_id}/databases/${id}`;

/** The owner role of `spec.role` (`projects/p/branches/b/roles/r` or just `r`). */
async function ownerRole(ctx: ControlContext, branch: BranchRow, value: string) {
  const roleId = value.split('/').pop() ?? '';
  const role = await findRole(ctx.store, branch.uid, roleId);
  if (!role)
    throw invalid(
      `database.spec.role: role ${value} does not exist on this branch; create it first (create-role).`,
    );
  return role;
}

export async function createDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  databaseIdParam: string | undefined,
  input: Record<string, unknown>,
  options: { replaceExisting?: boolean } = {},
): Promise<OperationRow> {
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  const spec = objectField(input, 'spec', 'spec');
  const postgresDatabase = optionalText(spec, 'postgres_database', 'database.spec.postgres_database');
  if (!postgresDatabase)
    throw invalid(
      `Field 'database.spec.postgres_database' is required, expected non-default value (not "")!`,
    );
  if (postgresDatabase.length > 63)
    throw invalid('database.spec.postgres_database is longer than 63 characters.');
  const roleRef = optionalText(spec, 'role', 'database.spec.role');
  if (!roleRef) throw invalid(`Field 'database.spec.role' is required, expected non-default value (not "")!`);
  const role = await ownerRole(ctx, branch, roleRef);
  const databaseId =
    optionalId(databaseIdParam, 'database_id') ??
    postgresDatabase
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '');
  // replace_existing: the database of that id takes the body's name and owner.
  const same = options.replaceExisting ? await findDatabase(ctx.store, branch.uid, databaseId) : undefined;
  if (same) return changeDatabase(ctx, caller, branch, same, postgresDatabase, role);
  const existing = await listDatabases(ctx.store, branch.uid);
  if (existing.some((d) => d.database_id === databaseId || d.postgres_database === postgresDatabase)) {
    throw badRequest(`database with that name already exists: ${postgresDatabase}.`);
  }
  await onBranchServer(ctx, branch, 'postgres', async (client) => {
    const name = client.escapeIdentifier(postgresDatabase);
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      postgresDatabase,
    ]);
    if (rowCount) throw badRequest(`database with that name already exists: ${postgresDatabase}.`);
    await client.query(`CREATE DATABASE ${name} OWNER ${client.escapeIdentifier(role.spec.postgres_role)}`);
    await client.query(`GRANT CREATE ON DATABASE ${name} TO databricks_superuser`);
  });
  await insertDatabase(ctx.store, {
    branch_uid: branch.uid,
    database_id: databaseId,
    postgres_database: postgresDatabase,
    role_id: role.role_id,
  });
  const row = (await findDatabase(ctx.store, branch.uid, databaseId)) as DatabaseRow;
  return startOperation(ctx.store, caller, 'Database', databaseName(branch, databaseId), {
    response: databaseView(branch, row),
  });
}

export async function getDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  databaseId: string,
) {
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  const database = await findDatabase(ctx.store, branch.uid, databaseId);
  if (!database) throw notFound(`database id not found: ${databaseName(branch, databaseId)} does not exist.`);
  return { branch, database };
}

export async function listBranchDatabases(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
) {
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  return { branch, databases: await listDatabases(ctx.store, branch.uid) };
}

/** PATCH: rename (`spec.postgres_database`) or change the owner (`spec.role`). */
export async function updateBranchDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  databaseId: string,
  mask: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const paths = maskPaths(mask, input, DATABASE_PATHS);
  const { branch, database } = await getDatabase(ctx, caller, projectId, branchId, databaseId);
  const spec = objectField(input, 'spec', 'spec');
  const rename = paths.includes('spec.postgres_database')
    ? optionalText(spec, 'postgres_database', 'spec.postgres_database')
    : undefined;
  const owner = paths.includes('spec.role')
    ? await ownerRole(ctx, branch, optionalText(spec, 'role', 'spec.role') ?? '')
    : undefined;
  return changeDatabase(ctx, caller, branch, database, rename, owner);
}

/** Renames a database and/or gives it another owner, on the server, then in the store. */
async function changeDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  branch: BranchRow,
  database: DatabaseRow,
  rename: string | undefined,
  owner: RoleRow | undefined,
): Promise<OperationRow> {
  await onBranchServer(ctx, branch, 'postgres', async (client) => {
    const current = client.escapeIdentifier(database.postgres_database);
    if (owner)
      await client.query(
        `ALTER DATABASE ${current} OWNER TO ${client.escapeIdentifier(owner.spec.postgres_role)}`,
      );
    if (rename && rename !== database.postgres_database) {
      try {
        await client.query(`ALTER DATABASE ${current} RENAME TO ${client.escapeIdentifier(rename)}`);
      } catch (error) {
        throw new PierError(
          'BAD_REQUEST',
          `Database ${database.postgres_database} could not be renamed: ${(error as Error).message}.`,
          { cause: error },
        );
      }
    }
  });
  await updateDatabase(ctx.store, branch.uid, database.database_id, {
    postgres_database: rename ?? database.postgres_database,
    role_id: owner?.role_id ?? database.role_id,
  });
  const row = (await findDatabase(ctx.store, branch.uid, database.database_id)) as DatabaseRow;
  return startOperation(ctx.store, caller, 'Database', databaseName(branch, database.database_id), {
    response: databaseView(branch, row),
  });
}

export async function deleteBranchDatabase(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  databaseId: string,
): Promise<OperationRow> {
  const { branch, database } = await getDatabase(ctx, caller, projectId, branchId, databaseId);
  await onBranchServer(ctx, branch, 'postgres', async (client) => {
    await client.query(
      `DROP DATABASE IF EXISTS ${client.escapeIdentifier(database.postgres_database)} WITH (FORCE)`,
    );
  });
  await deleteDatabaseRow(ctx.store, branch.uid, databaseId);
  return startOperation(ctx.store, caller, 'Database', databaseName(branch, databaseId), {
    response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
  });
}
