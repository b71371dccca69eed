/**
 * `deno task sim`: runs simulator seeds and reports.
 *
 *   deno task sim --seeds 1000 [--from 1] [--ticks T]   soak seeds from..from+N-1
 *   deno task sim --seed 42 --trace                      replay one seed with a trace
 *
 * Prints a progress line every few seconds and a summary (seeds/s, faults
 * injected by kind, entries committed, violations). Every failing seed is
 * printed with its violation and the command that replays it. Exit code 1
 * when any seed fails.
 *
 * Wall-clock time is read here only to report speed; it never reaches the
 * simulation.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type SimOverrides, swarmConfig } from "./config.ts";
import { runSeed, type SeedResult } from "./run.ts";

const USAGE = `usage: deno task sim [--seeds N] [--from S] [--ticks T] [--seed S [--trace]]
  --seeds N        run N seeds (default 100)
  --from S         first seed (default 1)
  --seed S         run only seed S (with --trace: print every state change)
  --ticks T        simulated duration with faults, in Raft ticks (default: per seed)
  --trace          print the trace of each seed run (use with --seed)
  --trace-cap L    maximum trace lines printed (default 200000)
  --max-failures F stop after F failing seeds (default 20)
  --broken-disk    deliberately lose completed writes on crash (the checker must fail)
  --set key=value  override a numeric/boolean field of every seed's config (repeatable),
                   e.g. --set nemesisMeanMs=150 --set membership=false
  --json           print one JSON result per seed`;

interface Totals {
  seeds: number;
  failures: SeedResult[];
  committed: number;
  events: number;
  simMs: number;
  faults: Record<string, number>;
  unknownLinearizability: number;
  byNodes: Record<string, number>;
}

function main(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      seeds: { type: "string" },
      from: { type: "string" },
      seed: { type: "string" },
      ticks: { type: "string" },
      trace: { type: "boolean", default: false },
      "trace-cap": { type: "string" },
      "max-failures": { type: "string" },
      "broken-disk": { type: "boolean", default: false },
      set: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const int = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs an integer >= 0`);
    return n;
  };
  const single = values.seed !== undefined;
  const from = single ? int("seed", values.seed, 1) : int("from", values.from, 1);
  const count = single ? 1 : int("seeds", values.seeds, 100);
  const ticks = values.ticks === undefined ? undefined : int("ticks", values.ticks, 0);
  const sets = values.set ?? [];
  const overrides: SimOverrides = parseSets(sets);
  if (ticks !== undefined) overrides.ticks = ticks;
  const maxFailures = int("max-failures", values["max-failures"], 20);
  const traceCap = int("trace-cap", values["trace-cap"], 200_000);
  const brokenDisk = values["broken-disk"];

  const totals: Totals = {
    seeds: 0,
    failures: [],
    committed: 0,
    events: 0,
    simMs: 0,
    faults: {},
    unknownLinearizability: 0,
    byNodes: {},
  };
  const started = performance.now();
  let lastProgress = started;
  for (let seed = from; seed < from + count; seed++) {
    const result = runSeed(seed, {
      overrides,
      trace: values.trace,
      traceSink: values.trace ? (line) => console.log(line) : undefined,
      traceCapLines: traceCap,
      brokenDisk,
    });
    add(totals, result);
    if (values.json) console.log(JSON.stringify(result));
    if (!result.ok) {
      console.log(`\nFAIL seed ${seed}: ${result.violation}`);
      console.log(`  config: ${result.config}`);
      console.log(
        `  replay: deno task sim --seed ${seed} --trace${replayFlags(ticks, brokenDisk, sets)}`,
      );
      if (totals.failures.length >= maxFailures) {
        console.log(`stopping after ${maxFailures} failures`);
        break;
      }
    } else if (single && !values.json) {
      console.log(`seed ${seed} ok: ${result.config}`);
      console.log(
        `  ${result.ticks} ticks, ${result.events} events, committed ${result.committed}, ` +
          `ops ${JSON.stringify(result.ops)}, linearizability ${result.linearizability}` +
          (result.traceHash ? `, trace ${result.traceHash}` : ""),
      );
    }
    const now = performance.now();
    if (now - lastProgress > 5000) {
      lastProgress = now;
      const rate = totals.seeds / ((now - started) / 1000);
      console.log(
        `.. ${totals.seeds}/${count} seeds, ${rate.toFixed(1)} seeds/s, ` +
          `${totals.failures.length} failed, committed ${totals.committed}`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  printSummary(totals, seconds);
  return totals.failures.length === 0 ? 0 : 1;
}

function replayFlags(ticks: number | undefined, brokenDisk: boolean, sets: string[]): string {
  return (ticks !== undefined ? ` --ticks ${ticks}` : "") + (brokenDisk ? " --broken-disk" : "") +
    sets.map((s) => ` --set ${s}`).join("");
}

/** `--set key=json` overrides of top-level configuration fields (numbers and booleans). */
function parseSets(sets: readonly string[]): SimOverrides {
  const out: Record<string, unknown> = {};
  const allowed = swarmConfig(1);
  for (const item of sets) {
    const eq = item.indexOf("=");
    const key = item.slice(0, eq);
    const current = (allowed as unknown as Record<string, unknown>)[key];
    if (
      eq <= 0 || key === "seed" || (typeof current !== "number" && typeof current !== "boolean")
    ) {
      throw new Error(`--set ${item}: expected key=value for a number or boolean config field`);
    }
    const value: unknown = JSON.parse(item.slice(eq + 1));
    if (typeof value !== typeof current) {
      throw new Error(`--set ${item}: ${key} is a ${typeof current}`);
    }
    out[key] = value;
  }
  return out as SimOverrides;
}

function add(totals: Totals, r: SeedResult): void {
  totals.seeds++;
  totals.committed += r.committed;
  totals.events += r.events;
  totals.simMs += r.simMs;
  if (!r.ok) totals.failures.push(r);
  if (r.linearizability === "unknown") totals.unknownLinearizability++;
  for (const [kind, n] of Object.entries(r.faults)) {
    totals.faults[kind] = (totals.faults[kind] ?? 0) + n;
  }
  const nodes = /nodes=(\d+)/.exec(r.config)?.[1] ?? "?";
  totals.byNodes[nodes] = (totals.byNodes[nodes] ?? 0) + 1;
}

function printSummary(t: Totals, seconds: number): void {
  const rate = t.seeds / Math.max(seconds, 1e-9);
  console.log(`\nsimulator summary`);
  console.log(
    `  seeds run: ${t.seeds} in ${seconds.toFixed(1)} s (${rate.toFixed(2)} seeds/s); ` +
      `cluster sizes ${JSON.stringify(t.byNodes)}`,
  );
  console.log(
    `  simulated: ${(t.simMs / 1000).toFixed(0)} s, ${t.events} events ` +
      `(${(t.events / Math.max(seconds, 1e-9) / 1000).toFixed(0)}k events/s)`,
  );
  console.log(`  entries committed: ${t.committed}`);
  const faults = Object.entries(t.faults).map(([k, n]) => `${k}=${n}`).join(" ");
  console.log(`  faults injected: ${faults}`);
  if (t.unknownLinearizability > 0) {
    console.log(
      `  linearizability check inconclusive (search budget) on ${t.unknownLinearizability} seeds`,
    );
  }
  console.log(`  violations: ${t.failures.length}`);
  for (const f of t.failures) console.log(`    seed ${f.seed}: ${f.violation}`);
}

if (import.meta.main) {
  let code: number;
  try {
    code = main(Deno.args);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    console.error(USAGE);
    code = 2;
  }
  Deno.exit(code);
}
