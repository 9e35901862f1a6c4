import { randomUUID } from 'node:crypto';
import { resolveParentRef } from '../backups/service.js';
import { markArchiveDeleted } from '../backups/store.js';
import type { ControlContext } from '../control/context.js';
import { asObject, describe, optionalBoolean, optionalInteger, optionalString } from '../control/validate.js';
import { CAPACITIES, type Capacity } from '../engine/engine.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { decodePageToken, encodePageToken } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import { instanceForCaller, permissionOn } from './permissions.js';
import { setInstancePermission } from './permissions-store.js';
import {
  allocateLoopbackAddress,
  type ChildRef,
  type CustomTag,
  countInstances,
  defaultInstanceSpec,
  findInstanceByName,
  findInstanceByUid,
  type InstanceRow,
  type InstanceSpec,
  insertInstance,
  listChildRefs,
  listDescendantUids,
  listInstancesPage,
  setReadOnlyAddress,
  topologyOf,
  updateInstanceSpec,
} from './store.js';

/** One primary and up to two secondaries, as on Lakebase. */
const MAX_NODES = 3;
const NAME_PATTERN = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 100;

/** Fields `update_mask` may name. */
const UPDATABLE = new Set([
  'capacity',
  'stopped',
  'custom_tags',
  'retention_window_in_days',
  'enable_pg_native_login',
  'node_count',
  'enable_readable_secondaries',
  'usage_policy_id',
]);

function validateInstanceName(name: unknown): string {
  if (typeof name !== 'string' || name === '') {
    throw invalidParameter(`Field 'name' is required: the instance name (e.g. "order-mgmt-db").`);
  }
  if (!NAME_PATTERN.test(name)) {
    throw invalidParameter(
      `Instance name ${describe(name)} is invalid: use 1-63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen.`,
    );
  }
  return name;
}

function parseCapacity(value: unknown): Capacity {
  if (typeof value !== 'string' || !CAPACITIES.includes(value as Capacity)) {
    throw invalidParameter(`capacity ${describe(value)} is not valid; use one of ${CAPACITIES.join(', ')}.`);
  }
  return value as Capacity;
}

function parseCustomTags(value: unknown): CustomTag[] {
  if (!Array.isArray(value))
    throw invalidParameter('custom_tags must be an array of {"key": …, "value": …}.');
  return value.map((item) => {
    const tag = asObject(item, 'Each custom tag');
    if (typeof tag.key !== 'string' || tag.key === '')
      throw invalidParameter('Each custom tag needs a non-empty "key".');
    if (tag.value !== undefined && typeof tag.value !== 'string') {
      throw invalidParameter(`The value of custom tag '${tag.key}' must be a string.`);
    }
    return tag.value === undefined ? { key: tag.key } : { key: tag.key, value: tag.value };
  });
}

/** Reads the fields of a DatabaseInstance body onto a spec; only `fields` are taken. */
function applyFields(
  spec: InstanceSpec,
  body: Record<string, unknown>,
  fields: Iterable<string>,
): InstanceSpec {
  const next = { ...spec };
  for (const field of fields) {
    switch (field) {
      case 'capacity':
        next.capacity = parseCapacity(body.capacity);
        break;
      case 'stopped':
        next.stopped = optionalBoolean(body, 'stopped') ?? false;
        break;
      case 'custom_tags':
        next.custom_tags = body.custom_tags === undefined ? [] : parseCustomTags(body.custom_tags);
        break;
      case 'retention_window_in_days': {
        const days = optionalInteger(body, field) ?? 7;
        if (days < 2 || days > 35)
          throw invalidParameter(`retention_window_in_days must be between 2 and 35, got ${days}.`);
        next.retention_window_in_days = days;
        break;
      }
      case 'enable_pg_native_login':
        next.enable_pg_native_login = optionalBoolean(body, field) ?? false;
        break;
      case 'node_count': {
        const count = optionalInteger(body, field) ?? 1;
        if (count < 1 || count > MAX_NODES) {
          throw invalidParameter(
            `node_count must be between 1 and ${MAX_NODES} (one primary and up to ${MAX_NODES - 1} secondaries), got ${count}.`,
          );
        }
        next.node_count = count;
        break;
      }
      case 'enable_readable_secondaries':
        next.enable_readable_secondaries = optionalBoolean(body, field) ?? false;
        break;
      case 'usage_policy_id':
        next.usage_policy_id = optionalString(body, field);
        break;
    }
  }
  if (next.enable_readable_secondaries && next.node_count < 2) {
    throw invalidParameter(
      `enable_readable_secondaries needs a secondary to read from: set node_count to 2 or 3 (it is ${next.node_count}).`,
    );
  }
  return next;
}

/** A read-only address for an instance that enables readable secondaries and has none yet. */
async function giveReadOnlyAddress(
  ctx: ControlContext,
  tx: Queryable,
  row: InstanceRow,
): Promise<InstanceRow> {
  if (!row.spec.enable_readable_secondaries || row.read_only_address || ctx.config.dnsSuffix) return row;
  return setReadOnlyAddress(tx, row.uid, await allocateLoopbackAddress(tx));
}

/**
 * Records a new instance (state STARTING) and returns at once; the reconciler
 * brings it up. The creator gets CAN_MANAGE.
 */
export async function createInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<InstanceRow> {
  const body = asObject(input, 'The database instance');
  const name = validateInstanceName(body.name);
  const parent =
    body.parent_instance_ref === undefined || body.parent_instance_ref === null
      ? undefined
      : await resolveParentRef(ctx, caller, body.parent_instance_ref);
  const defaults = defaultInstanceSpec();
  const present = [...UPDATABLE].filter((field) => body[field] !== undefined && body[field] !== null);
  const spec = applyFields(defaults, body, present);
  if (parent) spec.parent = parent;
  const row = await ctx.store.transaction(async (tx) => {
    // Serialise creates so the quota and the address allocation see each other.
    await tx.query('LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE');
    if (await findInstanceByName(tx, name)) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Database instance '${name}' already exists. Pick another name.`,
      );
    }
    if ((await countInstances(tx)) >= ctx.config.maxInstances) {
      throw new PierError(
        'RESOURCE_EXHAUSTED',
        `This workspace already has ${ctx.config.maxInstances} database instances, its limit. Delete one, or start Pier with a higher --max-instances.`,
      );
    }
    const address = ctx.config.dnsSuffix ? null : await allocateLoopbackAddress(tx);
    const created = await insertInstance(tx, {
      uid: randomUUID(),
      name,
      creator: caller.user_name,
      spec,
      address,
      nodeId: ctx.config.nodeId,
    });
    await setInstancePermission(tx, created.uid, caller.user_name, 'CAN_MANAGE');
    return giveReadOnlyAddress(ctx, tx, created);
  });
  ctx.reconciler.kick(row.uid);
  return row;
}

/** The point-in-time children of each of `rows` (for `child_instance_refs`), by parent uid. */
export async function childRefsOf(
  ctx: ControlContext,
  rows: InstanceRow[],
): Promise<Map<string, ChildRef[]>> {
  const byParent = new Map<string, ChildRef[]>();
  for (const child of await listChildRefs(
    ctx.store,
    rows.map((row) => row.uid),
  )) {
    byParent.set(child.parent_uid, [...(byParent.get(child.parent_uid) ?? []), child]);
  }
  return byParent;
}

export async function getInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<InstanceRow> {
  return instanceForCaller(ctx.store, caller, name, 'CAN_USE');
}

export async function findInstanceForCallerByUid(
  ctx: ControlContext,
  caller: IdentityRow,
  uid: string | undefined,
): Promise<InstanceRow> {
  if (!uid) throw invalidParameter(`Query parameter 'uid' is required.`);
  const row = await findInstanceByUid(ctx.store, uid);
  if (!row || !(await permissionOn(ctx.store, caller, row))) {
    throw notFound(`No database instance has uid '${uid}'.`);
  }
  return row;
}

/** Keyset pagination on name, with the API's one page-token codec (pagination.ts). */
export async function listInstances(
  ctx: ControlContext,
  caller: IdentityRow,
  query: { page_size?: string; page_token?: string },
): Promise<{ rows: InstanceRow[]; nextPageToken?: string }> {
  const size = optionalInteger(query, 'page_size') ?? DEFAULT_PAGE_SIZE;
  if (size < 0) throw invalidParameter(`page_size must be positive, got ${size}.`);
  const limit = Math.min(size === 0 ? DEFAULT_PAGE_SIZE : size, MAX_PAGE_SIZE);
  const rows = await listInstancesPage(ctx.store, {
    afterName: decodePageToken(query.page_token) || undefined,
    limit: limit + 1,
    visibleTo: caller.is_admin ? undefined : caller.user_name,
  });
  const page = rows.slice(0, limit);
  const nextPageToken = rows.length > limit ? encodePageToken(page[page.length - 1].name) : undefined;
  return { rows: page, nextPageToken };
}

/**
 * Applies the fields named by `update_mask` (comma-separated, or `*`).
 * Needs CAN_MANAGE. Returns the instance as recorded.
 */
export async function updateInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  updateMask: string | undefined,
  input: unknown,
): Promise<InstanceRow> {
  const body = asObject(input ?? {}, 'The database instance');
  if (!updateMask) {
    throw invalidParameter(
      `update_mask is required: the comma-separated fields to change, e.g. "capacity" or "stopped".`,
    );
  }
  const fields =
    updateMask === '*' ? [...UPDATABLE].filter((f) => f in body) : updateMask.split(',').map((f) => f.trim());
  for (const field of fields) {
    if (!UPDATABLE.has(field)) {
      throw invalidParameter(
        `update_mask names '${field}', which cannot be updated. Updatable: ${[...UPDATABLE].join(', ')}.`,
      );
    }
    // Clearing these makes no sense; a missing value is a mistake (or a client that sent no body).
    if (
      (field === 'capacity' || field === 'stopped') &&
      (body[field] === undefined || body[field] === null)
    ) {
      throw invalidParameter(
        `update_mask names '${field}' but the request body does not set it. Send the new value in the body, e.g. {"${field}": ${field === 'capacity' ? '"CU_2"' : 'true'}}.`,
      );
    }
  }
  if (body.name !== undefined && body.name !== name) {
    throw invalidParameter(
      `An instance cannot be renamed: the body names '${String(body.name)}' but the path '${name}'.`,
    );
  }
  const row = await ctx.store.transaction(async (tx) => {
    const current = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    if (current.spec.deleted)
      throw new PierError('INVALID_STATE', `Database instance '${name}' is being deleted.`);
    refuseUpgraded(current);
    const spec = applyFields(current.spec, body, fields);
    if (spec.enable_readable_secondaries && !current.read_only_address && !ctx.config.dnsSuffix) {
      // The address pool is shared with creates: take it under the same lock.
      await tx.query('LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE');
    }
    return giveReadOnlyAddress(ctx, tx, await updateInstanceSpec(tx, current.uid, spec));
  });
  ctx.reconciler.kick(row.uid);
  return row;
}

/**
 * Asks for a failover (Pier's own call; the Databricks API has none): the
 * reconciler fences the primary, promotes the most advanced secondary and
 * makes the old primary a secondary again. Needs CAN_MANAGE and a streaming
 * secondary, so the failover loses no acknowledged commit.
 */
export async function requestFailover(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<InstanceRow> {
  const row = await ctx.store.transaction(async (tx) => {
    const current = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    const refuse = (why: string) => new PierError('INVALID_STATE', `Cannot fail over '${name}': ${why}`);
    if (current.spec.deleted) throw refuse('it is being deleted.');
    if (current.spec.stopped)
      throw refuse(`it is stopped. Start it first: pier database start-database-instance ${name}`);
    if (current.spec.node_count < 2) throw refuse('it has no secondary. Set node_count to 2 or 3 first.');
    const topology = topologyOf(current.status);
    if (topology.failover || (current.spec.failover_requests ?? 0) > topology.failovers)
      throw refuse('a failover is already under way. Wait until it is AVAILABLE again.');
    if (topology.streaming.length === 0)
      throw refuse(
        'no secondary is streaming, so a failover could lose data. Wait until effective_node_count is above 1.',
      );
    return updateInstanceSpec(tx, current.uid, {
      ...current.spec,
      failover_requests: topology.failovers + 1,
    });
  });
  ctx.reconciler.kick(row.uid);
  return row;
}

/** Marks the instance for deletion (DELETING); the reconciler removes its data, then the record. */
export async function deleteInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  query: { purge?: string; force?: string },
): Promise<void> {
  for (const flag of ['purge', 'force'] as const) {
    if (query[flag] !== undefined && query[flag] !== 'true' && query[flag] !== 'false') {
      throw invalidParameter(`${flag} must be true or false, got ${describe(query[flag])}.`);
    }
  }
  const purge = query.purge === 'true';
  const uids = await ctx.store.transaction(async (tx) => {
    const current = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    if (current.spec.deleted) return [];
    refuseUpgraded(current);
    const descendants = await listDescendantUids(tx, current.uid);
    const live: InstanceRow[] = [];
    for (const uid of descendants) {
      const row = await findInstanceByUid(tx, uid);
      if (row && !row.spec.deleted) live.push(row);
    }
    if (live.length > 0 && query.force !== 'true') {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${name}' has child instances (${live.map((row) => row.name).join(', ')}). Delete them first, or pass force=true to delete them with it.`,
      );
    }
    const deleted: string[] = [];
    for (const row of [current, ...live]) {
      await updateInstanceSpec(tx, row.uid, { ...row.spec, deleted: true, purge });
      if (!purge) {
        await markArchiveDeleted(tx, {
          uid: row.uid,
          name: row.name,
          nodeId: row.node_id ?? ctx.config.nodeId,
          retentionDays: row.spec.retention_window_in_days,
        });
      }
      deleted.push(row.uid);
    }
    return deleted;
  });
  for (const uid of uids) ctx.reconciler.kick(uid);
}

/** An instance upgraded to Lakebase Autoscaling is changed through its project only. */
function refuseUpgraded(row: InstanceRow): void {
  if (row.spec.upgraded_to) {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${row.name}' was upgraded to Lakebase Autoscaling: change it through ${row.spec.upgraded_to} (pier postgres …).`,
    );
  }
}
