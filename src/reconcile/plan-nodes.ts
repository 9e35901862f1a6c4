import { compareLsn } from '../backups/lsn.js';
import type { EngineObservation, ReplicationObservation } from '../engine/engine.js';
import type { InstanceSpec, InstanceTopology } from '../instances/store.js';

/** Node numbers of an instance: the primary and up to two secondaries. */
const NODES = [0, 1, 2];

/**
 * The secondaries an instance should have: `node_count - 1` of the nodes
 * that are not the primary, lowest first (after a failover from node 0 to
 * node 1, node 0 comes back as the secondary).
 *
 * @example
 * desiredSecondaries({ ...spec, node_count: 2 }, { ...topology, primary: 1 }) // [0]
 */
export function desiredSecondaries(
  spec: Pick<InstanceSpec, 'node_count'>,
  topology: InstanceTopology,
): number[] {
  return NODES.filter((node) => node !== topology.primary).slice(0, Math.max(0, spec.node_count - 1));
}

export type FailoverReason = 'primary_died' | 'requested';

/**
 * Whether to fail over now, and why. The primary's postmaster having died
 * (a crash, kill -9: not a clean shutdown, which is restarted in place) is
 * a reason only while commits were synchronous: a secondary then holds
 * every acknowledged commit. Without a secondary that could take over, the
 * primary is restarted in place instead.
 */
export function failoverReason(
  spec: InstanceSpec,
  topology: InstanceTopology,
  primary: EngineObservation,
  replication: ReplicationObservation,
): FailoverReason | undefined {
  if (spec.deleted || spec.stopped) return undefined;
  const died = primary.provisioned && !primary.running && !primary.shutDownCleanly;
  if (died && topology.sync.length > 0) {
    return failoverTarget('primary_died', topology, replication) === undefined ? undefined : 'primary_died';
  }
  if ((spec.failover_requests ?? 0) > topology.failovers && primary.ready) {
    return failoverTarget('requested', topology, replication) === undefined ? undefined : 'requested';
  }
  return undefined;
}

/**
 * The secondary to promote: of those that may hold every acknowledged
 * commit (the synchronous set; for a requested failover of a primary that
 * stopped cleanly, any standby), the one that received the most WAL; the
 * lowest node on a tie.
 */
export function failoverTarget(
  reason: FailoverReason,
  topology: InstanceTopology,
  replication: ReplicationObservation,
): number | undefined {
  const eligible =
    reason === 'primary_died' || topology.sync.length > 0 ? topology.sync : topology.secondaries;
  const candidates = replication.standbys
    .filter(
      (node) => eligible.includes(node) && node !== topology.primary && !topology.reclone.includes(node),
    )
    .sort((a, b) => compareLsn(replication.receivedLsn[b], replication.receivedLsn[a]) || a - b);
  return candidates[0];
}

/**
 * The streaming secondaries whose replay is more than `limitMs` behind the
 * primary: `read_only_dns` skips them (they still count for
 * `effective_node_count` and stay synchronous: they have every commit, only
 * not applied yet).
 *
 * @example
 * laggingSecondaries([1, 2], { 1: 45_000, 2: 3 }, 30_000) // [1]
 */
export function laggingSecondaries(
  streaming: number[],
  replayLagMs: Record<number, number>,
  limitMs: number,
): number[] {
  return sortedNodes(streaming.filter((node) => (replayLagMs[node] ?? 0) > limitMs));
}

/** How to move `synchronous_standby_names` from the recorded set to the streaming one. */
export type SyncChange =
  | { kind: 'none' }
  /** None left: record the empty set first, then apply it (the record stays a superset). */
  | { kind: 'clear' }
  /** From none: apply, wait until one of them has all WAL so far, then record. */
  | { kind: 'start'; nodes: number[] }
  /** Record the union, apply the new set, record it. */
  | { kind: 'change'; nodes: number[] };

export function planSyncChange(recorded: number[], streaming: number[]): SyncChange {
  if (sameNodes(recorded, streaming)) return { kind: 'none' };
  if (streaming.length === 0) return { kind: 'clear' };
  if (recorded.length === 0) return { kind: 'start', nodes: sortedNodes(streaming) };
  return { kind: 'change', nodes: sortedNodes(streaming) };
}

export function sameNodes(a: number[], b: number[]): boolean {
  return a.length === b.length && sortedNodes(a).every((node, i) => node === sortedNodes(b)[i]);
}

export function sortedNodes(nodes: Iterable<number>): number[] {
  return [...new Set(nodes)].sort((a, b) => a - b);
}
