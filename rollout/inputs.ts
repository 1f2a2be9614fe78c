// Program time: the rollout resource's inputs from the component's validated args and the rendered chart 4.0.0
// objects (chart). The hook Jobs come from the chart renderer (`dispatcherJob`), so the Job the rollout
// creates is exactly the one chart 4.0.0 would run, with our bundled dispatcher or the upstream image.
import { ownerValue } from "../dispatcher/naming";
import { parseJobTemplate } from "../dispatcher/template";
import { payloadDigest } from "../kube/payload";
import { DAEMONSET_AUTOMATIC_TOLERATIONS, type Toleration } from "../kube/tolerations";
import { CHART_VERSION, identityImmutable } from "../chart/defaults";
import {
  dispatcherJobOf,
  type DispatcherBundleRef,
  type DispatcherImplementation,
} from "../chart/dispatcherJobs";
import type { DaemonSet, Job, K8sObject } from "../chart/k8s";
import { dispatcherSelection, type RenderedChart } from "../chart/render";
import { INSTALL_TEMPLATE_KEY } from "../chart/renderTypes";
import { normalizeSelection } from "../kube/nodeSelection";
import type { ConnectionSpec } from "./connection";
import { ROLLOUT_DEFAULTS } from "./defaults";
import { computeRunKey } from "./runKey";
import { hookOf, keptOnUninstall } from "../kube/helmHooks";
import type { DispatcherStage, KubeObject, ReleaseObjectRef, RolloutInputs } from "./types";

/** The rollout options the component exposes (all optional). */
export interface RolloutOptions {
  /** Overall limit of one install or cleanup run. Default 3600 s. */
  timeoutSeconds?: number;
  /** Propose an update in preview when selected nodes have no successful install (new nodes, earlier failures). Default true. */
  healDrift?: boolean;
  /** Run the cleanup dispatcher on destroy (job mode). Default true. */
  cleanupOnDestroy?: boolean;
  /** A pod stuck (image pull, unschedulable, crash loop) this long fails its node early. Default 300 s. */
  stuckGraceSeconds?: number;
}

export interface RolloutBuildArgs {
  /** From the component's validated args (ResolvedArgs). */
  namespace: string;
  releaseName: string;
  /** Chart reference and version as handed to helm.v4.Chart. */
  chart: { chart: string; version?: string };
  /** `renderChart(values, release)`: the hook Jobs and the per-node templates come from this one render. */
  rendered: RenderedChart;
  /** The dispatcher Jobs built from `rendered` already (components/assemble.ts); else built here from it. */
  dispatcherJobs?: { install: Job; cleanup: Job };
  /** Resolved at program time (rollout/resolveConnection.ts); becomes a secret input. */
  connection: ConnectionSpec;
  dispatcherImplementation?: DispatcherImplementation;
  /** The bundled dispatcher's ConfigMap reference (required for `bundled`). */
  bundle?: DispatcherBundleRef;
  rerunToken?: string;
  rollout?: RolloutOptions;
  /**
   * The chart's hook objects of every phase; default: those of `rendered`. Under a Pulumi engine, Helm's own render
   * (the kubernetes provider's `kubernetes:helm:template` invoke).
   */
  hooks?: readonly K8sObject[];
  /** The release's non-hook objects, from the same render as `hooks`; default: `rendered.resources`. */
  releaseObjects?: readonly K8sObject[];
}

/** Every hook object of an offline render, whatever its phase. */
export function renderedHooks(rendered: RenderedChart): K8sObject[] {
  const h = rendered.hooks;
  return [
    ...(h.installDispatcher ? [h.installDispatcher] : []),
    ...(h.cleanupDispatcher ? [h.cleanupDispatcher] : []),
    ...h.postDeleteRbacCleanup,
  ];
}

/**
 * The release's non-hook objects by reference, `keep` marked (what `helm uninstall` deletes or keeps). A namespaced
 * object without a namespace is in the release namespace (kube/resourcePaths.ts puts it there).
 */
export function releaseObjectRefs(objects: readonly K8sObject[]): ReleaseObjectRef[] {
  return objects
    .filter((o) => hookOf(o) === undefined)
    .map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: String(o.metadata.name),
      ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
      ...(keptOnUninstall(o) ? { keep: true } : {}),
    }));
}

function findObject<T extends K8sObject>(
  objects: readonly K8sObject[],
  kind: string,
  name: string,
): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name) as T | undefined;
}

function stage(
  which: "install" | "cleanup",
  args: RolloutBuildArgs,
  template: Job | undefined,
): DispatcherStage {
  const implementation = args.dispatcherImplementation ?? "bundled";
  const built =
    args.dispatcherJobs?.[which] ?? dispatcherJobOf(which, args.rendered, implementation, args.bundle);
  const job = built as unknown as KubeObject;
  const names = args.rendered.names;
  const tolerations = (template?.spec.template.spec.tolerations ?? []) as Toleration[];
  return {
    job,
    ownerValue: ownerValue(which === "install" ? names.installNamePrefix : names.cleanupNamePrefix),
    // As data from the chart's values: the same selection the chart wrote into the Job's flags.
    selection: normalizeSelection(dispatcherSelection(args.rendered.values, which)),
    // The bundled dispatcher admits nodes like a DaemonSet would: the template's tolerations plus the automatic ones.
    tolerations: [...tolerations, ...DAEMONSET_AUTOMATIC_TOLERATIONS],
    ...(typeof args.rendered.values.job?.parallelism === "number"
      ? { parallelism: args.rendered.values.job.parallelism }
      : {}),
    // Only the install skips nodes that carry its payload; the cleanup runs on every selected node.
    ...(implementation === "bundled" && which === "install"
      ? { payload: installPayload(args.rendered) }
      : {}),
  };
}

/**
 * The payload digest of the per-node install template as the dispatcher will compute it: from the job-templates
 * ConfigMap's text, parsed by the dispatcher's own parser (so both sides hash the same object).
 */
function installPayload(rendered: RenderedChart): string | undefined {
  const configMap = findObject<K8sObject & { data?: Record<string, string> }>(
    rendered.resources,
    "ConfigMap",
    rendered.names.jobTemplatesConfigMap,
  );
  const text = configMap?.data?.[INSTALL_TEMPLATE_KEY];
  return text === undefined ? undefined : payloadDigest(parseJobTemplate(text, INSTALL_TEMPLATE_KEY));
}

/** Plain inputs for KataRollout (wrap the call in `apply` when args hold Outputs). */
export function buildRolloutInputs(args: RolloutBuildArgs): RolloutInputs {
  const { rendered } = args;
  const names = rendered.names;
  const opts = args.rollout ?? {};
  if (rendered.mode !== "job" && rendered.mode !== "daemonset") {
    throw new Error(
      `deploymentMode: chart 4.0.0 renders no workload for this value; use "daemonset" or "job"`,
    );
  }
  const implementation = args.dispatcherImplementation ?? "bundled";
  const base = {
    connection: args.connection,
    namespace: args.namespace,
    releaseName: args.releaseName,
    mode: rendered.mode,
    daemonSetName: names.daemonSet,
    installDispatcherJobName: names.installDispatcherJob,
    timeoutSeconds: opts.timeoutSeconds ?? ROLLOUT_DEFAULTS.timeoutSeconds,
    healDrift: opts.healDrift ?? ROLLOUT_DEFAULTS.healDrift,
    cleanupOnDestroy: opts.cleanupOnDestroy ?? ROLLOUT_DEFAULTS.cleanupOnDestroy,
    stuckGraceSeconds: opts.stuckGraceSeconds,
    displayName: `kata-deploy ${args.namespace}/${args.releaseName}`,
    hooks: (args.hooks ?? renderedHooks(rendered)) as unknown as KubeObject[],
    releaseObjects: releaseObjectRefs(args.releaseObjects ?? rendered.resources),
    ...(identityImmutable(args.chart.version ?? CHART_VERSION) ? { identityImmutable: true } : {}),
  };
  const chartVersion = args.chart.version ?? CHART_VERSION;
  if (rendered.mode === "job") {
    const install = stage("install", args, rendered.jobTemplates?.install);
    const cleanup = stage("cleanup", args, rendered.jobTemplates?.cleanup);
    const templates = findObject<K8sObject & { data: Record<string, string> }>(
      rendered.resources,
      "ConfigMap",
      names.jobTemplatesConfigMap,
    );
    return {
      ...base,
      install,
      cleanup,
      ...(args.rerunToken ? { rerunToken: args.rerunToken } : {}),
      runKey: computeRunKey({
        chartVersion,
        chartReference: args.chart.chart,
        mode: "job",
        dispatcherImplementation: implementation,
        dispatcherScriptSha256: implementation === "bundled" ? args.bundle?.sha256 : undefined,
        jobTemplates: templates?.data,
        installDispatcherJob: install.job,
        rerunToken: args.rerunToken,
      }),
    };
  }
  const ds = findObject<DaemonSet>(rendered.resources, "DaemonSet", names.daemonSet);
  if (!ds) throw new Error(`daemonset mode: the rendered chart has no DaemonSet ${names.daemonSet}`);
  const pod = ds.spec.template.spec;
  return {
    ...base,
    daemonSet: {
      name: names.daemonSet,
      podSelector: ds.spec.selector.matchLabels,
      nodeSelector: pod.nodeSelector && Object.keys(pod.nodeSelector).length ? pod.nodeSelector : undefined,
      tolerations: (pod.tolerations ?? []) as Toleration[],
    },
    // The cleanup stage is kept for a later switch back; in daemonset mode the DaemonSet's own SIGTERM cleans.
    runKey: computeRunKey({
      chartVersion,
      chartReference: args.chart.chart,
      mode: "daemonset",
      daemonSetTemplate: ds.spec.template,
      rerunToken: args.rerunToken,
    }),
  };
}
