// One release for a plan: the chart rendered once (chart 4.0.0's templates, whose hooks the rollout runs), and
// from that render every object and hook the component (kataDeploy.ts), the demo (main/cli.ts), `npm run plan`
// (rolloutObjects.ts) and the rollout's inputs need. Pure: the bundled dispatcher is built by the caller
// (esbuild, async) and passed in.
import { parse as parseYaml } from "yaml";
import type { DispatcherBundle } from "../dispatcher/bundle";
import {
  dispatcherJobOf,
  dispatcherPodReaderRole,
  dispatcherRecorderRbac,
  type DispatcherRecorderRbac,
  dispatcherPodReaderRoleBinding,
  dispatcherScriptConfigMap,
  dispatcherScriptConfigMapName,
  type DispatcherBundleRef,
} from "../chart/dispatcherJobs";
import type { BindingLike, ConfigMap, Job, K8sObject, RoleLike } from "../chart/k8s";
import { ChartValuesError, renderChart, type Release, type RenderedChart } from "../chart/render";
import { UnsupportedOperatorError } from "../chart/selectors";
import { buildRolloutInputs, type ConnectionSpec, type RolloutInputs } from "../rollout";
import { DeploymentMode, DispatcherImplementation } from "./args";
import type { Plan } from "./plan";
import { COMPONENT_DEFAULTS, KataDeployArgsError } from "./validation";

/** The namespaced objects the component adds beside the chart in job mode (created before the rollout). */
export interface DispatcherExtras {
  /** Only with the bundled dispatcher. */
  scriptConfigMap?: ConfigMap;
  podReaderRole: RoleLike;
  podReaderRoleBinding: BindingLike;
  /** Only with the bundled dispatcher: it records each node's outcome and payload on the Node. */
  recorder?: DispatcherRecorderRbac;
}

export interface Assembly {
  release: Release;
  mode: DeploymentMode;
  dispatcherImplementation: DispatcherImplementation;
  /** The one render of the plan's values. */
  rendered: RenderedChart;
  /** The Namespace, when the plan creates it. */
  namespace?: K8sObject;
  /** The dispatcher's extra objects: in job mode, and whenever asked for (`withExtras`). */
  extras?: DispatcherExtras;
  /** Job mode: the dispatcher Jobs the rollout creates (the chart's hooks, bundled or upstream). */
  dispatcherJobs?: { install: Job; cleanup: Job };
  /** The bundled dispatcher's ConfigMap reference, when bundled. */
  bundleRef?: DispatcherBundleRef;
  /** What `pulumi up` applies before the rollout, in order: the namespace, the chart's objects, the extras. */
  objects: K8sObject[];
}

export interface AssembleOptions {
  /** The bundled dispatcher (required when it runs). */
  bundle?: DispatcherBundle;
  /**
   * Which dispatcher the extras are for when the plan is in daemonset mode and shows none (the component
   * creates the extras before an Output decides the mode).
   */
  implementation?: DispatcherImplementation;
  /** Build the extras outside job mode too (see `implementation`). */
  withExtras?: boolean;
}

/** A render the chart's templates refuse becomes a KataDeployArgsError, as Helm's `fail` would stop the render. */
export function chartRefusal<T>(version: string, render: () => T): T {
  try {
    return render();
  } catch (e) {
    if (e instanceof ChartValuesError || e instanceof UnsupportedOperatorError) {
      throw new KataDeployArgsError([
        { path: "values", message: `chart ${version} refuses these values: ${e.message}` },
      ]);
    }
    throw e;
  }
}

export function releaseOf(plan: Plan): Release {
  return { name: plan.args.releaseName, namespace: plan.args.namespace };
}

function dispatcherExtras(
  rendered: RenderedChart,
  release: Release,
  implementation: DispatcherImplementation,
  bundle?: DispatcherBundle,
): DispatcherExtras {
  const extras: DispatcherExtras = {
    podReaderRole: dispatcherPodReaderRole(rendered.names, release),
    podReaderRoleBinding: dispatcherPodReaderRoleBinding(rendered.names, release),
  };
  if (implementation === DispatcherImplementation.Bundled) {
    if (!bundle) throw new Error("internal: the bundled dispatcher needs its bundle");
    extras.scriptConfigMap = dispatcherScriptConfigMap(bundle, rendered.names, release);
    extras.recorder = dispatcherRecorderRbac(rendered.names, release);
  }
  return extras;
}

/** The release of a plan, rendered once. */
export function assemble(plan: Plan, options: AssembleOptions = {}): Assembly {
  const release = releaseOf(plan);
  const mode = plan.args.deploymentMode;
  const job = mode === DeploymentMode.Job;
  const implementation =
    plan.args.dispatcherImplementation ??
    options.implementation ??
    COMPONENT_DEFAULTS.dispatcherImplementation;
  // Chart 4.0.0's templates whatever the plan's version: the rollout runs 4.0.0's dispatcher flags (a warning
  // says so for 4.1.0), and helm.v4.Chart applies the requested version's own objects.
  const rendered = chartRefusal("4.0.0", () => renderChart(plan.values, release, { parseYaml }));
  const bundled = implementation === DispatcherImplementation.Bundled;
  const bundleRef =
    bundled && options.bundle
      ? {
          configMapName: dispatcherScriptConfigMapName(rendered.names),
          entry: options.bundle.entry,
          sha256: options.bundle.sha256,
        }
      : undefined;
  const assembly: Assembly = {
    release,
    mode,
    dispatcherImplementation: implementation,
    rendered,
    bundleRef,
    objects: [],
  };
  if (plan.args.createNamespace) {
    assembly.namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: release.namespace } };
  }
  if (job || options.withExtras) {
    assembly.extras = dispatcherExtras(rendered, release, implementation, options.bundle);
  }
  if (job) {
    const hook = (stage: "install" | "cleanup") =>
      chartRefusal("4.0.0", () => dispatcherJobOf(stage, rendered, implementation, bundleRef));
    assembly.dispatcherJobs = { install: hook("install"), cleanup: hook("cleanup") };
  }
  const extras = job && assembly.extras ? assembly.extras : undefined;
  assembly.objects = [
    ...(assembly.namespace ? [assembly.namespace] : []),
    ...rendered.resources,
    ...(extras?.scriptConfigMap ? [extras.scriptConfigMap] : []),
    ...(extras ? [extras.podReaderRole, extras.podReaderRoleBinding] : []),
    ...(extras?.recorder ? Object.values(extras.recorder) : []),
  ];
  return assembly;
}

/**
 * The rollout resource's inputs for an assembled plan. `chartVersion` is the deployed chart's version (a local
 * chart's comes from its Chart.yaml).
 */
export function rolloutInputsOf(
  plan: Plan,
  assembly: Assembly,
  connection: ConnectionSpec,
  chartVersion: string | undefined = plan.chart.version,
  /** The release as Helm renders it (components/helmTemplate.ts); default: the offline render. */
  helm?: { hooks: readonly K8sObject[]; resources: readonly K8sObject[] },
): RolloutInputs {
  return buildRolloutInputs({
    namespace: assembly.release.namespace,
    releaseName: assembly.release.name,
    chart: { chart: plan.chart.reference, version: chartVersion },
    rendered: assembly.rendered,
    dispatcherJobs: assembly.dispatcherJobs,
    connection,
    dispatcherImplementation: assembly.dispatcherImplementation,
    bundle: assembly.bundleRef,
    rerunToken: plan.args.rerunToken,
    rollout: plan.args.rollout,
    hooks: helm?.hooks,
    releaseObjects: helm?.resources,
  });
}
