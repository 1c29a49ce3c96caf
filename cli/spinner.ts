/**
 * The spinner for remote jobs: draws core/poll's events as one status line on stderr (a TTY, not
 * --quiet, not --json); otherwise each new status becomes one log line, so logs keep the story.
 * @module
 */

import type { PollEvent } from "../core/poll.ts";
import { type Logger, sanitize } from "../core/log.ts";

const FRAMES = ["|", "/", "-", "\\"];

/** Options of {@link createSpinner}. */
export interface SpinnerOptions {
  /** Messages (its sink is where the line is drawn). */
  log: Logger;
  /** Draw the line (else log status changes). */
  enabled: boolean;
}

/** A poll event handler that draws a spinner. */
export function createSpinner(options: SpinnerOptions): (event: PollEvent) => void {
  const { log, enabled } = options;
  let frame = 0;
  let drawn = false;
  let lastStatus: string | undefined;
  return (e) => {
    if (!enabled) {
      if (e.status !== undefined && e.status !== lastStatus) log.info(`${e.label}: ${e.status}`);
      lastStatus = e.status;
      return;
    }
    const secs = Math.round(e.elapsed / 1000);
    if (e.done) {
      if (drawn) log.sink.write("\r\x1b[2K");
      drawn = false;
      return;
    }
    // Job statuses and labels come from remote services: controls are made visible.
    const status = e.status ? `: ${sanitize(log.redact(e.status), true)}` : "";
    const label = sanitize(e.label, true);
    log.sink.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label}${status} (${secs} s)`);
    drawn = true;
  };
}
