// What a KataDeploy will do, as data: the validated args with their defaults, the chart reference and
// version, and the exact values handed to the chart. Pure (no Pulumi, no I/O): the component, the
// `plan` command and the stack program all go through it, and later parts (the rollout's dispatcher
// Jobs) extend the same Plan.
import { ROLLOUT_DEFAULTS } from "../rollout/defaults";
import { DeploymentMode } from "./args";
import { CHART_NAME } from "../chart/names";
import { parse as parseYaml } from "yaml";
import { ChartValues, isChartVersion } from "../chart/defaults";
import type { K8sObject } from "../chart/k8s";
import { ChartValuesError, dispatcherSelectionArgs, renderChart } from "../chart/render";
import { UnsupportedOperatorError } from "../chart/selectors";
import {
  ArgIssue,
  ARG_NAMES,
  CHART_KEYS,
  KataDeployArgsError,
  ResolvedArgs,
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

export interface Plan {
  /** The validated args, every omitted field showing its default (component defaults, then chart defaults). */
  args: Values;
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

export function planFromResolved(resolved: ResolvedArgs, warnings: ArgIssue[] = []): Plan {
  const { effective, values } = resolved;
  const chart: PlannedChart = { reference: resolved.chart.chart };
  if (resolved.chart.version !== undefined) chart.version = resolved.chart.version;
  if (resolved.chart.repository !== undefined) chart.repository = resolved.chart.repository;
  if (resolved.chart.path !== undefined) chart.path = resolved.chart.path;

  const view: Values = {
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
  };
  for (const key of CHART_KEYS) {
    if (key === "shims") continue;
    if (effective[key] !== undefined) view[key] = effective[key];
  }
  // The shim table is long: show the shims the user configured, and the disableAll switch.
  const shims = isPlainObject(values.shims) ? { ...values.shims } : {};
  view.disableAllShims = isPlainObject(effective.shims) && effective.shims.disableAll === true;
  delete shims.disableAll;
  if (Object.keys(shims).length > 0) view.shims = shims;
  // job.* is noise in daemonset mode unless the user set some of it.
  if (resolved.mode === DeploymentMode.Daemonset && values.job === undefined) delete view.job;
  // The rollout's arguments. The kubeconfig is never shown, only whether one was given.
  if (resolved.kubeconfigGiven) view.kubeconfig = "[secret]";
  if (resolved.mode === DeploymentMode.Job) view.dispatcherImplementation = resolved.dispatcherImplementation;
  if (resolved.rerunToken !== undefined) view.rerunToken = resolved.rerunToken;
  view.rollout = { ...ROLLOUT_DEFAULTS, ...resolved.rollout };

  const args: Values = {};
  for (const name of ARG_NAMES) if (view[name] !== undefined) args[name] = view[name];

  const plan: Plan = { args, chart, values, warnings };
  if (resolved.mode === DeploymentMode.Job) plan.nodeSelection = plannedSelection(effective);
  return plan;
}

function plannedSelection(effective: Values): PlannedSelection {
  const values = effective as ChartValues;
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
export function planChartObjects(plan: Plan): PlannedChartObjects | undefined {
  const version = plan.chart.version;
  if (plan.chart.path !== undefined || !isChartVersion(version)) return undefined;
  const release = { name: plan.args.releaseName as string, namespace: plan.args.namespace as string };
  try {
    const rendered = renderChart(plan.values, release, { version, parseYaml });
    const { installDispatcher, cleanupDispatcher, postDeleteRbacCleanup } = rendered.hooks;
    const hooks = [installDispatcher, cleanupDispatcher, ...postDeleteRbacCleanup].filter(
      (o): o is K8sObject => o !== undefined,
    );
    return { version, resources: rendered.resources, hooks };
  } catch (e) {
    if (e instanceof ChartValuesError || e instanceof UnsupportedOperatorError) {
      throw new KataDeployArgsError([
        { path: "values", message: `chart ${version} refuses these values: ${e.message}` },
      ]);
    }
    throw e;
  }
}
