import { setTimeout as sleep } from 'node:timers/promises';
import { compareLsn } from '../backups/lsn.js';
import type { Engine, EngineInstance } from '../engine/engine.js';
import { PierError } from '../errors.js';
import {
  type InstanceRow,
  type InstanceState,
  type InstanceTopology,
  recordInstanceTopology,
  topologyOf,
} from '../instances/store.js';
import type { Store } from '../store/store.js';
import {
  desiredSecondaries,
  type FailoverReason,
  failoverTarget,
  laggingSecondaries,
  planSyncChange,
  sameNodes,
  sortedNodes,
} from './plan-nodes.js';

/** How long a secondary that starts synchronous replication may take to have all WAL so far. */
const CATCH_UP_MS = 5000;

/**
 * A readable secondary whose replay is further behind than this gets no new
 * read-only connection (docs/high-availability.md). Above Postgres' default
 * `max_standby_streaming_delay` (30 s), so a replay paused for a conflicting
 * query alone does not trip it.
 */
export const READ_LAG_LIMIT_MS = Number(process.env.PIER_READ_LAG_LIMIT_SECONDS ?? 60) * 1000;

/**
 * Slows each failover step, so a crash test can kill Pier between them
 * (docs/high-availability.md). Unset in production.
 */
const STEP_DELAY_MS = Number(process.env.PIER_FAILOVER_STEP_DELAY_MS ?? 0);

/**
 * The secondaries and failovers of one instance: what the reconciler does
 * beyond its primary (docs/high-availability.md). Every change of the
 * topology is recorded in the store before the change it allows (a fence
 * before a promotion, a wider synchronous set before a narrower one), so a
 * Pier killed between two steps redoes or finishes them.
 */
export class InstanceNodes {
  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly hooks: {
      /** Told of a state before it is written (the proxy's routing table). */
      beforeState: (uid: string, state: InstanceState) => Promise<void> | void;
      changed: (uid: string) => void;
      log: (message: string) => void;
    },
  ) {}

  /** Writes the topology (and a state) and keeps the row read by the pass up to date. */
  async record(row: InstanceRow, topology: InstanceTopology, state?: InstanceState): Promise<void> {
    if (state) await this.hooks.beforeState(row.uid, state);
    await recordInstanceTopology(this.store, row.uid, topology, state);
    row.status = { ...row.status, topology };
    if (state) row.state = state;
    this.hooks.changed(row.uid);
  }

  /**
   * Fence, promote, repoint: the failover of `row` from its primary. Resumes
   * a recorded one at the step it reached. The old primary is re-cloned
   * afterwards, by `reconcileSecondaries`.
   */
  async failover(row: InstanceRow, reason: FailoverReason): Promise<void> {
    let topology = topologyOf(row.status);
    const started = performance.now();
    if (!topology.failover) {
      topology = {
        ...topology,
        failover: { from: topology.primary, fenced: false, reason, started_at: new Date().toISOString() },
      };
      await this.record(row, topology, 'FAILING_OVER');
      this.hooks.log(`${row.name}: failing over from node ${topology.primary} (${reason})`);
      await stepDelay();
    }
    let record = topology.failover as NonNullable<InstanceTopology['failover']>;
    if (!record.fenced) {
      await this.engine.fence(row.uid, record.from);
      record = { ...record, fenced: true };
      topology = { ...topology, failover: record };
      await this.record(row, topology);
      await stepDelay();
    }
    if (record.to === undefined) {
      const replication = await this.engine.observeReplication(row.uid, record.from, topology.secondaries);
      const to = failoverTarget(record.reason, topology, replication);
      if (to === undefined) {
        // None was promoted, so the old primary may be one again: it restarts with its own data.
        await this.engine.unfence(row.uid, record.from);
        await this.record(row, {
          ...topology,
          failover: undefined,
          sync: [],
          streaming: [],
          // A request is answered too (not retried in a loop): the API refuses a new one until a secondary streams.
          failovers: Math.max(topology.failovers, row.spec.failover_requests ?? 0),
        });
        throw new PierError(
          'INVALID_STATE',
          `No secondary of '${row.name}' could take over (none runs as a standby): its primary restarts in place instead.`,
        );
      }
      record = { ...record, to };
      topology = { ...topology, failover: record };
      await this.record(row, topology);
    }
    const to = record.to as number;
    const target = await this.engine.observe(row.uid, to);
    // A target whose server stopped meanwhile (Pier restarted) starts as it was: a standby, or already promoted.
    if (!target.running) await this.engine.start({ ...this.instance(row), node: to, primary: record.from });
    await this.engine.promote(row.uid, to);
    await stepDelay();
    const others = topology.secondaries.filter((node) => node !== to);
    await this.engine.ensureSlots(row.uid, to, others);
    await this.record(row, {
      primary: to,
      secondaries: sortedNodes([...others, record.from]),
      reclone: [record.from],
      sync: [],
      streaming: [],
      failovers: Math.max(topology.failovers, row.spec.failover_requests ?? 0),
    });
    this.hooks.log(
      `${row.name}: node ${to} is the primary (${(performance.now() - started).toFixed(0)} ms after the failover began)`,
    );
  }

  /**
   * Brings the secondaries to what the spec asks: made from a base backup,
   * running, streaming, and the synchronous set following those that stream.
   * Runs once the primary is AVAILABLE.
   */
  async reconcileSecondaries(row: InstanceRow): Promise<void> {
    let topology = topologyOf(row.status);
    const desired = desiredSecondaries(row.spec, topology);
    for (const node of topology.secondaries.filter((n) => !desired.includes(n))) {
      if (topology.sync.includes(node))
        await this.changeSync(
          row,
          topology.sync.filter((n) => n !== node),
        );
      await this.engine.removeSecondary(row.uid, node, topology.primary);
      topology = topologyOf(row.status);
      await this.record(row, {
        ...topology,
        secondaries: topology.secondaries.filter((n) => n !== node),
        streaming: topology.streaming.filter((n) => n !== node),
      });
    }
    const failures: unknown[] = [];
    for (const node of desired) {
      // One secondary that cannot be made or started must not hold up the others, nor the
      // synchronous set's following those that stream (commits would wait on a dead node).
      await this.ensureSecondary(row, node).catch((error) => failures.push(error));
    }
    await this.followReplication(row, desired);
    if (failures.length > 0) throw failures[0];
  }

  private async ensureSecondary(row: InstanceRow, node: number): Promise<void> {
    let topology = topologyOf(row.status);
    const observed = await this.engine.observe(row.uid, node);
    const instance = { ...this.instance(row), node, primary: topology.primary };
    if (!observed.provisioned || !topology.secondaries.includes(node) || topology.reclone.includes(node)) {
      if (topology.sync.includes(node))
        await this.changeSync(
          row,
          topology.sync.filter((n) => n !== node),
        );
      await this.engine.provisionSecondary(instance);
      topology = topologyOf(row.status);
      await this.record(row, {
        ...topology,
        secondaries: sortedNodes([...topology.secondaries, node]),
        reclone: topology.reclone.filter((n) => n !== node),
      });
    } else if (!observed.running) {
      await this.engine.configure(instance);
    }
    await this.engine.start(instance);
  }

  /** Records which secondaries stream and moves the synchronous set to them. */
  private async followReplication(row: InstanceRow, desired: number[]): Promise<void> {
    let topology = topologyOf(row.status);
    let replication = await this.engine.observeReplication(row.uid, topology.primary, desired);
    if (desired.some((node) => !replication.streaming.includes(node))) {
      // After a failover the new primary has no slots yet; their walreceivers retry until it has.
      await this.engine.ensureSlots(row.uid, topology.primary, desired);
    }
    // A secondary that just started may take a moment to stream: look again shortly.
    for (let tries = 0; tries < 20 && desired.some((n) => !replication.streaming.includes(n)); tries++) {
      await sleep(100);
      replication = await this.engine.observeReplication(row.uid, topology.primary, desired);
    }
    // Synchronous first, and only synchronous secondaries count: effective_node_count above 1
    // means a secondary holds every acknowledged commit (one still catching up counts next pass).
    await this.changeSync(row, sortedNodes(replication.streaming));
    topology = topologyOf(row.status);
    const streaming = sortedNodes(replication.streaming.filter((node) => topology.sync.includes(node)));
    const lagging = laggingSecondaries(streaming, replication.replayLagMs, READ_LAG_LIMIT_MS);
    if (!sameNodes(streaming, topology.streaming) || !sameNodes(lagging, topology.lagging ?? [])) {
      if (lagging.length > 0)
        this.hooks.log(`${row.name}: no reads routed to node(s) ${lagging.join(', ')}: replay is behind`);
      await this.record(row, { ...topology, streaming, lagging });
    }
  }

  /**
   * Moves `synchronous_standby_names` to `nodes`, keeping the recorded set a
   * superset of the applied one; a set grown from none is recorded only once
   * one of its nodes holds all WAL written so far.
   */
  async changeSync(row: InstanceRow, nodes: number[]): Promise<void> {
    const topology = topologyOf(row.status);
    const change = planSyncChange(topology.sync, nodes);
    const { uid } = row;
    switch (change.kind) {
      case 'none':
        return;
      case 'clear':
        await this.record(row, { ...topology, sync: [] });
        await this.engine.setSynchronous(uid, topology.primary, []);
        return;
      case 'start': {
        const lsn = await this.engine.setSynchronous(uid, topology.primary, change.nodes);
        const deadline = Date.now() + CATCH_UP_MS;
        while (Date.now() < deadline) {
          const seen = await this.engine.observeReplication(uid, topology.primary, change.nodes);
          const caughtUp = change.nodes.some(
            (n) => seen.receivedLsn[n] && compareLsn(seen.receivedLsn[n], lsn) >= 0,
          );
          if (caughtUp) {
            await this.record(row, { ...topology, sync: change.nodes });
            return;
          }
          await sleep(50);
        }
        this.hooks.log(
          `${row.name}: no secondary caught up within ${CATCH_UP_MS} ms; commits stay asynchronous for now`,
        );
        return;
      }
      case 'change':
        await this.record(row, { ...topology, sync: sortedNodes([...topology.sync, ...change.nodes]) });
        await this.engine.setSynchronous(uid, topology.primary, change.nodes);
        await this.record(row, { ...topologyOf(row.status), sync: change.nodes });
        return;
    }
  }

  /** Before the primary stops or restarts (its commits then wait for no one): record that first. */
  async beforePrimaryRestart(row: InstanceRow): Promise<void> {
    const topology = topologyOf(row.status);
    if (topology.sync.length > 0 || topology.streaming.length > 0)
      await this.record(row, { ...topology, sync: [], streaming: [] });
  }

  /** Stops secondaries of a stopped instance that still run (e.g. left by a crashed Pier). */
  async stopSecondaries(row: InstanceRow): Promise<void> {
    const topology = topologyOf(row.status);
    for (const node of topology.secondaries) {
      if ((await this.engine.observe(row.uid, node)).running) await this.engine.stop(row.uid, node);
    }
  }

  /** Rewrites every secondary's settings (a resize) and stops them; `reconcileSecondaries` starts them again. */
  async restartSecondaries(row: InstanceRow, configureOnly: boolean): Promise<void> {
    const topology = topologyOf(row.status);
    for (const node of topology.secondaries) {
      if (!(await this.engine.observe(row.uid, node)).provisioned) continue;
      await this.engine.configure({ ...this.instance(row), node, primary: topology.primary });
      if (!configureOnly) await this.engine.stop(row.uid, node);
    }
  }

  private instance(row: InstanceRow): EngineInstance {
    return { uid: row.uid, name: row.name, capacity: row.spec.capacity };
  }
}

async function stepDelay(): Promise<void> {
  if (STEP_DELAY_MS > 0) await sleep(STEP_DELAY_MS);
}
