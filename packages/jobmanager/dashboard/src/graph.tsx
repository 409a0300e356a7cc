import dagre from '@dagrejs/dagre';
import { useEffect, useMemo } from 'preact/hooks';
import { loadColour, rate } from './format';
import type { JobDetails, Vertex } from './types';

const NODE_W = 220;
const NODE_H = 74;

/**
 * The job graph: one node per vertex (operator chain) laid out by dagre, left to right, each
 * showing its parallelism, records/s and a busy/back-pressured colour; edges say how records
 * are partitioned.
 */
export function JobGraph({ job, onSelect }: { job: JobDetails; onSelect: (v: Vertex) => void }) {
  const layout = useMemo(() => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 90, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of job.plan.nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
    for (const n of job.plan.nodes)
      for (const i of n.inputs ?? [])
        g.setEdge(i.id, n.id, { label: i.ship_strategy, width: 70, height: 16 });
    dagre.layout(g);
    return g;
    // the plan does not change while the job runs
  }, [job.jid]);
  // the time from navigation to the first graph on screen, for the browser test and the curious
  useEffect(() => {
    if (performance.getEntriesByName('weir:job-graph').length === 0) performance.mark('weir:job-graph');
  }, []);
  const graph = layout.graph();
  const byId = new Map(job.vertices.map((v) => [v.id, v]));
  return (
    <svg
      data-testid="job-graph"
      class="job-graph"
      width={(graph.width ?? 0) + 20}
      height={(graph.height ?? 0) + 20}
      viewBox={`0 0 ${(graph.width ?? 0) + 20} ${(graph.height ?? 0) + 20}`}
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" fill="#666" />
        </marker>
      </defs>
      {layout.edges().map((e) => {
        const edge = layout.edge(e) as {
          points: Array<{ x: number; y: number }>;
          label: string;
          x: number;
          y: number;
        };
        return (
          <g class="edge" key={`${e.v}-${e.w}`}>
            <polyline
              points={edge.points.map((p) => `${p.x},${p.y}`).join(' ')}
              fill="none"
              stroke="#666"
              stroke-width="1.5"
              marker-end="url(#arrow)"
            />
            <text x={edge.x} y={edge.y} class="edge-label" text-anchor="middle">
              {edge.label}
            </text>
          </g>
        );
      })}
      {layout.nodes().map((id) => {
        const n = layout.node(id);
        const v = byId.get(id);
        if (!v) return null;
        const m = v.metrics;
        const fill = loadColour(m['busy-time-ms-per-second'], m['backpressured-time-ms-per-second']);
        return (
          <g
            class="node"
            data-vertex={id}
            key={id}
            transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
            onClick={() => onSelect(v)}
          >
            <rect width={NODE_W} height={NODE_H} rx="6" fill={fill} stroke="#333" />
            <text x="8" y="18" class="node-title">
              {v.name.length > 30 ? `${v.name.slice(0, 29)}…` : v.name}
            </text>
            <text x="8" y="36">
              parallelism {v.parallelism} · {v.status}
            </text>
            <text x="8" y="52">
              in {rate(m['read-records-per-second'])} · out {rate(m['write-records-per-second'])}
            </text>
            <text x="8" y="67">
              busy {Math.round(m['busy-time-ms-per-second'] / 10)}% · backpressured{' '}
              {Math.round(m['backpressured-time-ms-per-second'] / 10)}%
            </text>
          </g>
        );
      })}
    </svg>
  );
}
