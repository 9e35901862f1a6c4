import type { EngineObservation } from '../engine/engine.js';
import type { InstanceSpec, InstanceState, InstanceStatus } from '../instances/store.js';

/** One engine action. The reconciler runs a plan's steps in order. */
export type Step =
  | 'provision'
  | 'configure'
  | 'start'
  | 'restart'
  | 'stop'
  | 'bootstrap-roles'
  | 'destroy'
  | 'forget';

export interface Plan {
  steps: Step[];
  /** The state to show while the steps run. */
  progress: InstanceState;
  /** The state once they all succeeded. */
  done: InstanceState;
  /** A server that is starting on its own: look again shortly rather than act. */
  waitForReady?: boolean;
  /** Why the instance is in `done`, for `status.message` (a FAILED instance says what to do). */
  message?: string;
}

/** Status of an instance whose storage was made once (`applied_capacity`: before `provisioned` was recorded). */
function wasProvisioned(status: InstanceStatus): boolean {
  return status.provisioned === true || status.applied_capacity !== undefined;
}

/**
 * Decides what to do for one instance, from what the user wants (spec), what
 * was done before (status) and what runs now (observation). Pure: no I/O, so
 * every case is tested without processes.
 *
 * @example
 * planInstance({ ...spec, stopped: true }, status, { provisioned: true, running: true, ready: true })
 * // → { steps: ['stop'], progress: 'STOPPED', done: 'STOPPED' }
 */
export function planInstance(spec: InstanceSpec, status: InstanceStatus, observed: EngineObservation): Plan {
  if (spec.deleted) {
    return {
      steps: observed.provisioned || observed.running ? ['destroy', 'forget'] : ['forget'],
      progress: 'DELETING',
      done: 'DELETING',
    };
  }
  if (!observed.provisioned && wasProvisioned(status)) {
    // Making it anew would hand the user an empty database under the old name.
    return {
      steps: [],
      progress: 'FAILED',
      done: 'FAILED',
      message:
        "The instance's data directory is missing on its Pier node. Pier will not re-create it empty: create a child instance from its WAL archive (parent_instance_ref naming this instance), restore the data directory from a backup (the instance starts again by itself), or delete the instance.",
    };
  }
  if (!observed.provisioned) {
    return spec.stopped
      ? { steps: ['provision', 'configure'], progress: 'STARTING', done: 'STOPPED' }
      : {
          steps: ['provision', 'configure', 'start', 'bootstrap-roles'],
          progress: 'STARTING',
          done: 'AVAILABLE',
        };
  }
  // A server started before WAL archiving was always on restarts once to turn it on.
  const resized =
    status.applied_capacity !== spec.capacity ||
    status.applied_compute_units !== spec.compute_units ||
    status.wal_archiving !== true;
  if (spec.stopped) {
    const steps: Step[] = [];
    if (observed.running) steps.push('stop');
    if (resized) steps.push('configure');
    // Until the server is gone the instance is not STOPPED: clients may still be connected.
    return { steps, progress: observed.running ? 'UPDATING' : 'STOPPED', done: 'STOPPED' };
  }
  const steps: Step[] = [];
  let progress: InstanceState = 'AVAILABLE';
  if (resized) {
    steps.push('configure', observed.running ? 'restart' : 'start');
    progress = observed.running ? 'UPDATING' : 'STARTING';
  } else if (!observed.running) {
    steps.push('start');
    progress = 'STARTING';
  } else if (!observed.ready) {
    return { steps: [], progress: 'STARTING', done: 'AVAILABLE', waitForReady: true };
  }
  if (!status.roles_ready) steps.push('bootstrap-roles');
  return { steps, progress, done: 'AVAILABLE' };
}
