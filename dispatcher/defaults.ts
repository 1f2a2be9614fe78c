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
} as const;
