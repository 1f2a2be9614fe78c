// The objects the rollout adds in job mode, computed once for the component and for `npm run plan`: the hook
// Jobs the rollout creates (chart 4.0.0's, via `dispatcherJob`), the bundled dispatcher's script ConfigMap and
// the dispatcher's extra Role/RoleBinding. Pure apart from building the bundle (esbuild, cached).
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { buildDispatcherBundle, type DispatcherBundle } from "../dispatcher/bundle";
import { DispatcherImplementation } from "./args";
import {
  dispatcherJob,
  dispatcherPodReaderRole,
  dispatcherPodReaderRoleBinding,
  dispatcherScriptConfigMap,
  dispatcherScriptConfigMapName,
  type DispatcherBundleRef,
} from "../chart/dispatcherJobs";
import type { BindingLike, ConfigMap, Job, RoleLike } from "../chart/k8s";
import { renderChart, type Release } from "../chart/render";
import type { ChartNames } from "../chart/names";
import { DeploymentMode } from "./args";
import type { Plan } from "./plan";

/** The bundle reference the bundled dispatcher Job mounts. */
export function bundleRefOf(bundle: DispatcherBundle, names: ChartNames): DispatcherBundleRef {
  return { configMapName: dispatcherScriptConfigMapName(names), entry: bundle.entry, sha256: bundle.sha256 };
}

/** The namespaced objects the component adds beside the chart in job mode (created before the rollout). */
export interface DispatcherExtras {
  /** Only with the bundled dispatcher. */
  scriptConfigMap?: ConfigMap;
  podReaderRole: RoleLike;
  podReaderRoleBinding: BindingLike;
}

export function dispatcherExtras(
  names: ChartNames,
  release: Release,
  implementation: DispatcherImplementation,
  bundle?: DispatcherBundle,
): DispatcherExtras {
  const extras: DispatcherExtras = {
    podReaderRole: dispatcherPodReaderRole(names, release),
    podReaderRoleBinding: dispatcherPodReaderRoleBinding(names, release),
  };
  if (implementation === DispatcherImplementation.Bundled) {
    if (!bundle) throw new Error("internal: the bundled dispatcher needs its bundle");
    extras.scriptConfigMap = dispatcherScriptConfigMap(bundle, names, release);
  }
  return extras;
}

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
  const release: Release = {
    name: plan.args.releaseName,
    namespace: plan.args.namespace,
  };
  const implementation =
    (plan.args.dispatcherImplementation as DispatcherImplementation | undefined) ??
    DispatcherImplementation.Bundled;
  const rendered = renderChart(plan.values, release, { parseYaml });
  const bundle =
    implementation === DispatcherImplementation.Bundled
      ? (options.bundle ?? (await buildDispatcherBundle()))
      : undefined;
  const ref = bundle ? bundleRefOf(bundle, rendered.names) : undefined;
  const extras = dispatcherExtras(rendered.names, release, implementation, bundle);
  const job = (stage: "install" | "cleanup") =>
    dispatcherJob(stage, plan.values, release, implementation, ref, { parseYaml });
  let summarized: Pick<PlannedRollout, "note" | "scriptConfigMap"> = {};
  if (extras.scriptConfigMap) {
    const { data, ...rest } = extras.scriptConfigMap;
    summarized = {
      note: "scriptConfigMap.data is summarized as key -> bytes and sha256; the real ConfigMap holds the bundled dispatcher's text",
      scriptConfigMap: { ...rest, data: summarizeData(data ?? {}) },
    };
  }
  // In the order the component creates them: the extras with the chart, then the rollout's install Job.
  const planned: PlannedRollout = {
    dispatcherImplementation: implementation,
    ...summarized,
    podReaderRole: extras.podReaderRole,
    podReaderRoleBinding: extras.podReaderRoleBinding,
    installDispatcherJob: job("install"),
    cleanupDispatcherJob: job("cleanup"),
  };
  return planned;
}
