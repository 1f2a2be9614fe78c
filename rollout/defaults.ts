// The rollout options' defaults, in one place for the resource, its provider and the component's plan.
// Node built-ins only (the provider imports it).
export const ROLLOUT_DEFAULTS = {
  /** Overall limit of one install or cleanup run, seconds. */
  timeoutSeconds: 3600,
  /** Propose and run installs for selected nodes without a successful one. */
  healDrift: true,
  /** Run the cleanup dispatcher on destroy (job mode). */
  cleanupOnDestroy: true,
  /** A pod stuck this long (image pull, unschedulable, crash loop) fails its node early, seconds. */
  stuckGraceSeconds: 300,
} as const;
