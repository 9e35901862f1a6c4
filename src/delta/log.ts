import { PierError } from '../errors.js';
import {
  type Action,
  type AddFile,
  actionsFromJsonLines,
  type CommitInfo,
  type Metadata,
  type Protocol,
} from './actions.js';
import { type Checkpoint, readCheckpoint } from './checkpoint.js';
import { deletionVectorUniqueId } from './deletion-vector.js';
import type { FileStatus, TableStorage } from './storage.js';

/**
 * The transaction log (`_delta_log/`): which files make up a version
 * (listing), and what that version is (replay, PROTOCOL.md "Action
 * Reconciliation").
 */

const COMMIT = /^(\d{20})\.json$/;
const CLASSIC_CHECKPOINT = /^(\d{20})\.checkpoint\.parquet$/;
const MULTI_PART_CHECKPOINT = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const UUID_CHECKPOINT = /^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$/;
const COMPACTION = /^(\d{20})\.(\d{20})\.compacted\.json$/;

/** A commit file: the actions of one version. */
interface CommitFile {
  version: number;
  file: FileStatus;
}

/** Log compaction file `x.y.compacted.json`: the reconciled actions of versions x..y. */
interface CompactionFile {
  from: number;
  to: number;
  file: FileStatus;
}

/** What the log directory holds, as parsed file names (hidden, `.crc` and other files ignored). */
export interface LogListing {
  commits: Map<number, CommitFile>;
  checkpoints: Checkpoint[];
  compactions: CompactionFile[];
}

/** The files to replay for one version: a checkpoint (if any) and the commits or compactions after it. */
export interface LogSegment {
  version: number;
  checkpoint?: Checkpoint;
  /** Newest first: each is a commit or a compaction, to be replayed in this order. */
  newestFirst: FileStatus[];
}

export function versionFileName(version: number): string {
  return String(version).padStart(20, '0');
}

/** Lists `_delta_log`, optionally from a version on (as an object store lists with start-after). */
export async function listLog(storage: TableStorage, fromVersion?: number): Promise<LogListing> {
  const files = await storage.list(
    '_delta_log',
    fromVersion === undefined ? undefined : versionFileName(fromVersion),
  );
  const commits = new Map<number, CommitFile>();
  const classic = new Map<number, string>();
  const multiPart = new Map<string, string[]>();
  const checkpoints: Checkpoint[] = [];
  const compactions: CompactionFile[] = [];
  for (const file of files) {
    const commit = COMMIT.exec(file.name);
    const classicCheckpoint = CLASSIC_CHECKPOINT.exec(file.name);
    const part = MULTI_PART_CHECKPOINT.exec(file.name);
    const uuidCheckpoint = UUID_CHECKPOINT.exec(file.name);
    const compaction = COMPACTION.exec(file.name);
    if (commit) {
      commits.set(Number(commit[1]), { version: Number(commit[1]), file });
    } else if (classicCheckpoint) {
      classic.set(Number(classicCheckpoint[1]), file.name);
    } else if (part) {
      const key = `${Number(part[1])}/${Number(part[3])}`;
      const parts = multiPart.get(key) ?? [];
      parts[Number(part[2]) - 1] = file.name;
      multiPart.set(key, parts);
    } else if (uuidCheckpoint) {
      checkpoints.push({ version: Number(uuidCheckpoint[1]), parts: [file.name] });
    } else if (compaction) {
      compactions.push({ from: Number(compaction[1]), to: Number(compaction[2]), file });
    }
  }
  for (const [version, name] of classic) checkpoints.push({ version, parts: [name] });
  for (const [key, parts] of multiPart) {
    const [version, total] = key.split('/').map(Number);
    // A multi-part checkpoint is not written atomically: ignore it unless every part is there.
    const complete = parts.length === total && parts.every((part) => part !== undefined);
    if (complete) checkpoints.push({ version, parts });
  }
  checkpoints.sort((a, b) => a.version - b.version);
  return { commits, checkpoints, compactions };
}

/** `_last_checkpoint`'s version, or undefined when it is missing, empty or unreadable (then: list). */
async function readLastCheckpointVersion(storage: TableStorage): Promise<number | undefined> {
  const bytes = await storage.readIfExists('_delta_log/_last_checkpoint');
  if (bytes === null || bytes.byteLength === 0) return undefined;
  try {
    const version = JSON.parse(Buffer.from(bytes).toString('utf8')).version;
    return Number.isInteger(version) && version >= 0 ? version : undefined;
  } catch {
    // A torn or corrupt hint is expected after a crashed writer; listing is the truth.
    return undefined;
  }
}

/**
 * The files that make up `version` (latest when undefined). Errors name the
 * problem: a version that does not exist, or a gap in the commits.
 */
export async function logSegment(storage: TableStorage, version?: number): Promise<LogSegment> {
  const hint = await readLastCheckpointVersion(storage);
  if (hint !== undefined && (version === undefined || hint <= version)) {
    const listing = await listLog(storage, hint);
    if (listing.checkpoints.some((checkpoint) => checkpoint.version === hint)) {
      return segmentFrom(storage, listing, version);
    }
  }
  return segmentFrom(storage, await listLog(storage), version);
}

function segmentFrom(storage: TableStorage, listing: LogListing, requested?: number): LogSegment {
  const versions = [...listing.commits.keys(), ...listing.checkpoints.map((c) => c.version)];
  if (versions.length === 0) {
    throw new PierError(
      'RESOURCE_DOES_NOT_EXIST',
      `No Delta table at ${storage.location}: _delta_log has no commits.`,
    );
  }
  const latest = Math.max(...versions);
  const version = requested ?? latest;
  if (version > latest || version < 0) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Delta table at ${storage.location} has no version ${version}; the latest version is ${latest}.`,
    );
  }
  const checkpoint = listing.checkpoints.filter((c) => c.version <= version).at(-1);
  const newestFirst: FileStatus[] = [];
  let next = checkpoint ? checkpoint.version + 1 : 0;
  const oldestFirst: FileStatus[] = [];
  while (next <= version) {
    const compaction = listing.compactions
      .filter((c) => c.from === next && c.to <= version)
      .sort((a, b) => b.to - a.to)[0];
    if (compaction) {
      oldestFirst.push(compaction.file);
      next = compaction.to + 1;
      continue;
    }
    const commit = listing.commits.get(next);
    if (!commit) {
      throw new PierError(
        'INVALID_STATE',
        `Delta log of the table at ${storage.location} is missing version ${next} ` +
          `(needed to read version ${version}); versions must be contiguous. The table is corrupt or its log was truncated.`,
      );
    }
    oldestFirst.push(commit.file);
    next += 1;
  }
  for (let i = oldestFirst.length - 1; i >= 0; i--) newestFirst.push(oldestFirst[i]);
  return { version, checkpoint, newestFirst };
}

/** A reconstructed table state. */
export interface LogReplay {
  version: number;
  protocol: Protocol;
  metadata: Metadata;
  /** Active data files (after reconciliation), in log order. */
  files: AddFile[];
}

/**
 * Action reconciliation, newest first: the newest `protocol` and `metaData`
 * win; a file (keyed by path and deletion vector id) is live if the newest
 * action for its key is an `add`.
 */
export async function replay(storage: TableStorage, segment: LogSegment): Promise<LogReplay> {
  let protocol: Protocol | undefined;
  let metadata: Metadata | undefined;
  const seen = new Set<string>();
  const files: AddFile[] = [];
  const take = (actions: Action[], fromCheckpoint: boolean) => {
    for (const action of actions) {
      if ('add' in action) {
        const key = fileKey(action.add.path, action.add.deletionVector);
        if (!seen.has(key)) {
          if (!fromCheckpoint) seen.add(key);
          files.push(action.add);
        }
      } else if ('remove' in action) {
        if (!fromCheckpoint) seen.add(fileKey(action.remove.path, action.remove.deletionVector));
      } else if ('protocol' in action) {
        protocol ??= action.protocol;
      } else if ('metaData' in action) {
        metadata ??= action.metaData;
      }
    }
  };
  for (const file of segment.newestFirst) {
    take(await readCommitActions(storage, file.name), false);
  }
  if (segment.checkpoint) take(await readCheckpoint(storage, segment.checkpoint), true);
  if (!protocol || !metadata) {
    throw new PierError(
      'INVALID_STATE',
      `Delta table at ${storage.location} has no ${protocol ? 'metaData' : 'protocol'} action up to version ${segment.version}.`,
    );
  }
  files.reverse();
  return { version: segment.version, protocol, metadata, files };
}

function fileKey(path: string, dv: AddFile['deletionVector']): string {
  return `${path}\u0000${deletionVectorUniqueId(dv)}`;
}

/** Actions of one commit or compaction file in `_delta_log`. */
export async function readCommitActions(storage: TableStorage, name: string): Promise<Action[]> {
  const bytes = await storage.readIfExists(`_delta_log/${name}`);
  if (bytes === null) {
    throw new PierError(
      'INVALID_STATE',
      `Delta log file ${name} of the table at ${storage.location} disappeared.`,
    );
  }
  return actionsFromJsonLines(Buffer.from(bytes).toString('utf8'));
}

/**
 * When a commit happened, in milliseconds: the in-commit timestamp when the
 * table writes them, else `commitInfo.timestamp` (file modification times do
 * not survive copies of a table), else the file's modification time.
 */
export function commitTimestamp(actions: Action[], file: FileStatus): number {
  const commitInfo = actions.find(
    (action): action is { commitInfo: CommitInfo } => 'commitInfo' in action,
  )?.commitInfo;
  return commitInfo?.inCommitTimestamp ?? commitInfo?.timestamp ?? file.modificationTime;
}
