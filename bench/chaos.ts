// `npm run bench -- --chaos`: long chaos runs (issue #17 item 7) with the chaos suite's engine (tests/chaos/engine.ts):
// whole rollouts on large fleets, each under its own seeded schedule of faults, kills and node churn, judged from the
// simulator's audit. Prints one line per run as it ends (seed first, to replay it) and the totals.
import { describeRun, runChaos, type ChaosReport } from "../tests/chaos/engine";

export interface ChaosBenchOptions {
  nodes: number;
  parallelism: number;
  seeds: number[];
  timeScale: number;
  /** Rollout timeout of each run, real seconds. */
  timeoutSeconds: number;
}

export interface ChaosBenchTotals {
  runs: number;
  passed: number;
  lost: number;
  duplicates: number;
  peak: number;
  parallelism: number;
  seeds: number[];
  failedSeeds: number[];
}

export function chaosTotals(reports: readonly ChaosReport[], parallelism: number): ChaosBenchTotals {
  return {
    runs: reports.length,
    passed: reports.filter((r) => r.passed).length,
    lost: reports.reduce((n, r) => n + r.lost, 0),
    duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
    peak: Math.max(0, ...reports.map((r) => r.peak)),
    parallelism,
    seeds: reports.map((r) => r.seed),
    failedSeeds: reports.filter((r) => !r.passed).map((r) => r.seed),
  };
}

/** Runs every seed in turn; returns the exit code (0 when every run kept every invariant). */
export async function runChaosBench(o: ChaosBenchOptions, print: (line: string) => void): Promise<number> {
  const reports: ChaosReport[] = [];
  for (const seed of o.seeds) {
    const report = await runChaos({
      seed,
      nodes: o.nodes,
      parallelism: o.parallelism,
      timeScale: o.timeScale,
      timeoutSeconds: o.timeoutSeconds,
    });
    reports.push(report);
    print(describeRun(report));
    for (const v of report.violations.slice(0, 10)) print(`    ${v}`);
  }
  const t = chaosTotals(reports, o.parallelism);
  print(
    `chaos: ${t.passed}/${t.runs} runs passed on ${o.nodes} nodes, P=${o.parallelism}; nodes lost ${t.lost}, ` +
      `duplicates ${t.duplicates}, peak in flight ${t.peak} (P=${t.parallelism}); seeds ${t.seeds.join(",")}` +
      (t.failedSeeds.length ? `; FAILED seeds ${t.failedSeeds.join(",")}` : ""),
  );
  return t.passed === t.runs ? 0 : 1;
}
