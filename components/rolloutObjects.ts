// What `npm run plan` shows of the rollout in job mode: the hook Jobs the rollout creates and the objects the
// component adds beside the chart (script ConfigMap, pod-reader Role/RoleBinding, the recorder's RBAC), all from
// `assemble(plan)`.
// Pure apart from building the bundle (esbuild, cached).
import { createHash } from "node:crypto";
import { buildDispatcherBundle, type DispatcherBundle } from "../dispatcher/bundle";
import type { BindingLike, ConfigMap, Job, RoleLike } from "../chart/k8s";
import type { DispatcherRecorderRbac } from "../chart/dispatcherJobs";
import { DeploymentMode, DispatcherImplementation } from "./args";
import { assemble, type Assembly } from "./assemble";
import type { Plan } from "./plan";

/** A ConfigMap's data as `key → { bytes, sha256 }` (the script is ~600 KB of text). */
export interface DataSummary {
  [key: string]: { bytes: number; sha256: string };
}

/** Job mode: what the rollout sends to the API besides the chart (`npm run plan` prints it). */
export interface PlannedRollout {
  dispatcherImplementation: DispatcherImplementation;
  /** The script ConfigMap with `data` summarized (see `note`); bundled only. */
  scriptConfigMap?: Omit<ConfigMap, "data"> & { data: DataSummary };
  podReaderRole: RoleLike;
  podReaderRoleBinding: BindingLike;
  /** Bundled only: nodes patch and events create, so the dispatcher records each node's outcome and payload. */
  recorder?: DispatcherRecorderRbac;
  /** Created by the rollout on create/update (post-install/post-upgrade). */
  installDispatcherJob: Job;
  /** Created by the rollout on destroy (pre-delete). */
  cleanupDispatcherJob: Job;
  note?: string;
}

export function summarizeData(data: Readonly<Record<string, string>>): DataSummary {
  const out: DataSummary = {};
  for (const [key, text] of Object.entries(data)) {
    out[key] = {
      bytes: Buffer.byteLength(text, "utf8"),
      sha256: createHash("sha256").update(text, "utf8").digest("hex"),
    };
  }
  return out;
}

/** Whether assembling `plan` needs the bundled dispatcher (job mode with the bundled implementation). */
export function needsBundle(plan: Plan): boolean {
  return (
    plan.args.deploymentMode === DeploymentMode.Job &&
    plan.args.dispatcherImplementation === DispatcherImplementation.Bundled
  );
}

/** The rollout's own objects of an assembly, the script ConfigMap's data summarized; undefined in daemonset mode. */
export function plannedRollout(assembly: Assembly): PlannedRollout | undefined {
  const { dispatcherImplementation, extras, dispatcherJobs } = assembly;
  if (assembly.mode !== DeploymentMode.Job || !extras || !dispatcherJobs) return undefined;
  let summarized: Pick<PlannedRollout, "note" | "scriptConfigMap"> = {};
  if (extras.scriptConfigMap) {
    const { data, ...rest } = extras.scriptConfigMap;
    summarized = {
      note: "scriptConfigMap.data is summarized as key -> bytes and sha256; the real ConfigMap holds the bundled dispatcher's text",
      scriptConfigMap: { ...rest, data: summarizeData(data ?? {}) },
    };
  }
  // In the order the component creates them: the extras with the chart, then the rollout's install Job.
  return {
    dispatcherImplementation,
    ...summarized,
    podReaderRole: extras.podReaderRole,
    podReaderRoleBinding: extras.podReaderRoleBinding,
    ...(extras.recorder ? { recorder: extras.recorder } : {}),
    installDispatcherJob: dispatcherJobs.install,
    cleanupDispatcherJob: dispatcherJobs.cleanup,
  };
}

/**
 * The rollout's own objects for a plan, exactly as the component and the rollout would send them (the script
 * ConfigMap's data summarized). Undefined in daemonset mode (the rollout then only waits for the DaemonSet).
 * Async because the bundled dispatcher is built with esbuild; pass `bundle` to reuse one.
 */
export async function planRollout(
  plan: Plan,
  options: { bundle?: DispatcherBundle } = {},
): Promise<PlannedRollout | undefined> {
  if (plan.args.deploymentMode !== DeploymentMode.Job) return undefined;
  const bundle = needsBundle(plan) ? (options.bundle ?? (await buildDispatcherBundle())) : undefined;
  return plannedRollout(assemble(plan, { bundle }));
}
