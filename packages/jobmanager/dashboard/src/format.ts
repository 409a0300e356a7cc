export function bytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KB`;
  return `${Math.round(n)} B`;
}

export function rate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k/s`;
  return `${Math.round(n)}/s`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || n < 0) return '-';
  if (n >= 60_000) return `${(n / 60_000).toFixed(1)} min`;
  if (n >= 1000) return `${(n / 1000).toFixed(2)} s`;
  return `${Math.round(n)} ms`;
}

export function time(t: number | null | undefined): string {
  return t && t > 0 ? new Date(t).toLocaleTimeString() : '-';
}

/**
 * A vertex's colour as in Flink's web UI: back-pressured time shades it grey to black, busy
 * time from blue (idle) to red (busy).
 */
export function loadColour(busyMs: number, backPressuredMs: number): string {
  if (backPressuredMs > busyMs && backPressuredMs > 100) {
    const l = Math.round(70 - (backPressuredMs / 1000) * 50);
    return `hsl(0, 0%, ${l}%)`;
  }
  const hue = Math.round(210 - (Math.min(busyMs, 1000) / 1000) * 210);
  return `hsl(${hue}, 70%, 55%)`;
}
