import { useState } from 'preact/hooks';
import { call, seg } from './api';
import { CreateBranch } from './branch-create';
import { type Branch, BranchPanel, type Endpoint, takenFrom } from './branch-panel';
import { cuRange, formatDuration, idOf, PG, type Project, suspension } from './projects';
import { href } from './routes';
import { Badge, Confirm, ErrorText, usePoll } from './ui';

interface ProjectData {
  project: Project;
  branches: Branch[];
  endpoints: Record<string, Endpoint[]>;
}

async function loadProject(id: string): Promise<ProjectData> {
  const base = `${PG}/projects/${seg(id)}`;
  const [project, listed] = await Promise.all([
    call<Project>('GET', base),
    call<{ branches?: Branch[] }>('GET', `${base}/branches?page_size=100`),
  ]);
  const branches = listed.branches ?? [];
  const endpoints: Record<string, Endpoint[]> = {};
  await Promise.all(
    branches.map(async (b) => {
      const page = await call<{ endpoints?: Endpoint[] }>(
        'GET',
        `${base}/branches/${seg(b.status.branch_id)}/endpoints`,
      );
      endpoints[b.status.branch_id] = page.endpoints ?? [];
    }),
  );
  return { project, branches, endpoints };
}

/** Every second while a branch or endpoint is on its way to another state, every 5 s otherwise. */
function pollEvery(data: ProjectData | undefined): number {
  if (!data) return 5000;
  const busy =
    data.branches.some((b) => b.status.pending_state || b.status.current_state === 'INIT') ||
    Object.values(data.endpoints)
      .flat()
      .some((e) => e.status.pending_state || e.status.current_state === 'INIT');
  return busy ? 1000 : 5000;
}

/** The branches as a tree: children under the branch they were taken from. */
function childrenOf(branches: Branch[]): Map<string | undefined, Branch[]> {
  const ids = new Set(branches.map((b) => b.status.branch_id));
  const tree = new Map<string | undefined, Branch[]>();
  for (const b of branches) {
    const source = b.status.source_branch ? idOf(b.status.source_branch) : undefined;
    const parent = source && ids.has(source) ? source : undefined;
    tree.set(parent, [...(tree.get(parent) ?? []), b]);
  }
  return tree;
}

export function ProjectDetail({ id, branch }: { id: string; branch?: string }) {
  const [asking, setAsking] = useState<'delete' | 'branch'>();
  const [deleted, setDeleted] = useState(false);
  const { data, error, reload } = usePoll(() => loadProject(id), pollEvery, [id]);
  const selected = branch ?? (data ? idOf(data.project.status.default_branch) : undefined);
  const tree = data ? childrenOf(data.branches) : undefined;

  const renderBranches = (parent: string | undefined, depth: number) => {
    const list = tree?.get(parent) ?? [];
    if (!list.length) return null;
    return (
      <ul class="tree" aria-label={depth === 0 ? 'Branch tree' : `Branches from ${parent}`}>
        {list.map((b) => {
          const bid = b.status.branch_id;
          return (
            <li key={b.uid} data-branch={bid}>
              <div class="branch-node">
                <a href={href('projects', id, bid)} aria-current={bid === selected ? 'true' : undefined}>
                  {bid}
                </a>
                <Badge state={b.status.current_state} />
                {b.status.default ? <span class="tag">default</span> : null}
                {b.status.is_protected ? <span class="tag">protected</span> : null}
                <span class="muted from">{takenFrom(b)}</span>
              </div>
              {renderBranches(bid, depth + 1)}
            </li>
          );
        })}
      </ul>
    );
  };

  const current = data?.branches.find((b) => b.status.branch_id === selected);
  return (
    <section>
      <p class="crumbs">
        <a href={href('projects')}>Projects</a> / {id}
      </p>
      <div class="title-row">
        <h1 tabIndex={-1}>{id}</h1>
        {data ? <span class="muted">{data.project.status.display_name}</span> : null}
      </div>
      <ErrorText error={deleted ? undefined : error} />
      {data ? (
        <>
          <fieldset class="toolbar">
            <legend class="sr-only">Project actions</legend>
            <button type="button" class="primary" onClick={() => setAsking('branch')}>
              Create branch
            </button>
            <button type="button" class="danger" onClick={() => setAsking('delete')}>
              Delete project
            </button>
          </fieldset>
          <dl class="facts">
            <dt>Postgres</dt>
            <dd>{data.project.status.pg_version}</dd>
            <dt>Owner</dt>
            <dd>{data.project.status.owner}</dd>
            <dt>New endpoints</dt>
            <dd>
              {cuRange(data.project.status.default_endpoint_settings)}, suspend{' '}
              {suspension(data.project.status.default_endpoint_settings)}
            </dd>
            <dt>History kept</dt>
            <dd>{formatDuration(data.project.status.history_retention_duration)}</dd>
          </dl>
          <section aria-labelledby="branches-title">
            <h2 id="branches-title">Branches</h2>
            <nav aria-labelledby="branches-title">{renderBranches(undefined, 0)}</nav>
          </section>
          {current ? (
            <BranchPanel
              projectId={id}
              branch={current}
              endpoints={data.endpoints[current.status.branch_id] ?? []}
              reload={reload}
            />
          ) : selected ? (
            <p class="error" role="alert">
              No branch {selected} in {id}.
            </p>
          ) : null}
        </>
      ) : null}
      {asking === 'branch' && data ? (
        <CreateBranch
          projectId={id}
          branches={data.branches.map((b) => b.status.branch_id)}
          source={selected ?? idOf(data.project.status.default_branch)}
          onClose={() => setAsking(undefined)}
          onCreated={(bid) => {
            setAsking(undefined);
            reload();
            location.hash = href('projects', id, bid);
          }}
        />
      ) : null}
      {asking === 'delete' ? (
        <Confirm
          title={`Delete project ${id}?`}
          message="Its endpoints stop and the project is hidden; it can be undeleted until its history retention passes, then its data is removed."
          action="Delete"
          danger
          onConfirm={async () => {
            await call('DELETE', `${PG}/projects/${seg(id)}`);
            setDeleted(true);
            location.hash = href('projects');
          }}
          onClose={() => setAsking(undefined)}
        />
      ) : null}
    </section>
  );
}
