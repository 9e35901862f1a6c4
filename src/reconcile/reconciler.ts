import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine, EngineInstance } from '../engine/engine.js';
import {
  claimUnownedInstances,
  deleteInstanceRow,
  findInstanceByUid,
  type InstanceRow,
  type InstanceStatus,
  listAllInstanceUids,
  listNodeInstances,
  updateInstanceStatus,
} from '../instances/store.js';
import type { Store } from '../store/store.js';
import { planInstance, type Step } from './plan.js';

export interface ReconcilerOptions {
  /** This Pier node: only instances whose node_id is this one are driven here. */
  nodeId: string;
  /** How often every instance is looked at even without a change (a server that died is restarted). */
  resyncIntervalMs?: number;
  log?: (message: string) => void;
  /**
   * Told of every state the reconciler is about to report, before it is
   * written: caches that route clients (the proxy) are up to date by the time
   * a client can read the new state.
   */
  beforeReport?: (uid: string, state: InstanceRow['state']) => Promise<void> | void;
}

/**
 * Drives every instance from observed to desired state. Work for one
 * instance is serialised; a change that arrives while it runs triggers
 * another pass. Each pass re-observes, so a crash at any step is finished by
 * the next pass (or the next Pier).
 *
 * Emits `kick` (uid) when work is asked for and `changed` (uid) after any
 * state it wrote.
 */
export class Reconciler extends EventEmitter {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly failures = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly options: ReconcilerOptions,
  ) {
    super();
  }

  /** Moves aside what no instance owns, then reconciles everything and keeps watching. */
  async start(): Promise<void> {
    await claimUnownedInstances(this.store, this.options.nodeId);
    // Storage no instance in the store owns (on any node) is an orphan. It is
    // quarantined, never deleted: a store that forgot an instance (restored
    // from an old backup, edited by hand) does not prove its data is garbage.
    const known = await listAllInstanceUids(this.store);
    const rows = await listNodeInstances(this.store, this.options.nodeId);
    for (const uid of await this.engine.listInstances()) {
      if (!known.has(uid)) {
        const movedTo = await this.engine.quarantine(uid);
        this.log(`instance storage ${uid} belongs to no instance in the store: moved to ${movedTo}`);
      }
    }
    for (const row of rows) this.kick(row.uid);
    const interval = this.options.resyncIntervalMs ?? 1000;
    this.timer = setInterval(() => void this.resync(), interval);
    this.timer.unref();
  }

  /** Waits for in-flight work and stops watching. Running instances keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  /** Installs the hook told of each state before it is written (see ReconcilerOptions.beforeReport). */
  setBeforeReport(hook: ReconcilerOptions['beforeReport']): void {
    this.options.beforeReport = hook;
  }

  /** Asks for a pass over one instance soon. */
  kick(uid: string): void {
    if (this.stopped) return;
    this.emit('kick', uid);
    if (this.running.has(uid)) {
      this.again.add(uid);
      return;
    }
    const work = this.reconcileLoop(uid).finally(() => {
      this.running.delete(uid);
      if (this.again.delete(uid)) this.kick(uid);
    });
    this.running.set(uid, work);
  }

  /** Resolves when the instance has no work in flight (tests and `--wait` use it). */
  async idle(uid: string): Promise<void> {
    while (this.running.has(uid)) await this.running.get(uid);
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    try {
      for (const row of await listNodeInstances(this.store, this.options.nodeId)) {
        if (this.running.has(row.uid)) continue;
        const needsWork = row.observed_generation !== row.generation || (await this.drifted(row));
        if (needsWork) this.kick(row.uid);
      }
    } catch (error) {
      this.log(`resync failed: ${(error as Error).message}`);
    }
  }

  /** An instance that should be running but is not (its server died). */
  private async drifted(row: InstanceRow): Promise<boolean> {
    if (row.spec.deleted || row.spec.stopped) return false;
    const observed = await this.engine.observe(row.uid);
    return !observed.running;
  }

  private async reconcileLoop(uid: string): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      let outcome: 'done' | 'again' | 'wait';
      try {
        outcome = await this.reconcileOnce(uid);
        this.failures.delete(uid);
      } catch (error) {
        const failures = (this.failures.get(uid) ?? 0) + 1;
        this.failures.set(uid, failures);
        this.log(`instance ${uid}: ${(error as Error).message} (attempt ${failures})`);
        await this.recordFailure(uid, (error as Error).message);
        await sleep(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)));
        continue;
      }
      if (outcome === 'done') return;
      if (outcome === 'wait') await sleep(20);
    }
  }

  private async reconcileOnce(uid: string): Promise<'done' | 'again' | 'wait'> {
    const row = await findInstanceByUid(this.store, uid);
    // Gone, or run by another Pier node (which sees the change on its next resync).
    if (!row || row.node_id !== this.options.nodeId) return 'done';
    const observed = await this.engine.observe(uid);
    const plan = planInstance(row.spec, row.status, observed);
    if (plan.waitForReady) return 'wait';
    const status: InstanceStatus = { ...row.status };
    delete status.message;
    if (plan.message) status.message = plan.message;
    // Nothing to do and nothing new to say: leave the row alone.
    if (
      plan.steps.length === 0 &&
      row.state === plan.done &&
      row.observed_generation === row.generation &&
      row.status.message === status.message
    )
      return 'done';
    if (plan.steps.length > 0 && row.state !== plan.progress) {
      if (!(await this.report(row, plan.progress, status, false))) return 'again';
    }
    const instance: EngineInstance = { uid, name: row.name, capacity: row.spec.capacity };
    for (const step of plan.steps) {
      if (step === 'forget') {
        const forgotten = await deleteInstanceRow(this.store, uid, row.generation);
        if (forgotten) this.emit('changed', uid);
        return forgotten ? 'done' : 'again';
      }
      const started = performance.now();
      await this.apply(step, instance, row, status);
      if (process.env.PIER_TRACE)
        this.log(`${row.name}: ${step} ${(performance.now() - started).toFixed(1)} ms`);
    }
    if (!(await this.report(row, plan.done, status, true))) return 'again';
    return 'done';
  }

  private async apply(
    step: Step,
    instance: EngineInstance,
    row: InstanceRow,
    status: InstanceStatus,
  ): Promise<void> {
    switch (step) {
      case 'provision':
        await this.engine.provision(instance);
        status.provisioned = true;
        return;
      case 'configure':
        await this.engine.configure(instance);
        // Settings on disk apply at the next start; a stopped instance counts them as applied.
        if (row.spec.stopped) status.applied_capacity = instance.capacity;
        return;
      case 'start':
        await this.engine.start(instance);
        status.applied_capacity = instance.capacity;
        return;
      case 'restart':
        await this.engine.stop(instance.uid);
        await this.engine.start(instance);
        status.applied_capacity = instance.capacity;
        return;
      case 'stop':
        await this.engine.stop(instance.uid);
        return;
      case 'bootstrap-roles':
        await this.engine.ensureLoginRole(instance.uid, row.creator, { superuser: true });
        status.roles_ready = true;
        return;
      case 'destroy':
        await this.engine.destroy(instance.uid);
        return;
      case 'forget':
        return;
    }
  }

  private async report(row: InstanceRow, state: InstanceRow['state'], status: InstanceStatus, done: boolean) {
    await this.options.beforeReport?.(row.uid, state);
    const written = await updateInstanceStatus(this.store, row.uid, row.generation, state, status, done);
    if (written) {
      row.state = state;
      this.emit('changed', row.uid);
    }
    return written;
  }

  private async recordFailure(uid: string, message: string): Promise<void> {
    const row = await findInstanceByUid(this.store, uid).catch(() => undefined);
    if (!row) return;
    await updateInstanceStatus(
      this.store,
      uid,
      row.generation,
      row.state,
      { ...row.status, message },
      false,
    ).catch(() => {});
  }

  private log(message: string): void {
    this.options.log?.(message);
  }
}
