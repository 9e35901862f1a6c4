/**
 * Delta log actions, named and shaped as in PROTOCOL.md ("Actions"). Actions
 * arrive either as JSON lines (commits, compactions, JSON checkpoints) or as
 * rows of parquet checkpoints and sidecars; `actionsFromRecord` turns both
 * into the same typed values (longs as numbers: sizes and versions fit).
 */

/** `deletionVector` of `add` / `remove` ("Deletion Vector Descriptor Schema"). */
export interface DeletionVectorDescriptor {
  storageType: 'u' | 'i' | 'p';
  pathOrInlineDv: string;
  offset?: number;
  sizeInBytes: number;
  cardinality: number;
}

export interface AddFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
  tags?: Record<string, string | null>;
  deletionVector?: DeletionVectorDescriptor;
  baseRowId?: number;
  defaultRowCommitVersion?: number;
}

export interface RemoveFile {
  path: string;
  deletionTimestamp?: number;
  dataChange: boolean;
  partitionValues?: Record<string, string | null>;
  size?: number;
  deletionVector?: DeletionVectorDescriptor;
}

export interface AddCDCFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  dataChange: boolean;
}

export interface Metadata {
  id: string;
  name?: string;
  description?: string;
  format: { provider: string; options?: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime?: number;
}

export interface Protocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface CommitInfo {
  timestamp?: number;
  inCommitTimestamp?: number;
  operation?: string;
  [key: string]: unknown;
}

/** V2 checkpoints: a pointer to a parquet file of file actions in `_delta_log/_sidecars/`. */
export interface Sidecar {
  path: string;
  sizeInBytes: number;
  modificationTime: number;
}

interface CheckpointMetadata {
  version: number;
}

export type Action =
  | { add: AddFile }
  | { remove: RemoveFile }
  | { cdc: AddCDCFile }
  | { metaData: Metadata }
  | { protocol: Protocol }
  | { commitInfo: CommitInfo }
  | { sidecar: Sidecar }
  | { checkpointMetadata: CheckpointMetadata };

/**
 * The actions in one record: a JSON line holds exactly one, a checkpoint row
 * one non-null column. Unknown actions (txn, domainMetadata, ...) are
 * skipped, as the protocol asks of readers that do not use them.
 */
export function actionsFromRecord(record: Record<string, unknown>): Action[] {
  const actions: Action[] = [];
  for (const [key, raw] of Object.entries(record)) {
    if (raw === null || raw === undefined) continue;
    const value = raw as Record<string, unknown>;
    switch (key) {
      case 'add':
        if (value.path != null) actions.push({ add: toAddFile(value) });
        break;
      case 'remove':
        if (value.path != null) actions.push({ remove: toRemoveFile(value) });
        break;
      case 'cdc':
        if (value.path != null) actions.push({ cdc: toAddCDCFile(value) });
        break;
      case 'metaData':
        if (value.id != null || value.schemaString != null) actions.push({ metaData: toMetadata(value) });
        break;
      case 'protocol':
        if (value.minReaderVersion != null) actions.push({ protocol: toProtocol(value) });
        break;
      case 'commitInfo':
        actions.push({ commitInfo: toCommitInfo(value) });
        break;
      case 'sidecar':
        if (value.path != null) actions.push({ sidecar: toSidecar(value) });
        break;
      case 'checkpointMetadata':
        if (value.version != null) actions.push({ checkpointMetadata: { version: num(value.version) } });
        break;
    }
  }
  return actions;
}

/** Parses newline-delimited JSON actions (a commit or compaction file). */
export function actionsFromJsonLines(text: string): Action[] {
  const actions: Action[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    actions.push(...actionsFromRecord(JSON.parse(line)));
  }
  return actions;
}

function num(value: unknown): number {
  return typeof value === 'bigint' ? Number(value) : (value as number);
}

function optNum(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : num(value);
}

function stringMap(value: unknown): Record<string, string | null> {
  if (value === null || value === undefined) return {};
  if (value instanceof Map) return Object.fromEntries(value);
  return value as Record<string, string | null>;
}

function toDeletionVector(value: unknown): DeletionVectorDescriptor | undefined {
  if (value === null || value === undefined) return undefined;
  const dv = value as Record<string, unknown>;
  if (dv.storageType == null) return undefined;
  return {
    storageType: dv.storageType as DeletionVectorDescriptor['storageType'],
    pathOrInlineDv: dv.pathOrInlineDv as string,
    offset: optNum(dv.offset),
    sizeInBytes: num(dv.sizeInBytes),
    cardinality: num(dv.cardinality),
  };
}

function toAddFile(value: Record<string, unknown>): AddFile {
  return {
    path: value.path as string,
    partitionValues: stringMap(value.partitionValues),
    size: num(value.size),
    modificationTime: num(value.modificationTime),
    dataChange: value.dataChange !== false,
    stats: (value.stats as string | null) ?? undefined,
    tags: value.tags ? stringMap(value.tags) : undefined,
    deletionVector: toDeletionVector(value.deletionVector),
    baseRowId: optNum(value.baseRowId),
    defaultRowCommitVersion: optNum(value.defaultRowCommitVersion),
  };
}

function toRemoveFile(value: Record<string, unknown>): RemoveFile {
  return {
    path: value.path as string,
    deletionTimestamp: optNum(value.deletionTimestamp),
    dataChange: value.dataChange !== false,
    partitionValues: value.partitionValues ? stringMap(value.partitionValues) : undefined,
    size: optNum(value.size),
    deletionVector: toDeletionVector(value.deletionVector),
  };
}

function toAddCDCFile(value: Record<string, unknown>): AddCDCFile {
  return {
    path: value.path as string,
    partitionValues: stringMap(value.partitionValues),
    size: num(value.size),
    dataChange: value.dataChange === true,
  };
}

function toMetadata(value: Record<string, unknown>): Metadata {
  const format = (value.format as Metadata['format'] | null) ?? { provider: 'parquet' };
  return {
    id: value.id as string,
    name: (value.name as string | null) ?? undefined,
    description: (value.description as string | null) ?? undefined,
    format: {
      provider: format.provider,
      options: format.options ? (stringMap(format.options) as Record<string, string>) : {},
    },
    schemaString: value.schemaString as string,
    partitionColumns: Array.from((value.partitionColumns as string[] | null) ?? []),
    configuration: stringMap(value.configuration) as Record<string, string>,
    createdTime: optNum(value.createdTime),
  };
}

function toProtocol(value: Record<string, unknown>): Protocol {
  return {
    minReaderVersion: num(value.minReaderVersion),
    minWriterVersion: num(value.minWriterVersion),
    readerFeatures: value.readerFeatures ? Array.from(value.readerFeatures as string[]) : undefined,
    writerFeatures: value.writerFeatures ? Array.from(value.writerFeatures as string[]) : undefined,
  };
}

function toCommitInfo(value: Record<string, unknown>): CommitInfo {
  return {
    ...value,
    timestamp: optNum(value.timestamp),
    inCommitTimestamp: optNum(value.inCommitTimestamp),
    operation: (value.operation as string | undefined) ?? undefined,
  };
}

function toSidecar(value: Record<string, unknown>): Sidecar {
  return {
    path: value.path as string,
    sizeInBytes: num(value.sizeInBytes),
    modificationTime: num(value.modificationTime),
  };
}
