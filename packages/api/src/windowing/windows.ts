/**
 * A window is a namespace of keyed state and timers. `maxTimestamp()` is the last
 * timestamp that belongs to it: an event-time window fires when the watermark passes it.
 */
export abstract class Window {
  abstract maxTimestamp(): number;
}

/**
 * Turns windows into compact keys and back: state and timers are stored under the key (a
 * string or number), checkpoints carry it, and restore rebuilds the window from it.
 */
export interface WindowSerializer<W> {
  toKey(window: W): string | number;
  fromKey(key: string | number): W;
}

/** The time interval [start, end) in milliseconds (Flink's TimeWindow). */
export class TimeWindow extends Window {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {
    super();
  }

  getStart(): number {
    return this.start;
  }

  getEnd(): number {
    return this.end;
  }

  override maxTimestamp(): number {
    return this.end - 1;
  }

  /** true when the windows overlap or touch, i.e. a session merges them */
  intersects(other: TimeWindow): boolean {
    return this.start <= other.end && this.end >= other.start;
  }

  /** the smallest window containing both */
  cover(other: TimeWindow): TimeWindow {
    return new TimeWindow(Math.min(this.start, other.start), Math.max(this.end, other.end));
  }

  equals(other: unknown): boolean {
    return other instanceof TimeWindow && other.start === this.start && other.end === this.end;
  }

  override toString(): string {
    return `TimeWindow{start=${this.start}, end=${this.end}}`;
  }

  /** The start of the window of `size` (shifted by `offset`) that contains `timestamp`. */
  static getWindowStartWithOffset(timestamp: number, offset: number, windowSize: number): number {
    const remainder = (timestamp - offset) % windowSize;
    // JS % keeps the sign of the dividend: move negative remainders into [0, size)
    return remainder < 0 ? timestamp - (remainder + windowSize) : timestamp - remainder;
  }

  static readonly serializer: WindowSerializer<TimeWindow> = {
    toKey: (w) => `${w.start}:${w.end}`,
    fromKey: (key) => {
      const s = String(key);
      const i = s.indexOf(':', 1);
      if (i < 0) throw new Error(`Corrupt time window key '${s}' in state or timers`);
      return new TimeWindow(Number(s.slice(0, i)), Number(s.slice(i + 1)));
    },
  };

  /**
   * Merges overlapping windows (Flink's TimeWindow.mergeWindows): sorts by start, folds
   * intersecting ones, and reports every group of two or more with its cover.
   */
  static mergeWindows(
    windows: Iterable<TimeWindow>,
    callback: (toBeMerged: TimeWindow[], mergeResult: TimeWindow) => void,
  ): void {
    const sorted = [...windows].sort((a, b) => a.start - b.start || a.end - b.end);
    let current: TimeWindow | undefined;
    let group: TimeWindow[] = [];
    const flush = (): void => {
      if (current && group.length > 1) callback(group, current);
    };
    for (const w of sorted) {
      if (current === undefined) {
        current = w;
        group = [w];
      } else if (current.intersects(w)) {
        current = current.cover(w);
        group.push(w);
      } else {
        flush();
        current = w;
        group = [w];
      }
    }
    flush();
  }
}

/** The single window of GlobalWindows: it never ends by time. */
export class GlobalWindow extends Window {
  static readonly INSTANCE = new GlobalWindow();

  private constructor() {
    super();
  }

  static get(): GlobalWindow {
    return GlobalWindow.INSTANCE;
  }

  override maxTimestamp(): number {
    return Infinity;
  }

  override toString(): string {
    return 'GlobalWindow';
  }

  static readonly serializer: WindowSerializer<GlobalWindow> = {
    toKey: () => 0,
    fromKey: () => GlobalWindow.INSTANCE,
  };
}
