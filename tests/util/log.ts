/**
 * A {@link Log} for tests: every event, whatever its level, is formatted as
 * the node would write it and appended to `lines`.
 *
 * @module
 */

import { type Log, Logger } from "../../lib/log/mod.ts";

/** A log of `component` that keeps each line (all levels) in `lines`. */
export function linesLog(lines: string[], component = "test"): Log {
  return new Logger({ level: "DEBUG", raftLevel: "DEBUG", sink: (l) => lines.push(l) })
    .for(component);
}
