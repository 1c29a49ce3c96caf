/**
 * Progress bars on stderr for long transfers: bytes, rate and ETA, one line per stream plus a total.
 * Drawn only when the caller says so (a TTY, not --quiet, not --json); otherwise every call is a no-op
 * so transfer code never branches on it.
 * @module
 */

import type { TextSink } from "./log.ts";

/** One bar (a stream, or the total). */
export interface Bar {
  /** Add transferred bytes. */
  add(bytes: number): void;
  /** Set the absolute position (after a resume or a restart). */
  set(bytes: number): void;
  /** Set or change the expected total. */
  setTotal(total: number | undefined): void;
  /** The current position. */
  readonly value: number;
}

/** A group of bars drawn together. */
export interface Progress {
  /** The total bar. */
  readonly total: Bar;
  /** A bar for one stream; its bytes also count towards the total. */
  stream(label: string, total?: number): Bar & { done(): void };
  /** Draw the final state and release the terminal lines. */
  done(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Where to draw (the logger's sink). */
  sink: TextSink;
  /** Draw at all. */
  enabled: boolean;
  /** Label of the total bar. */
  label: string;
  /** Expected total bytes. */
  total?: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
  /** Minimum ms between redraws (default 100). */
  interval?: number;
  /** Columns (default: the sink's terminal width, else 80). */
  columns?: number;
}

/** Format bytes for people: `12.3 MiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** Format seconds as `1:02:03` or `2:03`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "--:--";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

interface BarState {
  label: string;
  value: number;
  total?: number;
  start: number;
  startValue: number;
}

/** One rendered line: label, bar, bytes, rate, ETA. */
export function renderLine(b: BarState, now: number, columns = 80): string {
  const secs = Math.max((now - b.start) / 1000, 0.001);
  const rate = (b.value - b.startValue) / secs;
  const eta = b.total && rate > 0 ? (b.total - b.value) / rate : NaN;
  const size = b.total ? `${formatBytes(b.value)}/${formatBytes(b.total)}` : formatBytes(b.value);
  const tail = ` ${size} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
  const label = b.label.length > 24 ? `…${b.label.slice(-23)}` : b.label.padEnd(24);
  // A line as wide as the terminal wraps, and the cursor moves of the next frame then miss.
  const max = Math.max(20, columns - 1);
  const width = max - label.length - tail.length - 3;
  if (width < 10) return `${label.trimEnd()}${tail}`.slice(0, max);
  const frac = b.total ? Math.min(1, b.value / b.total) : 0;
  const full = Math.round(frac * width);
  return `${label} [${"#".repeat(full)}${" ".repeat(width - full)}]${tail}`;
}

const NOOP_BAR = { add() {}, set() {}, setTotal() {}, value: 0, done() {} };

/** Create a progress group; a disabled one draws nothing. */
export function createProgress(options: ProgressOptions): Progress {
  if (!options.enabled) return { total: NOOP_BAR, stream: () => NOOP_BAR, done() {} };
  const now = options.now ?? (() => performance.now());
  const interval = options.interval ?? 100;
  const columns = options.columns ?? options.sink.columns?.() ?? 80;
  const total: BarState = {
    label: options.label,
    value: 0,
    total: options.total,
    start: now(),
    startValue: 0,
  };
  const streams = new Set<BarState>();
  let drawn = 0;
  let last = -Infinity;
  let finished = false;
  function draw(force = false) {
    const t = now();
    if (finished || (!force && t - last < interval)) return;
    last = t;
    const lines = [...(streams.size > 1 ? streams : []), total].map((b) =>
      renderLine(b, t, columns)
    );
    // Move up over the previous frame, then redraw every line cleared.
    const up = drawn > 1 ? `\x1b[${drawn - 1}A` : "";
    let text = `${up}\r${lines.map((l) => `\x1b[2K${l}`).join("\n")}`;
    // A finished stream leaves its old line below a shorter frame: clear it, then come back up.
    const stale = drawn - lines.length;
    if (stale > 0) text += `${"\n\x1b[2K".repeat(stale)}\x1b[${stale}A`;
    options.sink.write(text);
    drawn = lines.length;
  }
  const bar = (s: BarState, parent?: BarState): Bar => ({
    add(n) {
      s.value += n;
      if (parent) parent.value += n;
      draw();
    },
    set(n) {
      if (parent) parent.value += n - s.value;
      s.value = n;
      // The rate counts from here, so a resumed transfer does not claim the skipped bytes.
      s.startValue = n;
      s.start = now();
      draw();
    },
    setTotal(t) {
      s.total = t;
    },
    get value() {
      return s.value;
    },
  });
  return {
    total: bar(total),
    stream(label, t) {
      const s: BarState = { label, value: 0, total: t, start: now(), startValue: 0 };
      streams.add(s);
      return {
        ...bar(s, total),
        get value() {
          return s.value;
        },
        done() {
          streams.delete(s);
        },
      };
    },
    done() {
      if (finished) return;
      streams.clear();
      draw(true);
      finished = true;
      options.sink.write("\n");
    },
  };
}
