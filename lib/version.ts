/**
 * The raftlite release version, printed by `raftlite -version` and reported
 * in status output. One constant so the CLI, HTTP headers and tests agree.
 *
 * @module
 */

/** The raftlite version (semver). */
export const VERSION = "0.1.0";
