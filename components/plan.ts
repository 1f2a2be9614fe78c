// What a KataDeploy will do, as data: the validated args with their defaults, the chart reference and
// version, and the exact values handed to the chart. Pure (no Pulumi, no I/O): the component, the
// `plan` command and the stack program all go through it, and later parts (the rollout's dispatcher
// Jobs) extend the same Plan.
import { DeploymentMode, DispatcherImplementation } from "./args";
import { CHART_NAME } from "../chart/names";
import { parse as parseYaml } from "yaml";
import { CHART_VERSION, ChartValues, isChartVersion } from "../chart/defaults";
import type { K8sObject } from "../chart/k8s";
import { dispatcherSelectionArgs, renderChart } from "../chart/render";
import { chartRefusal, releaseOf, type Assembly } from "./assemble";
import {
  ArgIssue,
  KataDeployArgsError,
  ResolvedArgs,
  RolloutSettings,
  checkArgs,
  isPlainObject,
} from "./validation";

type Values = Record<string, unknown>;

/** The resource name used when none is given (the stack program and `npm run plan` use it). */
export const DEFAULT_RESOURCE_NAME = "kata-deploy";

export interface PlannedChart {
  /** What helm.v4.Chart gets as `chart`. */
  reference: string;
  /** Requested chart version; absent for a local chart (its Chart.yaml says). */
  version?: string;
  /** http(s) chart repository, when the chart comes from one. */
  repository?: string;
  /** Local chart directory, when used. */
  path?: string;
}

/** Which nodes a dispatcher works on, as the dispatcher arguments the chart renders (empty = all nodes). */
export interface PlannedSelection {
  install: string[];
  cleanup: string[];
}

/** The chart keys a plan shows with their effective value (the chart version's defaults under the user's). */
type ShownChartKeys =
  | "image"
  | "imagePullPolicy"
  | "imagePullSecrets"
  | "k8sDistribution"
  | "debug"
  | "defaultShim"
  | "snapshotter"
  | "tolerations"
  | "nodeSelector"
  | "priorityClassName"
  | "env"
  | "job";

/**
 * The args as a plan shows them: the component's own args parsed (every default applied; the kubeconfig only as
 * "[secret]"), the typed chart keys with their effective values, and the shims the user configured.
 */
export type PlanArgs = {
  namespace: string;
  createNamespace: boolean;
  releaseName: string;
  chart: { path: string } | { repository: string; version?: string };
  kubeconfig?: "[secret]";
  /** Job mode only (it picks the dispatcher). */
  dispatcherImplementation?: DispatcherImplementation;
  rerunToken?: string;
  rollout: RolloutSettings;
  deploymentMode: DeploymentMode;
  shims?: Record<string, unknown>;
  disableAllShims: boolean;
} & Pick<ChartValues, ShownChartKeys>;

export interface Plan {
  /** The validated args, every omitted field showing its default (component defaults, then chart defaults). */
  args: PlanArgs;
  chart: PlannedChart;
  /** Exactly the values handed to the chart: the typed fields merged over `values`; the chart defaults the rest. */
  values: Values;
  /** Job mode: node selection of the install and the cleanup dispatcher. */
  nodeSelection?: PlannedSelection;
  /** Things that are allowed but probably not meant. */
  warnings: ArgIssue[];
}

/** The plan, or a KataDeployArgsError listing every invalid argument. */
export function planKataDeploy(args: unknown, resourceName: string = DEFAULT_RESOURCE_NAME): Plan {
  const checked = checkArgs(args, resourceName);
  if (checked.errors.length > 0) throw new KataDeployArgsError(checked.errors);
  if (!checked.resolved) throw new Error("planKataDeploy needs known values (no Outputs or Promises)");
  return planFromResolved(checked.resolved, checked.warnings);
}

/** The object without its undefined entries, key order kept (the plan prints in this order). */
function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function planFromResolved(resolved: ResolvedArgs, warnings: ArgIssue[] = []): Plan {
  const { effective, values } = resolved;
  const chart: PlannedChart = definedOnly({
    reference: resolved.chart.chart,
    version: resolved.chart.version,
    repository: resolved.chart.repository,
    path: resolved.chart.path,
  });
  const job = resolved.mode === DeploymentMode.Job;
  // The shim table is long: show the shims the user configured, and the disableAll switch.
  const { disableAll: _disableAll, ...userShims } = isPlainObject(values.shims) ? values.shims : {};
  const args: PlanArgs = definedOnly({
    namespace: resolved.namespace,
    createNamespace: resolved.createNamespace,
    releaseName: resolved.releaseName,
    chart:
      resolved.chart.path !== undefined
        ? { path: resolved.chart.path }
        : {
            repository: resolved.chart.repository ?? resolved.chart.chart.slice(0, -`/${CHART_NAME}`.length),
            version: resolved.chart.version,
          },
    // The kubeconfig is never shown, only whether one was given.
    kubeconfig: resolved.kubeconfigGiven ? ("[secret]" as const) : undefined,
    dispatcherImplementation: job ? resolved.dispatcherImplementation : undefined,
    rerunToken: resolved.rerunToken,
    rollout: resolved.rollout,
    deploymentMode: resolved.mode,
    image: effective.image,
    imagePullPolicy: effective.imagePullPolicy,
    imagePullSecrets: effective.imagePullSecrets,
    k8sDistribution: effective.k8sDistribution,
    debug: effective.debug,
    shims: Object.keys(userShims).length > 0 ? userShims : undefined,
    defaultShim: effective.defaultShim,
    snapshotter: effective.snapshotter,
    tolerations: effective.tolerations,
    nodeSelector: effective.nodeSelector,
    priorityClassName: effective.priorityClassName,
    env: effective.env,
    // job.* is noise in daemonset mode unless the user set some of it.
    job: job || values.job !== undefined ? effective.job : undefined,
    disableAllShims: effective.shims?.disableAll === true,
  });

  const plan: Plan = { args, chart, values, warnings };
  if (job) plan.nodeSelection = plannedSelection(effective);
  return plan;
}

function plannedSelection(values: ChartValues): PlannedSelection {
  return {
    install: dispatcherSelectionArgs(values, "install"),
    cleanup: dispatcherSelectionArgs(values, "cleanup"),
  };
}

/** Every object the chart renders for a plan, whole: what helm.v4.Chart applies, then the hooks Helm would run. */
export interface PlannedChartObjects {
  /** The chart version rendered (offline, by chart; proven equal to Helm's render of it). */
  version: string;
  resources: K8sObject[];
  /** Hook objects (helm.v4.Chart drops them), with their `helm.sh/hook*` annotations. */
  hooks: K8sObject[];
}

/**
 * The chart's objects and hooks for a plan, or undefined when no offline renderer exists for its chart version
 * (a local chart, or a version other than chart's CHART_VERSIONS). Values the chart's templates
 * refuse become a KataDeployArgsError, as Helm's `fail` would stop the render.
 */
export function planChartObjects(plan: Plan, assembly?: Assembly): PlannedChartObjects | undefined {
  const version = plan.chart.version;
  if (plan.chart.path !== undefined || !isChartVersion(version)) return undefined;
  // Chart 4.0.0 is what `assemble` renders; another version (or a call without an assembly) renders here.
  const rendered =
    version === CHART_VERSION && assembly
      ? assembly.rendered
      : chartRefusal(version, () => renderChart(plan.values, releaseOf(plan), { version, parseYaml }));
  const { installDispatcher, cleanupDispatcher, postDeleteRbacCleanup } = rendered.hooks;
  const hooks = [installDispatcher, cleanupDispatcher, ...postDeleteRbacCleanup].filter(
    (o): o is K8sObject => o !== undefined,
  );
  return { version, resources: rendered.resources, hooks };
}
