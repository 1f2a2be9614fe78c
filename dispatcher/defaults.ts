// The dispatcher's defaults for options its command line may leave out, in one place for the command line
// (cli.ts), the run (run.ts) and the node resolution (nodes.ts). `--parallelism` is the chart's rule
// (chart/parallelism.ts). Seconds unless the name says otherwise.
export const DISPATCHER_DEFAULTS = {
  /** Page size of node LISTs. */
  nodePageSize: 500,
  /** Re-check interval while waiting for nodes (and for stuck-pod checks). */
  pollIntervalSecs: 5,
  /** 0: resolve the nodes once. */
  waitForNodesSecs: 0,
  /** How long the eligible set must stay unchanged (with waitForNodesSecs). */
  nodeSettleSecs: 15,
  /** A pod unschedulable or unpullable this long makes its node stuck. */
  stuckAfterSecs: 120,
  /** How long to wait for Jobs of earlier runs to be deleted. */
  staleDeleteTimeoutSecs: 120,
  /** Between progress lines. */
  progressIntervalSecs: 10,
  /** 0: no wait for the node's Ready condition after its Job. */
  waitNodeReadySecs: 0,
} as const;

/**
 * The node work's fixed pacing (dispatcher-reference.md §3 constants). Labels are re-applied until they hold for
 * `labelStableChecks` checks in a row (k3s/RKE2 re-register a node with cached labels after the CRI restart).
 */
export const NODE_WORK_TIMING = {
  /** Between readiness, handler and label-stability re-checks. */
  checkIntervalMs: 2000,
  /** How long a node may take to serve a required handler. */
  handlerWaitMs: 120_000,
  labelStableChecks: 6,
  labelApplyAttempts: 12,
  /** Guarded writes retried on a conflict (409/422), per kind of write. */
  claimAttempts: 3,
  labelPatchAttempts: 5,
  taintPatchAttempts: 3,
};

export type NodeWorkTiming = typeof NODE_WORK_TIMING;
