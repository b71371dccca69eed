/**
 * Where the CPU went, from /proc: benchmarks on a 2-core machine are only
 * meaningful when nothing else is running, so they account for the whole
 * machine's CPU during each measurement (server, load generator, others)
 * and warn when other processes were using it.
 *
 * @module
 */

/** A reading of the CPU counters; see {@link cpuSnapshot}. */
export interface CpuSnapshot {
  /** Monotonic time in seconds. */
  at: number;
  /** Machine-wide busy and total jiffies from /proc/stat (0 where unavailable). */
  machineBusy: number;
  machineTotal: number;
  /** This process's own CPU seconds (utime + stime). */
  selfSec: number;
  /** CPU seconds of this process's exited and reaped children (cutime + cstime). */
  childrenSec: number;
}

const CLK_TCK = 100; // Linux USER_HZ on every mainstream kernel.

/** The fields after `(comm)` of a /proc/<pid>/stat line: index 0 is field 3 (state). */
export async function procStatFields(pid: number | "self"): Promise<string[]> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** User + system CPU seconds used so far by process `pid`. */
export async function processCpuSeconds(pid: number | "self"): Promise<number> {
  const f = await procStatFields(pid);
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

/** Reads the machine's and this process's CPU counters. */
export async function cpuSnapshot(): Promise<CpuSnapshot> {
  let machineBusy = 0;
  let machineTotal = 0;
  let selfSec = 0;
  let childrenSec = 0;
  try {
    const stat = await Deno.readTextFile("/proc/stat");
    const line = stat.split("\n").find((l) => l.startsWith("cpu ")) ?? "";
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    machineTotal = f.reduce((a, b) => a + b, 0);
    machineBusy = machineTotal - (f[3] ?? 0) - (f[4] ?? 0);
    const self = await procStatFields("self");
    selfSec = (Number(self[11]) + Number(self[12])) / CLK_TCK;
    childrenSec = (Number(self[13]) + Number(self[14])) / CLK_TCK; // cutime, cstime
  } catch {
    // No /proc: every figure stays 0.
  }
  return { at: performance.now() / 1000, machineBusy, machineTotal, selfSec, childrenSec };
}

/** CPU use between two snapshots, in cores (CPU seconds per wall second). */
export interface CpuUse {
  /** The whole machine. */
  machine: number;
  /** This process. */
  self: number;
  /** Children reaped in between (e.g. the load generator that just exited). */
  children: number;
}

/** CPU use between snapshots `a` and `b`. */
export function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const wall = b.at - a.at;
  const total = b.machineTotal - a.machineTotal;
  return {
    machine: total > 0
      ? ((b.machineBusy - a.machineBusy) / total) * navigator.hardwareConcurrency
      : 0,
    self: wall > 0 ? (b.selfSec - a.selfSec) / wall : 0,
    children: wall > 0 ? (b.childrenSec - a.childrenSec) / wall : 0,
  };
}

/** Above this many cores used by other processes, figures are flagged as disturbed. */
export const BUSY_THRESHOLD = 0.25;

/**
 * Measures the machine's load for `ms` while this process idles, and returns a
 * warning to print if other processes are using the CPU, or null when quiet.
 */
export async function loadWarning(ms = 1000): Promise<string | null> {
  const a = await cpuSnapshot();
  await new Promise((r) => setTimeout(r, ms));
  const busy = cpuUse(a, await cpuSnapshot()).machine;
  if (busy < BUSY_THRESHOLD) return null;
  return `WARNING: the machine was busy (${busy.toFixed(2)} of ${navigator.hardwareConcurrency} ` +
    `cores in use by other processes); these figures are disturbed`;
}

/**
 * Waits up to `maxWaitMs` for the machine to be quiet (see {@link loadWarning}),
 * checking once a second; returns null once it is, or the last warning.
 */
export async function waitForQuiet(maxWaitMs: number): Promise<string | null> {
  const deadline = Date.now() + maxWaitMs;
  let warning = await loadWarning();
  if (warning !== null) console.log(`  machine busy; waiting up to ${maxWaitMs / 1000} s for it`);
  while (warning !== null && Date.now() < deadline) warning = await loadWarning();
  return warning;
}
