// The end of a rollout as a person reads it (a per-node table) and as `pulumi stack output --json` would
// print the program's exports, and the short summary a person reads at the end of `npm start`. Pure.
import type { NodeResult } from "../kube/jobStatus";
import type { Plan } from "../components/plan";
import { encodeOutcomes } from "../rollout/outcomes";
import type { RolloutOutputs } from "../rollout/types";
import { formatSeconds } from "./progress";

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
    nodeOutcomes: encodeOutcomes(results),
    summary: outs.summary,
    kataNodes,
    runId: outs.runId,
  };
}

/** How many of the slowest nodes the summary names. */
export const SLOWEST_SHOWN = 5;

function tookMs(r: NodeResult): number | undefined {
  if (!r.startedAt || !r.finishedAt) return undefined;
  return Date.parse(r.finishedAt) - Date.parse(r.startedAt);
}

function why(r: NodeResult): string {
  return [r.reason, r.message].filter(Boolean).join(": ") || "(no reason recorded)";
}

/**
 * The end of a rollout as a person reads it: the counts, every node that did not succeed with its reason, and
 * the slowest nodes. Everything else (one row per node, the exact outputs) goes to files the caller names.
 */
export function summaryText(
  results: readonly NodeResult[],
  summary: { total: number; succeeded: number; failed: number; skipped: number; durationSeconds?: number },
  heading: string,
): string {
  const lines = [heading];
  const took = summary.durationSeconds !== undefined ? ` in ${formatSeconds(summary.durationSeconds)}` : "";
  lines.push(
    `${summary.succeeded} of ${summary.total} nodes succeeded, ${summary.failed} failed, ${summary.skipped} skipped${took}`,
  );
  const width = (rows: readonly NodeResult[]) =>
    Math.min(MAX_COLUMN, Math.max(...rows.map((r) => r.node.length)));
  const outcomes = [...new Set(results.map((r) => r.outcome).filter((o) => o !== "succeeded"))].sort(
    (a, b) => (ORDER[a] ?? 0.5) - (ORDER[b] ?? 0.5) || a.localeCompare(b),
  );
  for (const outcome of outcomes) {
    const rows = results.filter((r) => r.outcome === outcome).sort((a, b) => a.node.localeCompare(b.node));
    const w = width(rows);
    lines.push("", `${outcome[0].toUpperCase()}${outcome.slice(1)} (${rows.length}):`);
    for (const r of rows) {
      const attempts = r.attempts > 0 ? `  ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}` : "";
      lines.push(`  ${r.node.padEnd(w)}${attempts}  ${why(r)}`);
    }
  }
  const timed = results
    .filter((r) => r.outcome !== "skipped" && tookMs(r) !== undefined)
    .sort((a, b) => tookMs(b)! - tookMs(a)! || a.node.localeCompare(b.node))
    .slice(0, SLOWEST_SHOWN);
  if (timed.length > 0) {
    const w = width(timed);
    lines.push("", "Slowest nodes (first Job start to finish, by the cluster's clock):");
    for (const r of timed)
      lines.push(
        `  ${r.node.padEnd(w)}  ${formatSeconds(tookMs(r)! / 1000).padStart(6)}  ${r.outcome}, ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}`,
      );
  }
  return lines.join("\n");
}
