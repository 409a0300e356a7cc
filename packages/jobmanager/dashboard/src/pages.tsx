import { useState } from 'preact/hooks';
import { api, usePoll } from './api';
import { CheckpointChart } from './checkpoint-chart';
import { bytes, ms, rate, time } from './format';
import { JobGraph } from './graph';
import type {
  CheckpointEntry,
  CheckpointSubtask,
  Checkpoints,
  JobDetails,
  JobSummary,
  Restart,
  Subtask,
  TaskManagerInfo,
  Vertex,
} from './types';

function Loading({ error }: { error?: Error | undefined }) {
  return error ? <p class="error">{error.message}</p> : <p class="muted">loading…</p>;
}

export function Overview() {
  const o = usePoll<Record<string, number>>('/overview');
  const tms = usePoll<{ taskmanagers: TaskManagerInfo[] }>('/taskmanagers');
  if (!o.data) return <Loading error={o.error} />;
  const d = o.data;
  return (
    <section>
      <h2>Cluster</h2>
      <div class="cards">
        <div class="card">
          <b>{d.taskmanagers}</b>TaskManagers
        </div>
        <div class="card">
          <b>
            {d['slots-available']} / {d['slots-total']}
          </b>
          slots free
        </div>
        <div class="card">
          <b>{d['jobs-running']}</b>jobs running
        </div>
        <div class="card">
          <b>{d['jobs-finished']}</b>finished
        </div>
        <div class="card">
          <b>{d['jobs-cancelled']}</b>canceled
        </div>
        <div class="card">
          <b>{d['jobs-failed']}</b>failed
        </div>
      </div>
      {tms.data && <TaskManagerTable list={tms.data.taskmanagers} />}
      <JobList />
    </section>
  );
}

export function JobList() {
  const jobs = usePoll<{ jobs: JobSummary[] }>('/jobs/overview');
  if (!jobs.data) return <Loading error={jobs.error} />;
  return (
    <section>
      <h2>Jobs</h2>
      <table data-testid="job-list">
        <thead>
          <tr>
            <th>name</th>
            <th>state</th>
            <th>started</th>
            <th>duration</th>
            <th>tasks running / total</th>
            <th>id</th>
          </tr>
        </thead>
        <tbody>
          {jobs.data.jobs.length === 0 && (
            <tr>
              <td colSpan={6} class="muted">
                no jobs
              </td>
            </tr>
          )}
          {[...jobs.data.jobs]
            .sort((a, b) => b['start-time'] - a['start-time'])
            .map((j) => (
              <tr key={j.jid}>
                <td>
                  <a href={`#/jobs/${j.jid}`}>{j.name}</a>
                </td>
                <td>
                  <span class={`state ${j.state}`}>{j.state}</span>
                </td>
                <td>{time(j['start-time'])}</td>
                <td>{ms(j.duration)}</td>
                <td>
                  {j.tasks.running} / {j.tasks.total}
                </td>
                <td class="mono">{j.jid}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </section>
  );
}

function Tabs({ jid, tab }: { jid: string; tab: string }) {
  const t = (id: string, label: string) => (
    <a class={tab === id ? 'tab active' : 'tab'} href={`#/jobs/${jid}${id ? `/${id}` : ''}`}>
      {label}
    </a>
  );
  return (
    <nav class="tabs">
      {t('', 'Overview')}
      {t('checkpoints', 'Checkpoints')}
      {t('exceptions', 'Exceptions')}
      {t('restarts', 'Restarts')}
    </nav>
  );
}

export function JobPage({ jid, tab }: { jid: string; tab: string }) {
  const job = usePoll<JobDetails>(`/jobs/${jid}`);
  if (!job.data) return <Loading error={job.error} />;
  const j = job.data;
  const cancel = (): void =>
    void api(`/jobs/${jid}?mode=cancel`, { method: 'PATCH' }).catch((e: Error) => alert(e.message));
  return (
    <section>
      <h2>
        {j.name}{' '}
        <span class={`state ${j.state}`} data-testid="job-state">
          {j.state}
        </span>
        {!['FINISHED', 'CANCELED', 'FAILED'].includes(j.state) && (
          <button class="cancel" onClick={cancel}>
            Cancel job
          </button>
        )}
      </h2>
      <p class="muted mono">
        {j.jid} · started {time(j['start-time'])} · running {ms(j.duration)} · restarts {j['num-restarts']}
      </p>
      {j['waiting-reason'] && <p class="warn">{j['waiting-reason']}</p>}
      {j['failure-cause'] && <p class="error">last failure: {j['failure-cause']}</p>}
      <Tabs jid={jid} tab={tab} />
      {tab === '' && <JobOverviewTab job={j} />}
      {tab === 'checkpoints' && <CheckpointsTab jid={jid} />}
      {tab === 'exceptions' && <ExceptionsTab jid={jid} />}
      {tab === 'restarts' && <RestartsTab jid={jid} />}
    </section>
  );
}

function JobOverviewTab({ job }: { job: JobDetails }) {
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const vertex = job.vertices.find((v) => v.id === selected) ?? job.vertices[0];
  return (
    <div>
      <div class="graph-box">
        <JobGraph job={job} onSelect={(v: Vertex) => setSelected(v.id)} />
      </div>
      <p class="legend">
        colour: <span style="color:hsl(210,70%,45%)">idle</span> →{' '}
        <span style="color:hsl(0,70%,50%)">busy</span>, grey to black: back-pressured
      </p>
      {vertex && <SubtaskTable jid={job.jid} vertex={vertex} />}
    </div>
  );
}

function SubtaskTable({ jid, vertex }: { jid: string; vertex: Vertex }) {
  const d = usePoll<{ subtasks: Subtask[] }>(`/jobs/${jid}/vertices/${encodeURIComponent(vertex.id)}`);
  return (
    <section>
      <h3>{vertex.name}: subtasks</h3>
      {!d.data ? (
        <Loading error={d.error} />
      ) : (
        <table data-testid="subtasks">
          <thead>
            <tr>
              <th>#</th>
              <th>state</th>
              <th>TaskManager</th>
              <th>records in</th>
              <th>records out</th>
              <th>in/s</th>
              <th>out/s</th>
              <th>busy</th>
              <th>back-pressured</th>
              <th>idle</th>
              <th>in buffers</th>
              <th>out buffers</th>
            </tr>
          </thead>
          <tbody>
            {d.data.subtasks.map((s) => (
              <tr key={s.subtask}>
                <td>{s.subtask}</td>
                <td>
                  <span class={`state ${s.status}`}>{s.status}</span>
                </td>
                <td>
                  <a href={`#/taskmanagers/${s['taskmanager-id']}`}>{s['taskmanager-id']}</a>
                </td>
                <td>{s.metrics['read-records']}</td>
                <td>{s.metrics['write-records']}</td>
                <td>{rate(s.metrics['read-records-per-second'])}</td>
                <td>{rate(s.metrics['write-records-per-second'])}</td>
                <td>{Math.round(s.metrics['busy-time-ms-per-second'] / 10)}%</td>
                <td>{Math.round(s.metrics['backpressured-time-ms-per-second'] / 10)}%</td>
                <td>{Math.round(s.metrics['idle-time-ms-per-second'] / 10)}%</td>
                <td>{Math.round(s.metrics['input-buffer-usage'] * 100)}%</td>
                <td>{Math.round(s.metrics['output-buffer-usage'] * 100)}%</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CheckpointsTab({ jid }: { jid: string }) {
  const cp = usePoll<Checkpoints>(`/jobs/${jid}/checkpoints`);
  const [selected, setSelected] = useState<number | undefined>(undefined);
  if (!cp.data) return <Loading error={cp.error} />;
  const c = cp.data;
  return (
    <section>
      <div class="cards">
        <div class="card">
          <b>{c.counts.completed}</b>completed
        </div>
        <div class="card">
          <b>{c.counts.failed}</b>failed
        </div>
        <div class="card">
          <b>{c.counts.in_progress}</b>in progress
        </div>
        <div class="card">
          <b>{c.counts.restored}</b>restored
        </div>
      </div>
      <CheckpointChart history={c.history} />
      <table data-testid="checkpoint-history">
        <thead>
          <tr>
            <th>id</th>
            <th>status</th>
            <th>triggered</th>
            <th>duration</th>
            <th>size</th>
            <th>alignment</th>
            <th>in-flight</th>
            <th>acknowledged</th>
            <th>failure</th>
          </tr>
        </thead>
        <tbody>
          {c.history.map((h: CheckpointEntry) => (
            <tr
              key={h.id}
              class={selected === h.id ? 'selected clickable' : 'clickable'}
              onClick={() => setSelected(h.id)}
            >
              <td>
                {h.id}
                {h.is_savepoint ? ' (savepoint)' : ''}
              </td>
              <td>
                <span class={`state ${h.status}`}>{h.status}</span>
              </td>
              <td>{time(h.trigger_timestamp)}</td>
              <td>{ms(h.end_to_end_duration)}</td>
              <td>{bytes(h.state_size)}</td>
              <td>{ms(h.alignment_duration)}</td>
              <td>{h.unaligned_checkpoint ? `unaligned, ${bytes(h.persisted_data)}` : 'aligned'}</td>
              <td>
                {h.num_acknowledged_subtasks} / {h.num_subtasks}
              </td>
              <td class="wrap">{h.failure_message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected !== undefined && <CheckpointDetails jid={jid} id={selected} />}
    </section>
  );
}

function CheckpointDetails({ jid, id }: { jid: string; id: number }) {
  const d = usePoll<{ subtasks: CheckpointSubtask[] }>(`/jobs/${jid}/checkpoints/details/${id}`, 5000);
  if (!d.data) return <Loading error={d.error} />;
  return (
    <section>
      <h3>Checkpoint {id}: subtasks</h3>
      <table data-testid="checkpoint-subtasks">
        <thead>
          <tr>
            <th>vertex</th>
            <th>#</th>
            <th>acknowledged</th>
            <th>end to end</th>
            <th>sync</th>
            <th>async</th>
            <th>alignment</th>
            <th>in-flight</th>
            <th>size</th>
          </tr>
        </thead>
        <tbody>
          {d.data.subtasks.map((s) => (
            <tr key={`${s.vertex}-${s.index}`}>
              <td>{s['vertex-name']}</td>
              <td>{s.index}</td>
              <td>{time(s.ack_timestamp)}</td>
              <td>{ms(s.end_to_end_duration)}</td>
              <td>{ms(s.checkpoint.sync)}</td>
              <td>{ms(s.checkpoint.async)}</td>
              <td>{ms(s.alignment.duration)}</td>
              <td>{s.unaligned_checkpoint ? `unaligned, ${bytes(s.alignment.persisted)}` : 'aligned'}</td>
              <td>{bytes(s.state_size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function ExceptionsTab({ jid }: { jid: string }) {
  const d = usePoll<{
    exceptionHistory: {
      entries: Array<{
        timestamp: number;
        exceptionName: string;
        stacktrace: string;
        taskName: string | null;
        location: string | null;
      }>;
    };
  }>(`/jobs/${jid}/exceptions`, 5000);
  if (!d.data) return <Loading error={d.error} />;
  const entries = d.data.exceptionHistory.entries;
  return (
    <section data-testid="exceptions">
      {entries.length === 0 && <p class="muted">no failures</p>}
      {entries.map((e, i) => (
        <details key={i} open={i === 0}>
          <summary>
            {time(e.timestamp)} · {e.exceptionName === 'JobFailover' ? 'restarted after' : 'failed on'}{' '}
            {e.taskName ?? 'the job'} {e.location ? `on ${e.location}` : ''}
          </summary>
          <pre>{e.stacktrace}</pre>
        </details>
      ))}
    </section>
  );
}

const STEP_COLOURS: Record<string, string> = {
  detected: '#d9534f',
  cancelled: '#f0ad4e',
  deployed: '#5bc0de',
  'state-restored': '#9b59b6',
  running: '#5cb85c',
  'first-checkpoint': '#337ab7',
};

/** The recovery timeline of each restart: the steps on one axis from detection (weir's own view). */
function RestartsTab({ jid }: { jid: string }) {
  const d = usePoll<{ restarts: Restart[] }>(`/jobs/${jid}/restarts`);
  if (!d.data) return <Loading error={d.error} />;
  const list = [...d.data.restarts].reverse();
  return (
    <section data-testid="restarts">
      {list.length === 0 && <p class="muted">no restarts</p>}
      {list.map((r) => {
        const total = Math.max(1, ...r.steps.map((s) => s['since-detection-ms'] ?? 0));
        return (
          <div class="restart" key={r.attempt} data-testid="restart-timeline">
            <h3>
              Restart {r.attempt}:{' '}
              {r['recovery-ms'] !== null ? `running again after ${ms(r['recovery-ms'])}` : 'recovering'}
              {r['restored-checkpoint-id'] ? `, from checkpoint ${r['restored-checkpoint-id']}` : ''}
            </h3>
            <p class="wrap muted">{r.cause}</p>
            <div class="timeline">
              {r.steps
                .filter((s) => s.timestamp !== null)
                .map((s, i, done) => {
                  const at = s['since-detection-ms'] ?? 0;
                  const from = i === 0 ? 0 : (done[i - 1]!['since-detection-ms'] ?? 0);
                  return (
                    <div class="step" key={s.name} data-step={s.name}>
                      <span class="step-name">{s.name}</span>
                      <span class="step-track">
                        <span
                          class="step-bar"
                          style={`left:${(from / total) * 100}%;width:${Math.max(0.4, ((at - from) / total) * 100)}%;background:${STEP_COLOURS[s.name] ?? '#999'}`}
                        />
                      </span>
                      <span class="step-time">
                        +{ms(at)}
                        {i > 0 ? ` (${ms(at - from)})` : ''}
                      </span>
                    </div>
                  );
                })}
            </div>
          </div>
        );
      })}
    </section>
  );
}

export function TaskManagerTable({ list }: { list: TaskManagerInfo[] }) {
  return (
    <section>
      <h2>TaskManagers</h2>
      <table data-testid="taskmanagers">
        <thead>
          <tr>
            <th>id</th>
            <th>address</th>
            <th>slots free / total</th>
            <th>heap</th>
            <th>RSS</th>
            <th>event-loop p99</th>
            <th>GC</th>
            <th>RocksDB on disk</th>
            <th>Prometheus</th>
          </tr>
        </thead>
        <tbody>
          {list.map((tm) => (
            <tr key={tm.id}>
              <td>
                <a href={`#/taskmanagers/${tm.id}`}>{tm.id}</a>
              </td>
              <td class="mono">{tm.path}</td>
              <td>
                {tm.freeSlots} / {tm.slotsNumber}
              </td>
              <td>{bytes(tm.metrics.heapUsed ?? 0)}</td>
              <td>{bytes(tm.metrics.rss ?? 0)}</td>
              <td>{ms(tm.metrics.eventLoopDelayP99Ms)}</td>
              <td>
                {tm.metrics.garbageCollections} ({ms(tm.metrics.garbageCollectionTimeMs)})
              </td>
              <td>{bytes(tm.metrics.rocksdbDiskBytes ?? 0)}</td>
              <td class="mono">{tm['prometheus-address'] ?? '-'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function TaskManagers() {
  const d = usePoll<{ taskmanagers: TaskManagerInfo[] }>('/taskmanagers');
  if (!d.data) return <Loading error={d.error} />;
  return <TaskManagerTable list={d.data.taskmanagers} />;
}

export function TaskManagerPage({ id }: { id: string }) {
  const d = usePoll<TaskManagerInfo>(`/taskmanagers/${encodeURIComponent(id)}`);
  if (!d.data) return <Loading error={d.error} />;
  const tm = d.data;
  const m = tm.metrics;
  return (
    <section data-testid="taskmanager">
      <h2>TaskManager {tm.id}</h2>
      <p class="muted mono">
        {tm.path} · last heartbeat {time(tm.timeSinceLastHeartbeat)} · Prometheus{' '}
        {tm['prometheus-address'] ?? 'off'}
      </p>
      <div class="cards">
        <div class="card">
          <b>{bytes(m.heapUsed ?? 0)}</b>heap used of {bytes(m.heapCommitted ?? 0)}
        </div>
        <div class="card">
          <b>{bytes(m.rss ?? 0)}</b>RSS
        </div>
        <div class="card">
          <b>{ms(m.eventLoopDelayP99Ms)}</b>event-loop delay p99
        </div>
        <div class="card">
          <b>{m.garbageCollections}</b>GCs, {ms(m.garbageCollectionTimeMs)}
        </div>
        <div class="card">
          <b>{bytes(m.rocksdbDiskBytes ?? 0)}</b>RocksDB on disk
        </div>
      </div>
      <h3>Slots</h3>
      <table>
        <thead>
          <tr>
            <th>slot</th>
            <th>job</th>
          </tr>
        </thead>
        <tbody>
          {(tm.slots ?? []).map((s) => (
            <tr key={s.slot}>
              <td>{s.slot}</td>
              <td>
                {s['job-id'] ? (
                  <a href={`#/jobs/${s['job-id']}`} class="mono">
                    {s['job-id']}
                  </a>
                ) : (
                  <span class="muted">free</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
