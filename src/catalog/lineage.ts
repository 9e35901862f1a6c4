import type { ControlContext } from '../control/context.js';
import { invalidParameter, isPierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import { insertLineageEdge, type LineageEdge, listDownstreams, listUpstreams } from './lineage-store.js';
import { parseTableFullName } from './names.js';
import { getTable } from './tables.js';

/**
 * Records that `target` is computed from `source` (both three-part table
 * names), e.g. a synced table from its Delta source. Idempotent; run it in the
 * same transaction as the change that creates the dependency.
 *
 * @example
 * await ctx.store.transaction((tx) =>
 *   addTableLineage(tx, { source: 'analytics.gold.daily_revenue', target: 'orders_db.public.daily_revenue' }));
 */
export async function addTableLineage(
  db: Queryable,
  edge: { source: string; target: string },
): Promise<void> {
  const source = canonical(edge.source);
  const target = canonical(edge.target);
  if (source === target) throw invalidParameter(`A table cannot be its own lineage source ('${source}').`);
  await insertLineageEdge(db, source, target);
}

function canonical(fullName: string): string {
  const { catalog, schema, table } = parseTableFullName(fullName);
  return `${catalog}.${schema}.${table}`;
}

/** The edges of one table the caller may see: those it is computed from, and those computed from it. */
export interface TableLineage {
  /** Edges whose `target_name` is the table, by source name. */
  upstreams: LineageEdge[];
  /** Edges whose `source_name` is the table, by target name. */
  downstreams: LineageEdge[];
}

/** Whether the caller may see a related table: hidden if they lack privileges on it. */
async function visible(ctx: ControlContext, caller: IdentityRow, fullName: string): Promise<boolean> {
  try {
    await getTable(ctx, caller, fullName);
    return true;
  } catch (error) {
    if (!isPierError(error)) throw error;
    // A table that is gone, or whose instance is down, still has its lineage.
    return error.kind !== 'PERMISSION_DENIED';
  }
}

/**
 * `GET /api/2.0/lineage-tracking/table-lineage?table_name=`: the tables
 * `table_name` is computed from and those computed from it.
 */
export async function getTableLineage(
  ctx: ControlContext,
  caller: IdentityRow,
  tableName: string | undefined,
): Promise<TableLineage> {
  if (!tableName)
    throw invalidParameter(`Query parameter 'table_name' is required: a three-part table name.`);
  const name = canonical(tableName);
  const upstreams = await listUpstreams(ctx.store, name);
  const downstreams = await listDownstreams(ctx.store, name);
  try {
    await getTable(ctx, caller, name);
  } catch (error) {
    const unknownButLinked =
      isPierError(error) &&
      error.kind === 'RESOURCE_DOES_NOT_EXIST' &&
      upstreams.length + downstreams.length > 0;
    if (!unknownButLinked) throw error;
  }
  const shown = async (edges: LineageEdge[], end: 'source_name' | 'target_name') => {
    const kept = [];
    for (const edge of edges) if (await visible(ctx, caller, edge[end])) kept.push(edge);
    return kept;
  };
  return {
    upstreams: await shown(upstreams, 'source_name'),
    downstreams: await shown(downstreams, 'target_name'),
  };
}
