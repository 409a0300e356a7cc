import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';
import { bytes } from './format';
import type { CheckpointEntry } from './types';

/** Duration, alignment (ms, left axis) and size (right axis) of the completed checkpoints over time (uPlot). */
export function CheckpointChart({ history }: { history: CheckpointEntry[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const done = history
    .filter((c) => c.status === 'COMPLETED')
    .sort((a, b) => a.trigger_timestamp - b.trigger_timestamp);
  const data: uPlot.AlignedData = [
    done.map((c) => c.trigger_timestamp / 1000),
    done.map((c) => c.end_to_end_duration),
    done.map((c) => c.alignment_duration),
    done.map((c) => c.state_size),
  ];
  useEffect(() => {
    if (!el.current) return undefined;
    plot.current = new uPlot(
      {
        width: Math.min(900, el.current.clientWidth || 900),
        height: 240,
        scales: { x: { time: true }, ms: {}, size: {} },
        axes: [
          {},
          { scale: 'ms', label: 'ms' },
          {
            scale: 'size',
            side: 1,
            label: 'size',
            values: (_u, v) => v.map((x) => bytes(x)),
            grid: { show: false },
          },
        ],
        series: [
          {},
          { label: 'duration (ms)', scale: 'ms', stroke: '#d9534f', width: 2 },
          { label: 'alignment (ms)', scale: 'ms', stroke: '#f0ad4e', width: 2 },
          {
            label: 'size',
            scale: 'size',
            stroke: '#337ab7',
            width: 2,
            value: (_u, v) => (v === null ? '-' : bytes(v)),
          },
        ],
      },
      data,
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data), [history]);
  return <div data-testid="checkpoint-chart" class="chart" ref={el} />;
}
