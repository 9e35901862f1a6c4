import { reservedNameReason } from '../auth/reserved-names.js';
import type { ControlContext } from '../control/context.js';
import { asObject } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import { findIdentityByUserName, type IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import {
  clearInstancePermissions,
  findInstancePermission,
  type InstancePermissionLevel,
  listInstancePermissions,
  type PermissionRow,
  setInstancePermission,
} from './permissions-store.js';
import { findInstanceByName, type InstanceRow } from './store.js';

const RANK: Record<InstancePermissionLevel, number> = { CAN_USE: 1, CAN_MANAGE: 2 };
const LEVELS = Object.keys(RANK) as InstancePermissionLevel[];

/** The caller's effective level on an instance: admins manage everything. */
export async function permissionOn(
  db: Queryable,
  caller: IdentityRow,
  instance: InstanceRow,
): Promise<InstancePermissionLevel | undefined> {
  if (caller.is_admin) return 'CAN_MANAGE';
  return findInstancePermission(db, instance.uid, caller.user_name);
}

/**
 * Loads an instance the caller may act on. Without any permission the
 * instance is invisible (RESOURCE_DOES_NOT_EXIST); with too low a level,
 * PERMISSION_DENIED names the level needed.
 */
export async function instanceForCaller(
  db: Queryable,
  caller: IdentityRow,
  name: string,
  needed: InstancePermissionLevel,
  options: { lock?: boolean } = {},
): Promise<InstanceRow> {
  const found = await findInstanceByName(db, name, options.lock);
  // An Autoscaling compute is reached through its project (`/api/2.0/postgres`), never by name here.
  const instance = found?.autoscaling ? undefined : found;
  const level = instance ? await permissionOn(db, caller, instance) : undefined;
  if (!instance || !level) throw notFound(`Database instance '${name}' does not exist.`);
  if (RANK[level] < RANK[needed]) {
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${caller.user_name} has ${level} on database instance '${name}' but this needs ${needed}. Ask a user with CAN_MANAGE to grant it.`,
    );
  }
  return instance;
}

/** An instance and who holds which level on it directly (admins hold CAN_MANAGE on all). */
export interface InstancePermissions {
  instance: InstanceRow;
  rows: PermissionRow[];
}

async function permissionsOf(db: Queryable, instance: InstanceRow): Promise<InstancePermissions> {
  return { instance, rows: await listInstancePermissions(db, instance.uid) };
}

interface AccessControlEntry {
  principal: string;
  level: InstancePermissionLevel;
}

async function parseAccessControlList(db: Queryable, body: unknown): Promise<AccessControlEntry[]> {
  const list = asObject(body, 'The request body').access_control_list;
  if (!Array.isArray(list)) {
    throw invalidParameter(
      `Field 'access_control_list' must be an array of {user_name | service_principal_name | group_name, permission_level}.`,
    );
  }
  const entries: AccessControlEntry[] = [];
  for (const item of list) {
    const entry = asObject(item, 'Each access_control_list entry');
    const principal = entry.user_name ?? entry.service_principal_name ?? entry.group_name;
    if (typeof principal !== 'string' || principal === '') {
      throw invalidParameter(
        'Each access_control_list entry needs user_name, service_principal_name or group_name.',
      );
    }
    const reserved = reservedNameReason(principal);
    if (reserved) throw invalidParameter(`'${principal}' cannot be granted anything: ${reserved}.`);
    const level = entry.permission_level;
    if (typeof level !== 'string' || !LEVELS.includes(level as InstancePermissionLevel)) {
      throw invalidParameter(
        `permission_level ${JSON.stringify(level)} is not valid for a database instance; use one of ${LEVELS.join(', ')}.`,
      );
    }
    if (entry.user_name !== undefined && !(await findIdentityByUserName(db, principal))) {
      throw invalidParameter(
        `User '${principal}' does not exist in this workspace. Create it first (SCIM Users).`,
      );
    }
    if (
      entry.user_name === undefined &&
      entry.service_principal_name !== undefined &&
      (await findIdentityByUserName(db, principal))?.kind !== 'SERVICE_PRINCIPAL'
    ) {
      throw invalidParameter(
        `Service principal '${principal}' does not exist in this workspace: service_principal_name is its applicationId. Create it first (SCIM ServicePrincipals).`,
      );
    }
    entries.push({ principal, level: level as InstancePermissionLevel });
  }
  return entries;
}

/**
 * PUT replaces the instance's direct permissions; PATCH adds to them. Needs
 * CAN_MANAGE. The whole change is one transaction.
 */
export async function changeInstancePermissions(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  body: unknown,
  mode: 'replace' | 'add',
): Promise<InstancePermissions> {
  return ctx.store.transaction(async (tx) => {
    const instance = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    const entries = await parseAccessControlList(tx, body);
    if (mode === 'replace') await clearInstancePermissions(tx, instance.uid);
    for (const entry of entries) await setInstancePermission(tx, instance.uid, entry.principal, entry.level);
    return permissionsOf(tx, instance);
  });
}

export async function getInstancePermissions(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<InstancePermissions> {
  const instance = await instanceForCaller(ctx.store, caller, name, 'CAN_USE');
  return permissionsOf(ctx.store, instance);
}
