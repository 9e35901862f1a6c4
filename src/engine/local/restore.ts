import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PierError } from '../../errors.js';
import type { RestoreSource } from '../engine.js';
import {
  type ClusterPaths,
  observeCluster,
  SOCKET_PORT,
  startCluster,
  stopCluster,
  writeClusterSettings,
} from './cluster.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';

/** How long recovery may take before the restore is given up (and retried by the next pass). */
const RECOVERY_TIMEOUT_MS = 30 * 60_000;

export interface RecoveryPlan {
  /** The copy of the base backup to recover, at `paths.dataDir` (Pier's `.partial` name). */
  paths: ClusterPaths;
  source: RestoreSource;
  /** The parent's `restore_command`. */
  restoreCommand: string;
  /** The child's own settings (capacity, archive command): written beside the recovery settings. */
  settings: Record<string, string | number | boolean>;
}

/**
 * Point-in-time recovery of a base-backup copy: `recovery.signal`, the
 * recovery target (`recovery_target_lsn` or `recovery_target_time`,
 * inclusive, `recovery_target_action = promote`), the parent's archive as
 * `restore_command`; start, wait for the promotion, stop cleanly. Returns the
 * LSN the new timeline branched at (from its history file).
 */
export async function recoverToTarget(runtime: PostgresRuntime, plan: RecoveryPlan): Promise<string> {
  const { dataDir } = plan.paths;
  const { target } = plan.source;
  // No target: archive recovery replays every archived segment, then promotes.
  const recoveryTarget: Record<string, string | boolean> =
    'lsn' in target
      ? { recovery_target_lsn: target.lsn }
      : 'time' in target
        ? { recovery_target_time: target.time }
        : {};
  if ('lsn' in target || 'time' in target) {
    // Databricks' child at an LSN or a time holds what was committed up to and at it.
    recoveryTarget.recovery_target_inclusive = true;
    recoveryTarget.recovery_target_action = 'promote';
  }
  await writeClusterSettings(runtime, dataDir, {
    ...plan.settings,
    restore_command: plan.restoreCommand,
    ...recoveryTarget,
    recovery_target_timeline: 'latest',
  });
  await writeFile(join(dataDir, 'recovery.signal'), '');
  await handToPostgres(runtime, join(dataDir, 'recovery.signal'), 0o600);
  await startCluster(runtime, plan.paths, { timeoutMs: RECOVERY_TIMEOUT_MS }).catch((cause) => {
    throw recoveryFailed(cause);
  });
  try {
    await waitForPromotion(plan.paths);
  } finally {
    await stopCluster(dataDir);
  }
  await rm(join(dataDir, 'postmaster.opts'), { force: true });
  return branchLsn(dataDir);
}

async function waitForPromotion(paths: ClusterPaths): Promise<void> {
  const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!(await observeCluster(paths.dataDir)).running) {
      throw recoveryFailed(
        new Error((await readFile(paths.logFile, 'utf8')).split('\n').slice(-6).join('\n')),
      );
    }
    const client = new pg.Client({
      host: paths.socketDir,
      port: SOCKET_PORT,
      user: 'postgres',
      database: 'postgres',
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ recovering: boolean }>(
        'SELECT pg_is_in_recovery() AS recovering',
      );
      if (!rows[0].recovering) return;
    } catch {
      // Not accepting connections yet (or shutting down after a failed recovery): look again.
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(20);
  }
  throw new PierError(
    'INTERNAL_ERROR',
    `Recovery did not finish within ${RECOVERY_TIMEOUT_MS / 60_000} minutes`,
  );
}

function recoveryFailed(cause: unknown): PierError {
  return new PierError('INTERNAL_ERROR', `Point-in-time recovery failed: ${(cause as Error).message}`, {
    cause,
  });
}

/** The switch point of the newest timeline's history file: where the child left its parent's history. */
async function branchLsn(dataDir: string): Promise<string> {
  const histories = (await readdir(join(dataDir, 'pg_wal')))
    .filter((name) => /^[0-9A-F]{8}\.history$/.test(name))
    .sort();
  const newest = histories.at(-1);
  if (!newest)
    throw new PierError('INTERNAL_ERROR', 'The restored cluster has no timeline history after promotion');
  const lines = (await readFile(join(dataDir, 'pg_wal', newest), 'utf8')).trim().split('\n');
  const switchPoint = lines.at(-1)?.split('\t')[1];
  if (!switchPoint || !/^[0-9A-F]+\/[0-9A-F]+$/.test(switchPoint))
    throw new PierError('INTERNAL_ERROR', `Unexpected timeline history in ${newest}`);
  return switchPoint;
}
