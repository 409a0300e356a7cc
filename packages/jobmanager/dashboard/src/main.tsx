import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setToken, type ApiError } from './api';
import { JobList, JobPage, Overview, TaskManagerPage, TaskManagers } from './pages';
import './style.css';

/** Hash routes: #/, #/jobs, #/jobs/:id[/checkpoints|exceptions|restarts], #/taskmanagers[/:id]. */
function useRoute(): string[] {
  const parse = (): string[] => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = (): void => setRoute(parse());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function TokenPrompt() {
  const [value, setValue] = useState('');
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        location.reload();
      }}
    >
      <p>This cluster requires a token (security.auth.token-file).</p>
      <input type="password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit">Use token</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const [auth, setAuth] = useState<'ok' | 'needed'>('ok');
  useEffect(() => {
    api('/overview').catch((e: ApiError) => e.status === 401 && setAuth('needed'));
  }, []);
  const [page, id, tab] = route;
  const body =
    auth === 'needed' ? (
      <TokenPrompt />
    ) : page === 'jobs' && id ? (
      <JobPage jid={id} tab={tab ?? ''} />
    ) : page === 'jobs' ? (
      <JobList />
    ) : page === 'taskmanagers' && id ? (
      <TaskManagerPage id={id} />
    ) : page === 'taskmanagers' ? (
      <TaskManagers />
    ) : (
      <Overview />
    );
  return (
    <>
      <header>
        <a class="brand" href="#/">
          weir
        </a>
        <a href="#/">Overview</a>
        <a href="#/jobs">Jobs</a>
        <a href="#/taskmanagers">TaskManagers</a>
        <a href="/metrics" target="_blank">
          Prometheus
        </a>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
