import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ControlContext } from '../control/context.js';
import { resumeSuspended } from '../instances/scale-to-zero.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByUid, type InstanceRow } from '../instances/store.js';
import { instanceConnection } from '../nodes/service.js';
import { badRequest } from './fields.js';
import type { BranchRow } from './store.js';

const WAKE_TIMEOUT_MS = 60_000;

/**
 * Runs `work` on the branch's Postgres as its superuser (roles and
 * databases are made there). A suspended compute is woken first, as a
 * client connection would; a disabled one, or a branch without a read-write
 * endpoint, is refused.
 */
export async function onBranchServer<T>(
  ctx: ControlContext,
  branch: BranchRow,
  database: string,
  work: (client: pg.Client, connectionTo: (database: string) => Promise<pg.ClientConfig>) => Promise<T>,
): Promise<T> {
  await resumeSuspended(ctx, branch.instance_uid);
  const deadline = Date.now() + WAKE_TIMEOUT_MS;
  let instance: InstanceRow | undefined;
  for (;;) {
    instance = await findInstanceByUid(ctx.store, branch.instance_uid);
    const state = instance ? reportedState(instance) : 'DELETING';
    if (instance && state === 'AVAILABLE') break;
    if (!instance || instance.spec.stopped || state === 'FAILED' || Date.now() > deadline) {
      throw badRequest(
        `projects/${branch.project_id}/branches/${branch.branch_id} has no running read-write endpoint: create or enable one, then try again.`,
      );
    }
    await sleep(20);
  }
  const running = instance;
  const connectionTo = (name: string) => instanceConnection(ctx, running, name, 'pier autoscaling');
  const client = new pg.Client(await connectionTo(database));
  await client.connect();
  try {
    return await work(client, connectionTo);
  } finally {
    await client.end().catch(() => {});
  }
}
