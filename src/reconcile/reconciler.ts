import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteArchiveRow } from '../backups/store.js';
import type { Engine, EngineInstance } from '../engine/engine.js';
import { noteFailure } from '../failures.js';
import {
  claimUnownedInstances,
  deleteInstanceRow,
  findInstanceByUid,
  type InstanceRow,
  type InstanceStatus,
  listAllInstanceUids,
  listNodeInstances,
  type ParentRef,
  topologyOf,
  updateInstanceStatus,
} from '../instances/store.js';
import { pierMetrics } from '../metrics/registry.js';
import { claimLeases, forgetLease, releaseLease, renewLease } from '../store/leases.js';
import type { Store } from '../store/store.js';
import { failureStatus } from './failure.js';
import { InstanceNodes, READ_LAG_LIMIT_MS } from './nodes.js';
import { planInstance, type Step } from './plan.js';
import { desiredSecondaries, failoverReason, laggingSecondaries, sameNodes } from './plan-nodes.js';

/** Lease resource name for instances (see store/leases.ts). */
const LEASE = 'instance';
/** How often the primaries of HA instances are looked at (see watchPrimaries). */
const PRIMARY_WATCH_MS = 200;
/** How long a pass may run between renewals before another process may take the instance over. */
const LEASE_TTL_MS = 60_000;

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
  /** When each lease held was last claimed or renewed. */
  private readonly renewedAt = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private primaryWatch?: NodeJS.Timeout;
  /** HA instances whose commits are synchronous, by uid: their primary's node (from the last resync). */
  private synchronousPrimaries = new Map<string, number>();
  private stopped = false;
  /**
   * This reconciler's name on the leases it holds: its node, of which one
   * process runs at a time (the data-dir lock), so a Pier restarted after
   * kill -9 takes its leases back at once instead of waiting for them to expire.
   */
  private readonly holder: string;
  /** Secondaries and failovers (reconcile/nodes.ts). */
  private readonly nodes: InstanceNodes;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly options: ReconcilerOptions,
  ) {
    super();
    this.holder = options.nodeId;
    this.nodes = new InstanceNodes(store, engine, {
      beforeState: (uid, state) => this.options.beforeReport?.(uid, state),
      changed: (uid) => this.emit('changed', uid),
      log: (message) => this.log(message),
    });
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
    this.primaryWatch = setInterval(() => void this.watchPrimaries(), PRIMARY_WATCH_MS);
    this.primaryWatch.unref();
  }

  /** Waits for in-flight work and stops watching. Running instances keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.primaryWatch) clearInterval(this.primaryWatch);
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
      const rows = await listNodeInstances(this.store, this.options.nodeId);
      this.synchronousPrimaries = new Map(
        rows.flatMap((row) => {
          const topology = topologyOf(row.status);
          return topology.sync.length > 0 && !row.spec.stopped ? [[row.uid, topology.primary] as const] : [];
        }),
      );
      for (const row of rows) {
        if (this.running.has(row.uid)) continue;
        const needsWork = row.observed_generation !== row.generation || (await this.drifted(row));
        if (needsWork) this.kick(row.uid);
      }
    } catch (error) {
      noteFailure('reconciler.resync', error);
    }
  }

  /**
   * Failover starts sooner than the resync would notice: the primaries of
   * instances with synchronous secondaries are looked at (postmaster.pid, no
   * SQL) several times a second.
   */
  private async watchPrimaries(): Promise<void> {
    for (const [uid, primary] of this.synchronousPrimaries) {
      if (this.stopped || this.running.has(uid)) continue;
      const observed = await this.engine.observe(uid, primary).catch(() => undefined);
      if (observed && !observed.running) this.kick(uid);
    }
  }

  /**
   * An instance that should be running but is not (its server died), or
   * whose secondaries are not what was recorded (one stopped streaming).
   */
  private async drifted(row: InstanceRow): Promise<boolean> {
    if (row.spec.deleted || row.spec.stopped) return false;
    const topology = topologyOf(row.status);
    const observed = await this.engine.observe(row.uid, topology.primary);
    if (!observed.running) return true;
    if (row.spec.node_count < 2 && topology.secondaries.length === 0) return false;
    if (topology.failover || topology.reclone.length > 0) return true;
    const desired = desiredSecondaries(row.spec, topology);
    if (!sameNodes(desired, topology.secondaries)) return true;
    const { streaming, replayLagMs } = await this.engine.observeReplication(
      row.uid,
      topology.primary,
      desired,
    );
    const lagging = laggingSecondaries(streaming, replayLagMs, READ_LAG_LIMIT_MS);
    return (
      !sameNodes(streaming, topology.streaming) ||
      !sameNodes(streaming, topology.sync) ||
      !sameNodes(lagging, topology.lagging ?? [])
    );
  }

  /**
   * Drives one instance while holding its lease: a process that cannot
   * claim it (another one works on it) leaves it alone; the lease is renewed
   * between steps and given back at the end.
   */
  private async reconcileLoop(uid: string): Promise<void> {
    let claimed: string[];
    try {
      claimed = await claimLeases(this.store, LEASE, this.holder, { keys: [uid], ttlMs: LEASE_TTL_MS });
    } catch (error) {
      // The store is away: the next resync tries again.
      noteFailure('reconciler.claim-lease', error);
      return;
    }
    if (claimed.length === 0) return;
    this.renewedAt.set(uid, Date.now());
    try {
      await this.passes(uid);
    } finally {
      this.renewedAt.delete(uid);
      await releaseLease(this.store, LEASE, uid, this.holder).catch((error) =>
        noteFailure('reconciler.release-lease', error),
      );
    }
  }

  private async passes(uid: string): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      let outcome: 'done' | 'again' | 'wait';
      const started = performance.now();
      try {
        outcome = await this.reconcileOnce(uid);
        pierMetrics.reconcilePasses.observe({ outcome }, (performance.now() - started) / 1000);
        this.failures.delete(uid);
      } catch (error) {
        pierMetrics.reconcilePasses.observe({ outcome: 'error' }, (performance.now() - started) / 1000);
        const failures = (this.failures.get(uid) ?? 0) + 1;
        this.failures.set(uid, failures);
        this.log(`instance ${uid}: ${(error as Error).message} (attempt ${failures})`);
        await this.recordFailure(uid, error);
        await sleep(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)));
        if (!(await this.renew(uid))) return;
        continue;
      }
      if (outcome === 'done') return;
      if (outcome === 'wait') await sleep(20);
      if (!(await this.renew(uid))) return;
    }
  }

  /**
   * Keeps this instance's lease, at most every third of its lifetime; false
   * if another process has taken it over. A store that cannot be reached
   * keeps the pass going: its next query fails and is retried with backoff.
   */
  private async renew(uid: string): Promise<boolean> {
    const now = Date.now();
    if (now - (this.renewedAt.get(uid) ?? 0) < LEASE_TTL_MS / 3) return true;
    try {
      const held = await renewLease(this.store, LEASE, uid, this.holder, LEASE_TTL_MS);
      if (held) this.renewedAt.set(uid, now);
      return held;
    } catch (error) {
      noteFailure('reconciler.renew-lease', error);
      return true;
    }
  }

  private async reconcileOnce(uid: string): Promise<'done' | 'again' | 'wait'> {
    const row = await findInstanceByUid(this.store, uid);
    if (!row) {
      await forgetLease(this.store, LEASE, uid);
      return 'done';
    }
    // Run by another Pier node (which sees the change on its next resync).
    if (row.node_id !== this.options.nodeId) return 'done';
    const topology = topologyOf(row.status);
    const observed = await this.engine.observe(uid, topology.primary);
    // A failover under way, or maybe due: the primary is down, or one was asked for.
    const maybeDue =
      topology.secondaries.length > 0 &&
      (!observed.running || (row.spec.failover_requests ?? 0) > topology.failovers);
    if (!row.spec.deleted && (topology.failover || maybeDue)) {
      const reason =
        topology.failover?.reason ??
        failoverReason(
          row.spec,
          topology,
          observed,
          await this.engine.observeReplication(uid, topology.primary, topology.secondaries),
        );
      if (reason) {
        await this.nodes.failover(row, reason);
        // Its old primary is down for good: the next resync watches the new one.
        this.synchronousPrimaries.delete(uid);
        return 'again';
      }
    }
    const plan = planInstance(row.spec, row.status, observed);
    if (plan.waitForReady) return 'wait';
    const status: InstanceStatus = { ...row.status };
    delete status.message;
    delete status.error_kind;
    if (plan.message) status.message = plan.message;
    // Nothing to do and nothing new to say: leave the row alone.
    if (
      plan.steps.length === 0 &&
      row.state === plan.done &&
      row.observed_generation === row.generation &&
      row.status.message === status.message &&
      row.status.error_kind === undefined
    ) {
      await this.afterPrimary(row, plan.done);
      return 'done';
    }
    if (plan.steps.length > 0 && row.state !== plan.progress) {
      if (!(await this.report(row, plan.progress, status, false))) return 'again';
    }
    const instance: EngineInstance = {
      uid,
      name: row.name,
      capacity: row.spec.capacity,
      node: topology.primary,
      primary: topology.primary,
      ...(row.spec.compute_units ? { computeUnits: row.spec.compute_units } : {}),
      ...(row.spec.source_uid ? { sourceUid: row.spec.source_uid } : {}),
      ...(row.spec.standby_of ? { standbyOf: row.spec.standby_of } : {}),
    };
    for (const step of plan.steps) {
      if (step === 'forget') {
        const forgotten = await deleteInstanceRow(this.store, uid, row.generation);
        if (forgotten) {
          await forgetLease(this.store, LEASE, uid);
          this.emit('changed', uid);
        }
        return forgotten ? 'done' : 'again';
      }
      const started = performance.now();
      await this.apply(step, instance, row, status);
      if (!(await this.renew(uid))) return 'done';
      if (process.env.PIER_TRACE)
        this.log(`${row.name}: ${step} ${(performance.now() - started).toFixed(1)} ms`);
    }
    if (!(await this.report(row, plan.done, status, true))) return 'again';
    await this.afterPrimary(row, plan.done);
    return 'done';
  }

  /** Once the primary is where the plan wanted it: the secondaries follow. */
  private async afterPrimary(row: InstanceRow, done: InstanceRow['state']): Promise<void> {
    const topology = topologyOf(row.status);
    if (row.spec.deleted || (row.spec.node_count < 2 && topology.secondaries.length === 0)) return;
    if (done === 'AVAILABLE') await this.nodes.reconcileSecondaries(row);
    else if (done === 'STOPPED') await this.nodes.stopSecondaries(row);
  }

  private async apply(
    step: Step,
    instance: EngineInstance,
    row: InstanceRow,
    status: InstanceStatus,
  ): Promise<void> {
    switch (step) {
      case 'provision': {
        if (row.spec.parent) {
          status.effective_lsn = await this.restoreChild(instance, row.spec.parent);
        } else {
          const made = await this.engine.provision(instance);
          if (made?.sourceLsn) status.source_lsn = made.sourceLsn;
        }
        status.provisioned = true;
        return;
      }
      case 'configure':
        await this.engine.configure(instance);
        await this.nodes.restartSecondaries(row, true);
        // Settings on disk apply at the next start; a stopped instance counts them as applied.
        if (row.spec.stopped) applied(status, instance);
        return;
      case 'start':
        await this.nodes.beforePrimaryRestart(row);
        await this.engine.start(instance);
        applied(status, instance);
        status.wal_archiving = true;
        return;
      case 'restart':
        await this.nodes.beforePrimaryRestart(row);
        await this.engine.stop(instance.uid, instance.node);
        await this.engine.start(instance);
        // The secondaries restart with the new settings once the primary is back.
        await this.nodes.restartSecondaries(row, false);
        applied(status, instance);
        status.wal_archiving = true;
        return;
      case 'stop':
        await this.nodes.beforePrimaryRestart(row);
        await this.engine.stop(instance.uid);
        return;
      case 'bootstrap-roles':
        // A standby is read-only: its roles are its primary's.
        if (instance.standbyOf) {
          status.roles_ready = true;
          return;
        }
        await this.engine.ensureLoginRole(instance.uid, row.creator, { superuser: true });
        status.roles_ready = true;
        return;
      case 'destroy':
        await this.engine.destroy(instance.uid);
        // Without purge the archive outlives the instance for its retention window (backups/scheduler.ts).
        if (row.spec.purge) {
          await this.engine.backups.removeArchive(instance.uid);
          await deleteArchiveRow(this.store, instance.uid);
        }
        return;
      case 'forget':
        return;
    }
  }

  /**
   * Restores a point-in-time child from its parent's archive. The parent, if
   * it runs here, first seals its WAL so the target is in the archive (a
   * branch at "now" does not wait for a segment to fill). A restore cut short
   * (kill -9) leaves only a `.partial` copy, which the next pass starts over.
   */
  private async restoreChild(instance: EngineInstance, parent: ParentRef): Promise<string> {
    const parentRow = await findInstanceByUid(this.store, parent.uid);
    if (
      parentRow &&
      parentRow.node_id === this.options.nodeId &&
      (await this.engine.observe(parent.uid, topologyOf(parentRow.status).primary)).ready
    ) {
      await this.engine.sealWal(parent.uid);
    }
    const { effectiveLsn } = await this.engine.restore(instance, {
      parentUid: parent.uid,
      backupId: parent.backup_id,
      target: parent.target,
    });
    return effectiveLsn;
  }

  private async report(row: InstanceRow, state: InstanceRow['state'], status: InstanceStatus, done: boolean) {
    await this.options.beforeReport?.(row.uid, state);
    // The topology is recorded as it changes (reconcile/nodes.ts): the row holds the latest.
    const current = { ...status, topology: row.status.topology };
    const written = await updateInstanceStatus(this.store, row.uid, row.generation, state, current, done);
    if (written) {
      row.state = state;
      this.emit('changed', row.uid);
    }
    return written;
  }

  /**
   * Records a failed pass in the instance's status (see failureStatus). The
   * state is left as the last pass reported it.
   */
  private async recordFailure(uid: string, error: unknown): Promise<void> {
    try {
      const row = await findInstanceByUid(this.store, uid);
      if (!row) return;
      const status = { ...row.status, ...failureStatus(error) };
      await updateInstanceStatus(this.store, uid, row.generation, row.state, status, false);
    } catch (cause) {
      // The store itself failing is why the pass failed, often: the next pass records it.
      noteFailure('reconciler.record-failure', cause);
    }
  }

  private log(message: string): void {
    this.options.log?.(message);
  }
}

/** Records the sizing the server now runs with (or will at its next start). */
function applied(status: InstanceStatus, instance: EngineInstance): void {
  status.applied_capacity = instance.capacity;
  if (instance.computeUnits) status.applied_compute_units = instance.computeUnits;
  else delete status.applied_compute_units;
}
