import type { ControlContext } from '../control/context.js';
import type { IdentityRow } from '../identities/store.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByUid } from '../instances/store.js';
import { branchOf, endpointOf, projectForCaller } from './common.js';
import { notFound } from './fields.js';
import { branchRecord, endpointRecord } from './records.js';
import { findDatabase, findOperation, findRole, finishOperation, type OperationRow } from './store.js';
import { branchView, databaseView, EMPTY_RESPONSE, endpointView, projectView, roleView } from './view.js';

/**
 * `GET /api/2.0/postgres/{operation name}`. An operation is finished lazily:
 * when read, the instance it waits for is looked at; once it reached the
 * state asked for, the operation is recorded done with the resource as it
 * is then (or Empty, for a delete).
 */
export async function getOperation(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<OperationRow> {
  const row = await findOperation(ctx.store, name);
  if (!row || (!caller.is_admin && row.owner.toLowerCase() !== caller.user_name.toLowerCase())) {
    throw notFound(`operation not found: ${name} does not exist.`);
  }
  if (row.done) return row;
  const result = await settle(ctx, caller, row);
  if (!result) return row;
  await finishOperation(ctx.store, row.name, result);
  return { ...row, done: true, response: result.response ?? null, error: result.error ?? null };
}

async function settle(
  ctx: ControlContext,
  caller: IdentityRow,
  row: OperationRow,
): Promise<{ response?: Record<string, unknown>; error?: Record<string, unknown> } | undefined> {
  const instance = row.wait_instance ? await findInstanceByUid(ctx.store, row.wait_instance) : undefined;
  if (row.wait_state === 'GONE') return instance ? undefined : { response: EMPTY_RESPONSE };
  if (!instance) {
    return { error: { error_code: 'NOT_FOUND', message: `${row.resource_name} no longer exists.` } };
  }
  const state = reportedState(instance);
  if (state === 'FAILED') {
    return {
      error: {
        error_code: 'INTERNAL_ERROR',
        message: instance.status.message ?? `${row.resource_name} failed to start; see the Pier log.`,
      },
    };
  }
  const settled = instance.observed_generation === instance.generation;
  const reached =
    row.wait_state === 'AVAILABLE'
      ? state === 'AVAILABLE'
      : row.wait_state === 'STOPPED'
        ? state === 'STOPPED'
        : settled && (state === 'AVAILABLE' || state === 'STOPPED');
  if (!reached) return undefined;
  try {
    return { response: await resourceJson(ctx, caller, row.resource_name) };
  } catch (error) {
    // Deleted meanwhile: the operation finished, its resource is gone.
    return { error: { error_code: 'NOT_FOUND', message: (error as Error).message } };
  }
}

/** The resource an operation names, as its GET would answer. */
async function resourceJson(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<Record<string, unknown>> {
  const parts = name.split('/');
  const project = await projectForCaller(ctx.store, caller, parts[1], { includeDeleted: true });
  if (parts.length === 2) return projectView(project);
  const branch = await branchOf(ctx.store, project, parts[3]);
  if (parts.length === 4)
    return branchView(await branchRecord(ctx, ctx.store, project, branch, { size: true }));
  if (parts[4] === 'endpoints') {
    return endpointView(await endpointRecord(ctx, ctx.store, await endpointOf(ctx.store, branch, parts[5])));
  }
  if (parts[4] === 'databases') {
    const database = await findDatabase(ctx.store, branch.uid, parts[5]);
    if (!database) throw notFound(`${name} does not exist.`);
    return databaseView(branch, database);
  }
  const role = await findRole(ctx.store, branch.uid, parts[5]);
  if (!role) throw notFound(`${name} does not exist.`);
  return roleView(branch, role);
}
