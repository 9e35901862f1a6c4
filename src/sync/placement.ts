/**
 * Which pipelines a Pier node runs, decided from what the store says at one
 * moment: pure, so every rule is tested without processes.
 *
 * - A node always wants the pipelines of its own instances.
 * - A node whose heartbeat stopped (killed, crashed, its store connection
 *   lost) leaves its pipelines to the live nodes that can reach their
 *   instances (a Pier process on the same host reaches a dead process's
 *   Postgres servers, which outlive it, through their sockets). The live
 *   nodes on that host share them: each takes at most its share.
 * - Once the instance's own node is alive again, a pipeline taken over is
 *   handed back; one whose instance went out of reach is let go.
 *
 * The leases (store/leases.ts) still decide who runs what: this only says
 * which leases a node tries to claim and which it gives back.
 */
export interface PlacementInput {
  /** This node. */
  me: string;
  /** Every pipeline, with the node its instance runs on and the holder of its lease. */
  pipelines: readonly { id: string; node_id: string | null; holder: string | null }[];
  /** The nodes alive now (this one among them). */
  alive: ReadonlySet<string>;
  /** Whether this process can reach the instance of a pipeline now. */
  reachable: (pipelineId: string) => boolean;
  /** The pipelines this node runs now. */
  running: ReadonlySet<string>;
  /** Live nodes on this host, this one included: they share a dead node's pipelines. */
  peersOnHost: number;
}

export interface Placement {
  /** Leases to claim or renew: the node's own pipelines and its share of the dead nodes' ones. */
  claim: string[];
  /** Leases to give back: taken-over pipelines whose node is back, or whose instance is out of reach. */
  release: string[];
  /**
   * Pipelines nobody runs and this node cannot take: their node is dead,
   * their instance out of this node's reach, and no live node holds them.
   * Their tables' status says so, until their node is back.
   */
  stranded: string[];
}

export function placePipelines(input: PlacementInput): Placement {
  const claim: string[] = [];
  const release: string[] = [];
  const stranded: string[] = [];
  const orphans: string[] = [];
  const heldElsewhere = new Set<string>();
  for (const pipeline of input.pipelines) {
    if (pipeline.node_id === input.me) {
      claim.push(pipeline.id);
      continue;
    }
    // An instance no node has claimed yet is nobody's to take over.
    const homeAlive = pipeline.node_id === null || input.alive.has(pipeline.node_id);
    const canReach = !homeAlive && input.reachable(pipeline.id);
    if (pipeline.holder && pipeline.holder !== input.me && input.alive.has(pipeline.holder))
      heldElsewhere.add(pipeline.id);
    if (canReach) orphans.push(pipeline.id);
    else if (input.running.has(pipeline.id)) release.push(pipeline.id);
    if (!homeAlive && !canReach && !heldElsewhere.has(pipeline.id)) stranded.push(pipeline.id);
  }
  // Keep the ones already run here, then take new ones up to this node's share.
  const share = Math.ceil(orphans.length / Math.max(1, input.peersOnHost));
  const kept = orphans.filter((id) => input.running.has(id));
  const fresh = orphans.filter((id) => !input.running.has(id) && !heldElsewhere.has(id));
  claim.push(...kept, ...fresh.slice(0, Math.max(0, share - kept.length)));
  return { claim, release, stranded };
}
