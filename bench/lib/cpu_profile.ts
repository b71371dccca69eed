/**
 * CPU profiles of a child Deno process through the V8 inspector, for
 * benchmarks that want to show where time goes (Deno 2.9 has no
 * `--cpu-prof`). Start the child with `--inspect-wait=127.0.0.1:<port>`,
 * then {@link attachProfiler} connects, starts the sampling profiler and lets
 * the program run; `stop()` returns the profile (Chrome's `.cpuprofile`
 * format, loadable in DevTools) and {@link summarizeProfile} lists the
 * functions with the most self and inclusive time.
 *
 * Only the main thread is profiled: Web Workers (e.g. the SQLite worker)
 * are separate isolates the main inspector target does not sample; their
 * share shows as the main thread's idle time.
 *
 * @module
 */

/** A V8 CPU profile (the subset read here). */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** A running profiler session. */
export interface ProfilerSession {
  /** Stops profiling and returns the profile; closes the connection. */
  stop(): Promise<CpuProfile>;
}

/**
 * Connects to the inspector on 127.0.0.1:`port` (polling up to `timeoutMs`
 * for it to listen), starts the profiler with `intervalUs` sampling, and
 * resumes a program waiting for the debugger.
 */
export async function attachProfiler(
  port: number,
  intervalUs = 200,
  timeoutMs = 10_000,
): Promise<ProfilerSession> {
  const deadline = Date.now() + timeoutMs;
  let target: string | undefined;
  while (target === undefined) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, {
        signal: AbortSignal.timeout(1_000),
      });
      const list = await res.json() as { webSocketDebuggerUrl?: string }[];
      target = list[0]?.webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    if (target === undefined) {
      if (Date.now() > deadline) throw new Error(`no inspector on port ${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const ws = new WebSocket(target);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`cannot connect to the inspector at ${target}`));
  });
  let seq = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
    if (m.id === undefined) return;
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  };
  const send = (method: string, params: unknown = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`inspector: no answer to ${method}`));
      }, 30_000);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: intervalUs });
  await send("Profiler.start");
  await send("Runtime.runIfWaitingForDebugger");
  return {
    async stop() {
      try {
        const r = await send("Profiler.stop") as { profile: CpuProfile };
        return r.profile;
      } finally {
        ws.close();
      }
    },
  };
}

/** Self and inclusive milliseconds per function (name, file, line), largest first. */
export function summarizeProfile(profile: CpuProfile, top = 25, root = ""): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (id: number) => {
    const f = byId.get(id)!.callFrame;
    const url = root !== "" && f.url.startsWith(root) ? f.url.slice(root.length) : f.url;
    return `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    total += ms;
    const id = profile.samples[i]!;
    self.set(key(id), (self.get(key(id)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + ms);
    }
  }
  const rows = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) =>
      `${ms.toFixed(0).padStart(7)} ms ${(100 * ms / total).toFixed(1).padStart(5)}%  ${k}`
    );
  return [
    `main thread, ${total.toFixed(0)} ms sampled; self time:`,
    ...rows(self),
    "inclusive time:",
    ...rows(incl),
  ];
}
