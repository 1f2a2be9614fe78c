// `job.parallelism`, the chart value that becomes the dispatcher's `--parallelism` flag: the most per-node Jobs
// in flight at once. One default (chart 4.0.0's values.yaml, and the dispatcher's own default when the flag is
// absent) and one lower bound, for the chart's values, the component's schema, the dispatcher's command line and
// its fan-out. Node built-ins only (the bundled dispatcher and the serialized provider import it).

/** The chart's `job.parallelism` and the dispatcher's default `--parallelism`. */
export const PARALLELISM_DEFAULT = 100;
/** The fewest Jobs in flight that still make progress. */
export const PARALLELISM_MIN = 1;
