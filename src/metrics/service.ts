import type { ControlContext } from '../control/context.js';
import { wholeNumberParam } from '../control/validate.js';
import type { IdentityRow } from '../identities/store.js';
import { getInstance } from '../instances/service.js';
import { loadForCaller } from '../sync/service.js';
import { listMetricSamples, listSyncPasses, type MetricSampleRow, type SyncPassRow } from './store.js';

/** The longest window a chart may ask for: the retention (a day). */
const MAX_MINUTES = 24 * 60;

function windowMinutes(raw: string | undefined): number {
  return wholeNumberParam(raw, 'minutes', { min: 1, max: MAX_MINUTES, fallback: 60 });
}

/** An instance's samples over the last `minutes` (60 by default): CAN_USE on it. */
export async function instanceMetricSamples(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  minutes: string | undefined,
): Promise<MetricSampleRow[]> {
  const instance = await getInstance(ctx, caller, name);
  return listMetricSamples(ctx.store, instance.uid, windowMinutes(minutes));
}

/** A synced table's finished passes over the last `minutes` (60 by default): CAN_USE on its instance. */
export async function syncedTablePasses(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  minutes: string | undefined,
): Promise<SyncPassRow[]> {
  const { table } = await loadForCaller(ctx, caller, name);
  return listSyncPasses(ctx.store, table.id, windowMinutes(minutes));
}
