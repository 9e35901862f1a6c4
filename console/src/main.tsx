import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, type Session, setSession, whenSignedOut } from './api';
import { CatalogPage } from './catalog';
import { InstanceDetail } from './instance-detail';
import { InstancesPage } from './instances';
import { NodesPage } from './nodes';
import { ProjectDetail } from './project-detail';
import { ProjectsPage } from './projects';
import { href } from './routes';
import { SignIn } from './sign-in';
import { SyncedTableDetail, SyncedTablesPage } from './synced-tables';
import { ErrorText } from './ui';
import './styles.css';

/** The page's address after `#/`, split into decoded segments. */
function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

const SECTIONS = [
  { id: 'instances', label: 'Instances' },
  { id: 'projects', label: 'Projects' },
  { id: 'catalog', label: 'Catalog' },
  { id: 'synced-tables', label: 'Synced tables' },
  // Admins only: the Pier processes that share the store.
  { id: 'nodes', label: 'Nodes', admin: true },
];

function Page({ route, session }: { route: string[]; session: Session }) {
  const [section, ...rest] = route;
  if (section === 'catalog') return <CatalogPage path={rest} />;
  if (section === 'projects')
    return rest[0] ? <ProjectDetail id={rest[0]} branch={rest[1]} /> : <ProjectsPage />;
  if (section === 'synced-tables')
    return rest[0] ? <SyncedTableDetail name={rest[0]} /> : <SyncedTablesPage />;
  if (section === 'instances' && rest[0]) return <InstanceDetail name={rest[0]} session={session} />;
  if (section === 'nodes' && session.is_admin) return <NodesPage />;
  return <InstancesPage />;
}

function App() {
  const [session, setCurrent] = useState<Session | null>();
  const [error, setError] = useState<unknown>();
  const route = useRoute();
  const signedIn = (s: Session | null) => {
    setSession(s ?? undefined);
    setCurrent(s);
  };
  useEffect(() => {
    whenSignedOut(() => signedIn(null));
    call<Session>('GET', '/console/session')
      .then(signedIn)
      .catch(() => signedIn(null));
  }, []);
  // Every page names itself, and focus moves to the page's heading when the page changes.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [route.join('/')]);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={signedIn} />;
  const section = route[0] ?? 'instances';
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Pier</span>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.filter((s) => !s.admin || session.is_admin).map((s) => (
              <li key={s.id}>
                <a href={href(s.id)} aria-current={section === s.id ? 'page' : undefined}>
                  {s.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title="Signed in as">{session.user_name}</span>
          <button
            type="button"
            onClick={async () => {
              try {
                await call('DELETE', '/console/session');
                signedIn(null);
              } catch (e) {
                setError(e);
              }
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <ErrorText error={error} />
      <main id="main">
        <Page route={route} session={session} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
