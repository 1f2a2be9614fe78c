// The run key: the install runs again exactly when it changes. It covers what decides what the per-node Jobs and
// the dispatcher do — chart version and reference, the rendered per-node Job templates and dispatcher Job (that is,
// every value that reaches them), the dispatcher implementation and its script hash — plus an optional rerunToken.
// Computed at program time; Node built-ins only so the provider may recompute it.
import { createHash } from "node:crypto";
import { canonicalJson } from "../kube/payload";

export interface RunKeyParts {
  chartVersion: string;
  chartReference: string;
  mode: "job" | "daemonset";
  /** `bundled` or `upstream`. */
  dispatcherImplementation?: string;
  /** sha256 of the bundled dispatcher script (empty for upstream). */
  dispatcherScriptSha256?: string;
  /** The rendered job-templates ConfigMap data (`install-job.yaml`, `cleanup-job.yaml`). */
  jobTemplates?: Record<string, string>;
  /** The rendered install dispatcher Job. */
  installDispatcherJob?: unknown;
  /** Daemonset mode: the rendered DaemonSet's pod template (what the DaemonSet controller rolls out). */
  daemonSetTemplate?: unknown;
  rerunToken?: string;
}

/** `v1:<sha256>`; the version prefix lets a future change of the rule be told apart from a change of values. */
export function computeRunKey(parts: RunKeyParts): string {
  const normalized: RunKeyParts = {
    ...parts,
    dispatcherImplementation:
      parts.mode === "job" ? (parts.dispatcherImplementation ?? "bundled") : undefined,
    dispatcherScriptSha256: parts.mode === "job" ? parts.dispatcherScriptSha256 || undefined : undefined,
    rerunToken: parts.rerunToken || undefined,
  };
  return `v1:${createHash("sha256").update(canonicalJson(normalized)).digest("hex")}`;
}
