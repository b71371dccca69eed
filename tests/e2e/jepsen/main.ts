/**
 * Long Jepsen-style runs against a real cluster:
 *
 *   deno task jepsen --duration 120s --seed 7
 *   deno run -A tests/e2e/jepsen/main.ts --nodes 3 --clients 5 --keys 3 \
 *     --faults kill,partition --duration 5m --runs 3 --history /tmp/h.json
 *
 * Prints each run's summary (seed, history size, op counts, nemesis events,
 * verdict) and exits 1 on any violation or inconclusive check. `--runs N`
 * uses seeds seed, seed+1, ...; the history of a failing run is written to
 * `--history` (default /tmp/raftlite-jepsen-<seed>.json).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseDurationMs } from "../../../lib/config/flags.ts";
import { type Fault, FAULTS } from "./nemesis.ts";
import { runJepsen } from "./run.ts";

const USAGE = `usage: deno task jepsen [--duration 120s] [--seed N] [--runs 1] [--nodes 3]
  [--clients 5] [--keys 3] [--key-lifetime 10s] [--faults kill,partition,pause|none] [--op-timeout 5s]
  [--think-ms 10] [--check-steps 50000000] [--history FILE] [--quiet]`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: "string", default: "120s" },
      seed: { type: "string" },
      runs: { type: "string", default: "1" },
      nodes: { type: "string", default: "3" },
      clients: { type: "string", default: "5" },
      keys: { type: "string", default: "3" },
      faults: { type: "string", default: "kill,partition,pause" },
      "op-timeout": { type: "string", default: "5s" },
      "think-ms": { type: "string", default: "10" },
      "key-lifetime": { type: "string", default: "10s" },
      "check-steps": { type: "string", default: "50000000" },
      history: { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const durationMs = parseDurationMs(values.duration);
  const opTimeoutMs = parseDurationMs(values["op-timeout"]);
  const keyLifetimeMs = parseDurationMs(values["key-lifetime"]);
  const faults = values.faults === "none" ? [] : values.faults.split(",") as Fault[];
  const ints = {
    runs: Number(values.runs),
    nodes: Number(values.nodes),
    clients: Number(values.clients),
    keys: Number(values.keys),
    thinkMs: Number(values["think-ms"]),
    checkSteps: Number(values["check-steps"]),
  };
  if (
    durationMs === undefined || opTimeoutMs === undefined || !(keyLifetimeMs! > 0) ||
    !Object.values(ints).every((n) => Number.isInteger(n) && n >= 0) ||
    !faults.every((f) => FAULTS.includes(f))
  ) {
    console.error(USAGE);
    return 2;
  }
  const firstSeed = values.seed !== undefined
    ? Number(values.seed)
    : Math.floor(Math.random() * 1_000_000_000);
  let failed = 0;
  for (let run = 0; run < ints.runs; run++) {
    const seed = firstSeed + run;
    const historyFile = values.history ?? `/tmp/raftlite-jepsen-${seed}.json`;
    console.log(`jepsen: run ${run + 1}/${ints.runs}, seed ${seed}`);
    const report = await runJepsen({
      seed,
      durationMs,
      nodes: ints.nodes,
      clients: ints.clients,
      keys: ints.keys,
      faults,
      opTimeoutMs,
      thinkMs: ints.thinkMs,
      keyLifetimeMs,
      maxCheckStepsPerKey: ints.checkSteps,
      historyFile,
      log: values.quiet ? () => {} : (line) => console.log(`  ${line}`),
    });
    console.log(report.summary);
    if (report.result.ok !== true) {
      failed++;
      console.log(`  history written to ${historyFile}`);
    } else if (values.history === undefined) {
      await Deno.remove(historyFile).catch(() => {});
    }
  }
  console.log(
    failed === 0
      ? `jepsen: all ${ints.runs} run(s) linearizable`
      : `jepsen: ${failed} run(s) failed`,
  );
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
