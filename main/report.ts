// The end of a rollout as a person reads it (a per-node table) and as `pulumi stack output --json` would
// print the program's exports. Pure.
import type { NodeResult } from "../kube/jobStatus";
import type { Plan } from "../components/plan";
import type { RolloutOutputs } from "../rollout/types";

const MAX_COLUMN = 40;

const ORDER: Record<string, number> = { failed: 0, skipped: 1, succeeded: 2 };

function seconds(from?: string, to?: string): string {
  if (!from || !to) return "";
  return `${Math.round((Date.parse(to) - Date.parse(from)) / 1000)}s`;
}

/** Failed first, then skipped, then succeeded; by node name within each. */
export function resultsTable(results: readonly NodeResult[]): string {
  const rows = [...results]
    .sort((a, b) => (ORDER[a.outcome] ?? 3) - (ORDER[b.outcome] ?? 3) || a.node.localeCompare(b.node))
    .map((r) => [
      r.node,
      r.outcome,
      String(r.attempts),
      seconds(r.startedAt, r.finishedAt),
      r.message ?? r.reason ?? "",
    ]);
  const head = ["NODE", "OUTCOME", "ATTEMPTS", "TOOK", "REASON"];
  // Node names may be 253 characters long: such a name overflows its cell instead of widening the column.
  const widths = head.map((h, i) =>
    Math.min(MAX_COLUMN, Math.max(h.length, ...rows.map((r) => (i < 4 ? r[i].length : 0)))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** The standalone program's exports (program.ts) for this rollout. */
export function stackOutputs(
  plan: Plan,
  results: NodeResult[],
  outs: Pick<RolloutOutputs, "summary" | "runId">,
  kataNodes: string[],
): Record<string, unknown> {
  return {
    mode: plan.args.deploymentMode,
    namespace: plan.args.namespace,
    releaseName: plan.args.releaseName,
    chartVersion: plan.chart.version,
    nodeResults: results,
    summary: outs.summary,
    kataNodes,
    runId: outs.runId,
  };
}
