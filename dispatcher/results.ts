// The dispatcher's results document (what --results-file holds and the rollout resource reads) and its summary.
import { closeSync, openSync, writeSync } from "node:fs";
import type { NodeResult } from "../kube/jobStatus";
import { OWNER_LABEL } from "./naming";

export interface ResultsCounts {
  total: number;
  targeted: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Nodes whose Job vanished before anyone saw how it ended (see NodeOutcome). */
  unknown: number;
}

export interface ResultsDocument {
  runId: string;
  owner: string;
  /** The label whose value is `owner` on this run's Jobs and pods (`<--tracking-label-prefix>/owner`). */
  ownerLabel?: string;
  ownerJob?: { name: string; uid: string };
  namespace: string;
  startedAt: string;
  finishedAt: string;
  /** 0 all targeted nodes succeeded; 1 some node failed, timeout or interrupt; 2 usage or cluster error before any Job. */
  exitCode: 0 | 1 | 2;
  error?: string;
  dryRun: boolean;
  /** `--yield-to-live-run`: the owner Job of the run that was still working, so this one dispatched nothing. */
  yieldedTo?: string;
  timedOut: boolean;
  interrupted: boolean;
  /** Dry run: the Jobs that would be created. */
  plan?: { node: string; job: string }[];
  nodes: NodeResult[];
  counts: ResultsCounts;
  /** `--cleanup-job-template`: the cleanup pass over nodes this install marks but no longer selects (ran first). */
  removed?: { owner: string; nodes: NodeResult[]; counts: ResultsCounts };
}

/** The counts of a results document; `targeted` is every node a Job was meant for (all but the skipped). */
export function countResults(nodes: NodeResult[]): ResultsCounts {
  const counts: ResultsCounts = {
    total: nodes.length,
    targeted: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    unknown: 0,
  };
  for (const r of nodes) {
    counts[r.outcome]++;
    if (r.outcome !== "skipped") counts.targeted++;
  }
  return counts;
}

/**
 * The document as JSON text, in pieces of one node each: at 100,000 nodes one indented string would be tens of
 * megabytes on top of everything the run holds. Key order differs from `JSON.stringify(doc)`: nodes come last.
 */
export function* resultsJsonChunks(doc: ResultsDocument): Generator<string> {
  const { nodes, ...header } = doc;
  const head = JSON.stringify(header, null, 2);
  yield `${head.slice(0, -"\n}".length)},\n  "nodes": [`;
  for (let i = 0; i < nodes.length; i++) yield `${i > 0 ? "," : ""}\n    ${JSON.stringify(nodes[i])}`;
  yield `${nodes.length > 0 ? "\n  " : ""}]\n}\n`;
}

/** Write the document to `path` piece by piece (see `resultsJsonChunks`). */
export function writeResultsFile(path: string, doc: ResultsDocument): void {
  const fd = openSync(path, "w");
  try {
    for (const chunk of resultsJsonChunks(doc)) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

/** The human summary printed at the end of a run. */
export function summarize(doc: ResultsDocument): string {
  const lines: string[] = [];
  const c = doc.counts;
  if (doc.dryRun) {
    lines.push(
      `dry run: ${doc.plan?.length ?? 0} Job(s) would be created in namespace ${doc.namespace} (owner ${doc.owner})`,
    );
    for (const p of doc.plan ?? []) lines.push(`  ${p.node} -> ${p.job}`);
  } else if (doc.yieldedTo) {
    lines.push(
      `yielded: another run of ${doc.owner} is still working (owner Job ${doc.namespace}/${doc.yieldedTo}); nothing dispatched`,
    );
  } else {
    lines.push(
      `summary: ${c.succeeded} succeeded, ${c.failed} failed, ${c.skipped} skipped${c.unknown ? `, ${c.unknown} unknown` : ""} (of ${c.total} node(s); owner ${doc.owner}, namespace ${doc.namespace})`,
    );
  }
  for (const r of doc.nodes.filter((n) => n.outcome !== "succeeded")) {
    lines.push(
      `  ${r.outcome} ${r.node}${r.job ? ` (Job ${r.job})` : ""}: ${r.reason ?? ""}${r.message ? ` - ${r.message.split("\n")[0]}` : ""}`,
    );
  }
  if (c.failed > 0) {
    lines.push(
      `logs: kubectl logs -n ${doc.namespace} -l ${doc.ownerLabel ?? OWNER_LABEL}=${doc.owner} --all-containers --prefix`,
    );
  }
  if (doc.error) lines.push(`error: ${doc.error}`);
  return lines.join("\n");
}
