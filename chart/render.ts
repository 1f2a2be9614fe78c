// Chart 4.0.0's objects, rendered in TypeScript exactly as `helm template` would produce them for the same
// values (kata-deploy-chart.md, OLD column, plus the 4.0.0 pre-delete cleanup dispatcher of design.md §1).
// This module assembles them; each part lives in its own module. Pure and Node built-ins only: the rollout's
// serialized dynamic provider imports it.

// Helm's install order by kind (kind_sorter.go); kinds not listed go last, by kind name.
import { INSTALL_ORDER } from "../kube/helmHooks";
import { dns1123LabelErrors, dns1123SubdomainErrors } from "../kube/validation";
import {
  atLeast41,
  CHART_VERSION,
  CHART_VERSIONS,
  chartDefaults,
  isChartVersion,
  mergeValues,
  type ChartValues,
} from "./defaults";
import { truthy } from "./goValues";
import type { K8sObject } from "./k8s";
import { chartNames } from "./names";
import { ChartValuesError, multiInstallSuffix } from "./workload";
import type { Release, RenderedChart, RenderOptions } from "./renderTypes";
import { deploymentMode } from "./renderHelpers";
import { chartDispatcherJob, dispatcherRbac, jobTemplatesConfigMap, perNodeJobTemplate } from "./jobMode";
import {
  chartDispatcherJob41,
  dispatcherRbacRules41,
  perNodeJobTemplate41,
  podTemplateAnnotations,
  removedJobSelectionKeyErrors,
  stateConfigMap,
} from "./jobMode41";
import {
  customConfigsConfigMap,
  customRuntimeClasses,
  kataRbac,
  monitorDaemonSet,
  nfdRulesActive,
  runtimeClasses,
  teeKeysNodeFeatureRule,
  userDropInConfigMap,
} from "./kataObjects";
import { postDeleteRbacCleanup } from "./postDelete";
import { daemonSet, nfdConflict } from "./daemonSet";

export { ChartValuesError } from "./workload";
export * from "./renderTypes";
export {
  chartDispatcherJob,
  dispatcherFlags,
  dispatcherSelection,
  dispatcherSelectionArgs,
  perNodeJobTemplate,
  withoutHookAnnotations,
} from "./jobMode";
export { RUNTIME_CLASS_OVERHEAD } from "./kataObjects";

function installOrder(objects: K8sObject[]): K8sObject[] {
  const rank = (kind: string) => {
    const index = INSTALL_ORDER.indexOf(kind);
    return index < 0 ? INSTALL_ORDER.length : index;
  };
  // Array.prototype.sort is stable, so objects of one kind keep template order (templates sorted by file name).
  return [...objects].sort((a, b) => {
    const byRank = rank(a.kind) - rank(b.kind);
    if (byRank !== 0) return byRank;
    return rank(a.kind) === INSTALL_ORDER.length ? a.kind.localeCompare(b.kind) : 0;
  });
}

/** Helm refuses release names longer than this (they end up in Secret names and labels). */
export const HELM_RELEASE_NAME_MAX = 53;

/** Helm's own rule for a release name: a DNS-1123 subdomain of at most 53 characters. */
export function helmReleaseNameErrors(name: string): string[] {
  return [
    ...(name.length > HELM_RELEASE_NAME_MAX
      ? [`must be no more than ${HELM_RELEASE_NAME_MAX} characters`]
      : []),
    ...dns1123SubdomainErrors(name),
  ];
}

function checkRelease(release: Release): void {
  const name = release?.name;
  if (typeof name !== "string" || name === "") {
    throw new ChartValuesError(`release.name: give the Helm release name (a non-empty string)`);
  }
  const nameErrors = helmReleaseNameErrors(name);
  if (nameErrors.length > 0) throw new ChartValuesError(`release.name: "${name}" ${nameErrors.join("; ")}`);
  const namespace = release.namespace;
  if (typeof namespace !== "string" || namespace === "") {
    throw new ChartValuesError(`release.namespace: give the release namespace (a non-empty string)`);
  }
  const namespaceErrors = dns1123LabelErrors(namespace);
  if (namespaceErrors.length > 0) {
    throw new ChartValuesError(`release.namespace: "${namespace}" ${namespaceErrors.join("; ")}`);
  }
}

/** Renders from values that are already merged over the defaults (see `mergeValues`). */
export function renderMerged(
  values: ChartValues,
  release: Release,
  options: RenderOptions = {},
): RenderedChart {
  checkRelease(release);
  const version = options.version ?? CHART_VERSION;
  if (!isChartVersion(version)) {
    throw new ChartValuesError(
      `chart.version: ${JSON.stringify(version)} has no offline renderer; use one of ${CHART_VERSIONS.join(", ")}`,
    );
  }
  return atLeast41(version) ? render41(values, release, options) : render40(values, release, options);
}

/** What every chart version's render starts from: the mode, the names, the post-delete hooks. */
function renderStart(
  values: ChartValues,
  release: Release,
  options: RenderOptions,
): { rendered: RenderedChart; useShimNodeSelectors: boolean } {
  const rendered: RenderedChart = {
    values,
    mode: deploymentMode(values),
    names: chartNames(multiInstallSuffix(values)),
    resources: [],
    hooks: { postDeleteRbacCleanup: postDeleteRbacCleanup(values, release) },
  };
  const useShimNodeSelectors =
    truthy(values["node-feature-discovery"]?.enabled) || !!options.externalNfdNamespace;
  return { rendered, useShimNodeSelectors };
}

function render40(values: ChartValues, release: Release, options: RenderOptions): RenderedChart {
  const { rendered, useShimNodeSelectors } = renderStart(values, release, options);
  const mode = rendered.mode;
  const objects: (K8sObject | undefined)[] = [];

  // Templates in file-name order, as Helm reads them.
  objects.push(userDropInConfigMap(values, release)); // containerd-user-dropin-config.yaml
  objects.push(customConfigsConfigMap(values, release), ...customRuntimeClasses(values, options)); // custom-runtimes.yaml
  if (mode === "job") {
    rendered.hooks.cleanupDispatcher = chartDispatcherJob(values, release, "cleanup"); // kata-deploy-cleanup-job.yaml
    rendered.hooks.installDispatcher = chartDispatcherJob(values, release, "install"); // kata-deploy-install-job.yaml
    const templates = {
      install: perNodeJobTemplate(values, release, "install"),
      cleanup: perNodeJobTemplate(values, release, "cleanup"),
    };
    rendered.jobTemplates = templates;
    objects.push(jobTemplatesConfigMap(values, release, templates)); // kata-deploy-job-templates.yaml
  }
  if (mode === "daemonset") {
    nfdConflict(values, release, options);
    objects.push(daemonSet(values, release)); // kata-deploy.yaml
  }
  objects.push(monitorDaemonSet(values, release)); // kata-monitor.yaml
  objects.push(...kataRbac(values, release)); // kata-rbac.yaml
  if (mode === "job") objects.push(...dispatcherRbac(values, release));
  objects.push(...runtimeClasses(values, useShimNodeSelectors)); // runtimeclasses.yaml

  rendered.resources = installOrder(objects.filter((o): o is K8sObject => o !== undefined));
  return rendered;
}

/** Chart 4.1.0 (jobMode41.ts for job mode); same template order as 4.0.0 plus the state ConfigMap and the NodeFeatureRule. */
function render41(values: ChartValues, release: Release, options: RenderOptions): RenderedChart {
  const v = "4.1.0";
  const state = stateConfigMap(values, release); // kata-deploy-state.yaml; fails on an unknown mode
  removedJobSelectionKeyErrors(values).forEach((e) => {
    throw new ChartValuesError(e.message);
  });
  const { rendered, useShimNodeSelectors } = renderStart(values, release, options);
  const mode = rendered.mode;
  const rulesActive = nfdRulesActive(values, !!options.externalNfdNamespace);
  const userDropIn = userDropInConfigMap(values, release, v);
  const customConfigs = customConfigsConfigMap(values, release, v);
  const configMaps = { userDropIn, customConfigs };
  const objects: (K8sObject | undefined)[] = [
    userDropIn,
    customConfigs,
    ...customRuntimeClasses(values, options, v),
  ];
  if (mode === "job") {
    const templates = {
      install: perNodeJobTemplate41(values, release, "install", configMaps),
      cleanup: perNodeJobTemplate41(values, release, "cleanup", configMaps),
    };
    const templatesConfigMap = jobTemplatesConfigMap(values, release, templates);
    rendered.jobTemplates = templates;
    rendered.hooks.cleanupDispatcher = chartDispatcherJob41(
      values,
      release,
      "cleanup",
      templatesConfigMap,
      options,
    );
    rendered.hooks.installDispatcher = chartDispatcherJob41(
      values,
      release,
      "install",
      templatesConfigMap,
      options,
    );
    objects.push(templatesConfigMap);
  }
  objects.push(state);
  if (mode === "daemonset") {
    nfdConflict(values, release, options);
    objects.push(daemonSet(values, release, v, podTemplateAnnotations(values, configMaps)));
    objects.push(...kataRbac(values, release, v)); // kata-rbac.yaml: daemonset mode only in 4.1.0
  }
  objects.push(monitorDaemonSet(values, release, v));
  if (mode === "job") objects.push(...dispatcherRbac(values, release, dispatcherRbacRules41(values)));
  if (rulesActive) objects.push(teeKeysNodeFeatureRule(values, release));
  objects.push(...runtimeClasses(values, useShimNodeSelectors, v, rulesActive));
  rendered.resources = installOrder(objects.filter((o): o is K8sObject => o !== undefined));
  return rendered;
}

/**
 * Chart 4.0.0's objects for `userValues` (merged over the chart defaults with Helm's rules) and `release`.
 * Throws ChartValuesError (or UnsupportedOperatorError from selectors.ts) where Helm's render would fail.
 */
export function renderChart(
  userValues: Readonly<Record<string, unknown>> | undefined,
  release: Release,
  options: RenderOptions = {},
): RenderedChart {
  const version = options.version ?? CHART_VERSION;
  const defaults = isChartVersion(version) ? chartDefaults(version) : chartDefaults();
  return renderMerged(mergeValues(defaults, userValues, options.onWarning), release, options);
}
