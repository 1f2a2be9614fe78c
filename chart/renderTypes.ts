// Types and constants shared by the chart renderer's modules (chart 4.0.0). Node built-ins only.

import type { ChartValues } from "./defaults";
import type { Job, K8sObject } from "./k8s";
import type { ChartNames } from "./names";

export interface Release {
  /** Helm release name (`app.kubernetes.io/instance`). */
  name: string;
  /** Release namespace: every namespaced object and the dispatcher's per-node Jobs live here. */
  namespace: string;
}

export interface RenderOptions {
  /**
   * Parses a custom runtime's `runtimeClass` YAML text (the chart's `fromYaml`). Only needed when
   * `customRuntimes` is enabled with runtimes; pass `require("yaml").parse` at program time.
   */
  parseYaml?: (text: string) => unknown;
  /**
   * Namespace of a node-feature-discovery installation that is not part of this release, as the chart's
   * `lookup` would find it (`helm template` and a client-side render find none). It turns on the TEE
   * nodeSelectors of RuntimeClasses and, with `node-feature-discovery.enabled`, the chart's conflict failure.
   */
  externalNfdNamespace?: string;
  /** Receives Helm's coalescing warnings (a table overwritten by a non-table, and the reverse). */
  onWarning?: (message: string) => void;
  /** The chart version to render (its values.yaml and templates); default CHART_VERSION. */
  version?: string;
}

export type DeploymentMode = "daemonset" | "job" | "none";
export type DispatcherStage = "install" | "cleanup";

export {
  HOOK_ANNOTATION,
  HOOK_WEIGHT_ANNOTATION,
  HOOK_DELETE_POLICY_ANNOTATION,
  RESOURCE_POLICY_ANNOTATION,
} from "../kube/helmHooks";

/** Where both dispatcher Jobs mount the job-templates ConfigMap, and the keys they read. */
export const JOB_TEMPLATES_MOUNT = "/etc/kata-job";
export const INSTALL_TEMPLATE_KEY = "install-job.yaml";
export const CLEANUP_TEMPLATE_KEY = "cleanup-job.yaml";
export const UPSTREAM_DISPATCHER_BINARY = "/usr/bin/kata-deploy-job-dispatcher";

export interface RenderedChart {
  /** The merged values the objects were rendered from. */
  values: ChartValues;
  /** `daemonset`, `job`, or `none` (chart 4.0.0 silently renders neither workload for any other mode). */
  mode: DeploymentMode;
  names: ChartNames;
  /** Everything `helm.v4.Chart` applies: the non-hook objects, in Helm's install order. */
  resources: K8sObject[];
  /** The hook objects, which `helm.v4.Chart` drops; rendered with their Helm hook annotations. */
  hooks: {
    /** post-install,post-upgrade, weight 5, before-hook-creation (job mode). */
    installDispatcher?: Job;
    /** pre-delete, weight 5, before-hook-creation,hook-succeeded (job mode, chart 4.0.0). */
    cleanupDispatcher?: Job;
    /**
     * post-delete, both modes, in hook-weight order: ServiceAccount, ClusterRole, ClusterRoleBinding (-5), then
     * the Job (0) that removes the kept kata-deploy SA/ClusterRole/ClusterRoleBinding.
     */
    postDeleteRbacCleanup: K8sObject[];
  };
  /** The per-node Job templates as objects (job mode): the data of the job-templates ConfigMap, parsed. */
  jobTemplates?: { install: Job; cleanup: Job };
}
