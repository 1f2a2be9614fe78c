// Every object name the kata-deploy chart derives from the release, computed once and exactly as the
// chart's templates do (kata-deploy-chart.md §2, §2.4, design.md §3). Node built-ins only: the rollout's
// dynamic provider imports this file.

export const CHART_NAME = "kata-deploy";

/**
 * The Node label kata-deploy sets where Kata is installed (`true`; 4.1+ also `false` while claimed): the RuntimeClasses
 * schedule on it and the cleanup selects by it (docs/spec/chart-versions.md, "Status reporting").
 */
export const KATA_RUNTIME_LABEL = "katacontainers.io/kata-runtime";

/** Helm's `trunc 63 | trimSuffix "-"` as the chart applies it: the first 63 characters, then every trailing '-' trimmed. */
export function t63(name: string): string {
  return name.slice(0, 63).replace(/-+$/, "");
}

export interface ChartNames {
  /** `kata-deploy`, or `kata-deploy-<multiInstallSuffix>`. */
  base: string;
  /** The DaemonSet (daemonset mode); also its pods' `name` label. */
  daemonSet: string;
  /** ConfigMap holding `install-job.yaml` and `cleanup-job.yaml` (job mode). */
  jobTemplatesConfigMap: string;
  /** ServiceAccount, ClusterRole and ClusterRoleBinding of the kata-deploy workload (`C-sa[-S]` ...). */
  serviceAccount: string;
  clusterRole: string;
  clusterRoleBinding: string;
  /** Dispatcher identity (job mode). */
  dispatcherServiceAccount: string;
  dispatcherNodeClusterRole: string;
  dispatcherNodeClusterRoleBinding: string;
  dispatcherRole: string;
  dispatcherRoleBinding: string;
  /** Hook Jobs the rollout runs in the chart's place, and the prefixes they hand to the dispatcher. */
  installDispatcherJob: string;
  cleanupDispatcherJob: string;
  installNamePrefix: string;
  cleanupNamePrefix: string;
}

/** Suffix form used by names that append `-S` after a fixed stem (not truncated by the chart). */
function suffixed(stem: string, suffix: string): string {
  return suffix ? `${stem}-${suffix}` : stem;
}

export function chartNames(multiInstallSuffix = ""): ChartNames {
  const s = multiInstallSuffix;
  const base = suffixed(CHART_NAME, s);
  return {
    base,
    daemonSet: base,
    jobTemplatesConfigMap: t63(`${base}-job-templates`),
    serviceAccount: suffixed(`${CHART_NAME}-sa`, s),
    clusterRole: suffixed(`${CHART_NAME}-role`, s),
    clusterRoleBinding: suffixed(`${CHART_NAME}-rb`, s),
    dispatcherServiceAccount: suffixed(`${CHART_NAME}-dispatcher-sa`, s),
    dispatcherNodeClusterRole: suffixed(`${CHART_NAME}-dispatcher-noderole`, s),
    dispatcherNodeClusterRoleBinding: suffixed(`${CHART_NAME}-dispatcher-noderb`, s),
    dispatcherRole: suffixed(`${CHART_NAME}-dispatcher-role`, s),
    dispatcherRoleBinding: suffixed(`${CHART_NAME}-dispatcher-rb`, s),
    installDispatcherJob: t63(`${base}-install-dispatcher`),
    cleanupDispatcherJob: t63(`${base}-cleanup-dispatcher`),
    installNamePrefix: `${base}-install`,
    cleanupNamePrefix: `${base}-cleanup`,
  };
}

/** RuntimeClass name and handler of one shim: `kata-<shim>` or `kata-<shim>-<S>`. */
export function runtimeClassName(shim: string, multiInstallSuffix = ""): string {
  return suffixed(`kata-${shim}`, multiInstallSuffix);
}
