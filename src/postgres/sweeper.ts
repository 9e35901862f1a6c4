import type { ControlContext } from '../control/context.js';
import { noteFailure } from '../failures.js';
import type { ComponentFactory } from '../server/pier.js';
import { deleteBranchComputes } from './common.js';
import {
  deleteBranchRow,
  deleteProjectRow,
  findProject,
  listBranches,
  listExpiredBranches,
  listPurgeableBranches,
  listPurgeableProjects,
  purgeOldOperations,
} from './store.js';

const SWEEP_INTERVAL_MS = 2000;

/**
 * Removes what has run out of time: branches past their `expire_time` and
 * soft-deleted projects past their `purge_time` (their data is deleted by
 * the reconciler), and operations finished a week ago.
 */
async function sweepExpired(ctx: ControlContext): Promise<void> {
  const kicks: string[] = [];
  for (const branch of await listExpiredBranches(ctx.store)) {
    await ctx.store.transaction(async (tx) => {
      const project = await findProject(tx, branch.project_id, true);
      // The default branch and protected branches never expire (the API refuses it; a hand edit changes nothing).
      if (!project || project.spec.default_branch === branch.branch_id || branch.spec.is_protected) return;
      kicks.push(...(await deleteBranchComputes(tx, branch)));
      await deleteBranchRow(tx, branch.uid);
    });
  }
  for (const branch of await listPurgeableBranches(ctx.store)) {
    await ctx.store.transaction(async (tx) => {
      kicks.push(...(await deleteBranchComputes(tx, branch)));
      await deleteBranchRow(tx, branch.uid);
    });
  }
  for (const project of await listPurgeableProjects(ctx.store)) {
    await ctx.store.transaction(async (tx) => {
      for (const branch of await listBranches(tx, project.uid)) {
        kicks.push(...(await deleteBranchComputes(tx, branch)));
      }
      await deleteProjectRow(tx, project.uid);
    });
  }
  await purgeOldOperations(ctx.store);
  for (const uid of kicks) ctx.reconciler.kick(uid);
}

/** `pier up`'s sweeper of expired branches and purgeable projects. */
export const autoscalingSweeper: ComponentFactory = async (ctx) => {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = sweepExpired(ctx)
      .catch((error) => noteFailure('autoscaling.sweep', error))
      .finally(() => {
        running = undefined;
      });
  }, SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    close: async () => {
      clearInterval(timer);
      await running;
    },
  };
};
