import type { InstanceRow, InstanceState } from './store.js';

/**
 * The state an instance is reported in. Only the reconciler writes `state`
 * (what it last observed and did); while a user's change is not yet
 * reconciled (`observed_generation` behind `generation`), the state shown is
 * the transition that change starts, derived from spec against what was
 * observed. The API and the proxy both read it through here.
 *
 * @example
 * reportedState({ ...row, spec: { ...row.spec, stopped: true }, generation: 3, observed_generation: 2 })
 * // → 'UPDATING' while the server still runs, 'STOPPED' once the reconciler says so
 */
export function reportedState(
  row: Pick<InstanceRow, 'spec' | 'state' | 'status' | 'generation' | 'observed_generation'>,
): InstanceState {
  const { spec, state, status } = row;
  // A failover under way is shown whatever else changed meanwhile: no new connection is routed until it ends.
  if (status.topology?.failover && !spec.deleted) return 'FAILING_OVER';
  if (spec.upgrading && !spec.deleted) return 'UPGRADING';
  if (row.observed_generation === row.generation) return state;
  if (spec.deleted) return 'DELETING';
  // Never reconciled: whatever the spec says, the instance is being made.
  if (row.observed_generation === 0) return 'STARTING';
  if (spec.stopped) return state === 'STOPPED' ? 'STOPPED' : 'UPDATING';
  if (state === 'STOPPED') return 'STARTING';
  if (status.applied_capacity !== undefined && status.applied_capacity !== spec.capacity) return 'UPDATING';
  return state;
}
