// Pure figures of one benchmark run, computed from the simulator's ground truth (per-node Job records and
// request counters), never from what the dispatcher says about itself.
import type { NodeJobsReport } from "../sim";

export interface RunFigures {
  nodes: number;
  /** Simulated ms from the first Job's creation to the last Job's end. */
  makespanMs: number;
  /** Median simulated ms from a Job's creation to its terminal condition: the D of the ideal. */
  jobDurationMs: number;
  idealMs: number;
  makespanOverIdeal: number;
  requestsPerNode: number;
  /** Slot refill latency: a Job's end to the creation of the Job that took its slot, simulated ms. */
  refillP50Ms: number;
  refillP99Ms: number;
  /** Nodes with exactly one successful Job; anything else is a correctness failure of the run. */
  nodesWithOneSuccess: number;
  peakActive: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Slot refill delays, ascending, from ascending creation and end times (any one clock): with every slot busy,
 * the i-th creation after the first P waits for the (i-P)-th end.
 */
export function slotRefills(
  created: readonly number[],
  ended: readonly number[],
  parallelism: number,
): number[] {
  const refills: number[] = [];
  for (let i = parallelism; i < created.length; i++) {
    const freedAt = ended[i - parallelism];
    if (freedAt !== undefined) refills.push(Math.max(0, created[i] - freedAt));
  }
  return refills.sort((a, b) => a - b);
}

export interface Spread {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/** p50/p99/max of ascending values (all 0 when there are none). */
export function spread(sorted: readonly number[]): Spread {
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : 0,
    count: sorted.length,
  };
}

export function runFigures(
  jobsByNode: Record<string, NodeJobsReport>,
  totalRequests: number,
  nodes: number,
  parallelism: number,
  peakActive: number,
): RunFigures {
  const created: number[] = [];
  const ended: number[] = [];
  const durations: number[] = [];
  let nodesWithOneSuccess = 0;
  for (const report of Object.values(jobsByNode)) {
    if (report.jobs.filter((j) => j.outcome === "succeeded").length === 1) nodesWithOneSuccess++;
    for (const job of report.jobs) {
      created.push(job.createdAt);
      if (job.finishedAt !== undefined) {
        ended.push(job.finishedAt);
        durations.push(job.finishedAt - job.createdAt);
      }
    }
  }
  created.sort((a, b) => a - b);
  ended.sort((a, b) => a - b);
  durations.sort((a, b) => a - b);
  const jobDurationMs = percentile(durations, 50);
  const makespanMs = ended.length > 0 ? ended[ended.length - 1] - created[0] : 0;
  const idealMs = Math.ceil(nodes / parallelism) * jobDurationMs;
  const refills = slotRefills(created, ended, parallelism);
  return {
    nodes,
    makespanMs,
    jobDurationMs,
    idealMs,
    makespanOverIdeal: idealMs > 0 ? makespanMs / idealMs : 0,
    requestsPerNode: nodes > 0 ? totalRequests / nodes : 0,
    refillP50Ms: percentile(refills, 50),
    refillP99Ms: percentile(refills, 99),
    nodesWithOneSuccess,
    peakActive,
  };
}
