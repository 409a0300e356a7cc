import type { JobGraph, JobVertex } from '@weir/core';

/**
 * Pipelined regions (Flink's SchedulingPipelinedRegion): the vertices that exchange records
 * through pipelined edges fail and restart together. Every exchange in weir is pipelined, so a
 * region is a connected part of the job graph; a job of two independent pipelines has two.
 */
export interface PipelinedRegion {
  index: number;
  vertices: JobVertex[];
  /** slots one run of the region needs: subtask i of each of its vertices shares slot i */
  slots: number;
  /** for logs, restart history and REST: "region 2/2 (Source: b -> Sink: b)" */
  name: string;
}

/** The job's pipelined regions, in the order of their first vertex in the graph. */
export function pipelinedRegions(graph: JobGraph): PipelinedRegion[] {
  const parent = new Map<string, string>(graph.vertices.map((v) => [v.id, v.id]));
  const root = (id: string): string => {
    let r = id;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(id, r);
    return r;
  };
  for (const e of graph.edges) parent.set(root(e.targetVertexId), root(e.sourceVertexId));
  const byRoot = new Map<string, JobVertex[]>();
  for (const v of graph.vertices) {
    const r = root(v.id);
    let list = byRoot.get(r);
    if (!list) byRoot.set(r, (list = []));
    list.push(v);
  }
  const groups = [...byRoot.values()];
  return groups.map((vertices, index) => ({
    index,
    vertices,
    slots: Math.max(...vertices.map((v) => v.parallelism)),
    name: `region ${index + 1}/${groups.length} (${vertices.map((v) => v.name).join(' -> ')})`,
  }));
}
