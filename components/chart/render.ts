// Chart 4.0.0's objects, rendered in TypeScript exactly as `helm template` would produce them for the same
// values (kata-deploy-chart.md, OLD column, plus the 4.0.0 pre-delete cleanup dispatcher of design.md §1).
// Pure and Node built-ins only: the rollout's serialized dynamic provider imports it.

import { dns1123LabelErrors, dns1123SubdomainErrors } from "../../kube/validation";
import { APP_VERSION, CHART_VERSION, chartDefaults, mergeValues, type ChartValues } from "./defaults";
import { cloneJson, goPrint, goSprintfS, isMap, truthy, type Json } from "./goValues";
import type {
  BindingLike,
  ConfigMap,
  Container,
  DaemonSet,
  EnvVar,
  Job,
  K8sObject,
  PodSpec,
  Probe,
  RoleLike,
  RuntimeClass,
} from "./k8s";
import { CHART_NAME, chartNames, t63, type ChartNames } from "./names";
import { compileNodeSelector, nodeSelection, selectionArgs, type NodeSelectorRequirement } from "./selectors";
import {
  ChartValuesError,
  commonEnv,
  commonVolumeMounts,
  commonVolumes,
  customConfigsConfigMapName,
  dispatcherImage,
  enabledShims,
  hasCustomConfigs,
  hasCustomRuntimes,
  hasUserDropIn,
  imageRef,
  kataDeployImage,
  kubectlImage,
  multiInstallSuffix,
  userDropInConfigMapName,
} from "./workload";
import { toYaml } from "./yaml";

export { ChartValuesError } from "./workload";

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
}

export type DeploymentMode = "daemonset" | "job" | "none";
export type DispatcherStage = "install" | "cleanup";

export const HOOK_ANNOTATION = "helm.sh/hook";
export const HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight";
export const HOOK_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy";
export const RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy";

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

// ---------------------------------------------------------------------------------------------------
// Small shared pieces

function deploymentMode(values: ChartValues): DeploymentMode {
  const mode = truthy(values.deploymentMode) ? values.deploymentMode : "daemonset";
  return mode === "daemonset" || mode === "job" ? mode : "none";
}

/** `kata-deploy.name`: nameOverride or the chart name, t63. */
function appName(values: ChartValues): string {
  return t63(truthy(values.nameOverride) ? goPrint(values.nameOverride) : CHART_NAME);
}

function nameAndInstance(values: ChartValues, release: Release): Record<string, string> {
  return { "app.kubernetes.io/name": appName(values), "app.kubernetes.io/instance": release.name };
}

/** `kata-deploy.labels`: the standard Helm labels, used on the custom-configs and user drop-in ConfigMaps. */
function standardLabels(values: ChartValues, release: Release): Record<string, string> {
  return {
    "helm.sh/chart": `${CHART_NAME}-${CHART_VERSION.replace(/\+/g, "_")}`,
    ...nameAndInstance(values, release),
    "app.kubernetes.io/managed-by": "Helm",
  };
}

function suffixed(stem: string, suffix: string): string {
  return suffix ? `${stem}-${suffix}` : stem;
}

/**
 * A value the chart prints bare into YAML (`backoffLimit: {{ v }}`) comes back as whatever YAML reads from the
 * printed text: numbers stay numbers, numeric strings become numbers, "" becomes null (left out here).
 */
function printedScalar(value: unknown): Json | undefined {
  if (typeof value === "number" || typeof value === "boolean") return value;
  const text = goPrint(value);
  if (text === "" || text === "null" || text === "~") return undefined;
  if (/^[-+]?[0-9]+$/.test(text)) return Number(text);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}

/** `{{- with .Values.x }} key: {{ toYaml . }}`: present only when truthy, copied as data. */
function withValue<T>(value: unknown): T | undefined {
  return truthy(value) ? (cloneJson(value) as T) : undefined;
}

/** Strips keys whose value is undefined, so objects compare and serialize like the chart's YAML. */
function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => compact(item)) as T;
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = compact(item);
    return out as T;
  }
  return value;
}

/**
 * Sprig's `mergeOverwrite` for a flat map: the override's keys win, except that an empty override value
 * (false, 0, "", empty list or map) never replaces anything (mergo's rule).
 */
function mergeOverwrite(base: Readonly<Record<string, unknown>>, override: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  if (isMap(override)) {
    for (const [key, value] of Object.entries(override)) if (truthy(value)) out[key] = cloneJson(value);
  }
  return out;
}

/** Literal block scalar (`key: |` + indented text) with clip chomping: exactly one trailing newline. */
function blockText(text: string): string {
  const body = text.replace(/\n+$/, "");
  return body === "" ? "" : `${body}\n`;
}

function podPlacement(values: ChartValues): Pick<PodSpec, "tolerations" | "priorityClassName"> {
  return {
    tolerations: withValue(values.tolerations),
    priorityClassName: truthy(values.priorityClassName) ? goPrint(values.priorityClassName) : undefined,
  };
}

// ---------------------------------------------------------------------------------------------------
// Node selection of the dispatchers (§3.4, OLD precedence; cleanup as in 4.0.0)

function equalityMap(value: unknown, path: string): Record<string, string> {
  if (!truthy(value)) return {};
  if (!isMap(value)) {
    throw new ChartValuesError(`${path}: expected a map of label key to value, got ${JSON.stringify(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) out[key] = goSprintfS(item);
  return out;
}

function requirements(value: unknown, path: string): NodeSelectorRequirement[] {
  if (!truthy(value)) return [];
  if (!Array.isArray(value)) {
    throw new ChartValuesError(
      `${path}: expected a list of {key, operator, values}, got ${JSON.stringify(value)}`,
    );
  }
  return value.map((item, index) => {
    if (!isMap(item)) {
      throw new ChartValuesError(
        `${path}[${index}]: expected {key, operator, values}, got ${JSON.stringify(item)}`,
      );
    }
    const values = truthy(item.values) && Array.isArray(item.values) ? item.values.map(goPrint) : [];
    return { key: goPrint(item.key), operator: goPrint(item.operator), values };
  });
}

function nodeList(value: unknown, path: string): string[] {
  if (!truthy(value)) return [];
  if (!Array.isArray(value)) throw new ChartValuesError(`${path}: expected a list of node names`);
  return value.map(goPrint);
}

/**
 * The node selection flags of a dispatcher: `--nodes=` from the stage's node list, else `--node-selector=`
 * compiled from its equality map and expressions, else nothing (all nodes). Like the chart, the selector is
 * compiled even when a node list wins, so an unsupported operator fails either way.
 */
export function dispatcherSelectionArgs(values: ChartValues, stage: DispatcherStage): string[] {
  const source =
    stage === "install" ? values.job : truthy(values.job?.cleanup) ? values.job?.cleanup : undefined;
  const prefix = stage === "install" ? "job" : "job.cleanup";
  const eq = equalityMap(source?.nodeSelector, `${prefix}.nodeSelector`);
  const exprs = requirements(source?.nodeSelectorExpressions, `${prefix}.nodeSelectorExpressions`);
  compileNodeSelector(eq, exprs);
  return selectionArgs(nodeSelection(nodeList(source?.nodes, `${prefix}.nodes`), eq, exprs));
}

/** The dispatcher command line, binary first, as the chart writes it in `command:`. */
export function dispatcherFlags(values: ChartValues, stage: DispatcherStage): string[] {
  const names = chartNames(multiInstallSuffix(values));
  const templateKey = stage === "install" ? INSTALL_TEMPLATE_KEY : CLEANUP_TEMPLATE_KEY;
  return [
    `--job-template=${JOB_TEMPLATES_MOUNT}/${templateKey}`,
    `--name-prefix=${stage === "install" ? names.installNamePrefix : names.cleanupNamePrefix}`,
    `--owner-job-name=${stage === "install" ? names.installDispatcherJob : names.cleanupDispatcherJob}`,
    `--parallelism=${goPrint(values.job?.parallelism)}`,
    ...dispatcherSelectionArgs(values, stage),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Job mode

interface StageSpec {
  name: string;
  action: string;
  privileged: boolean;
  mountHost: boolean;
}

/** The OLD pipelines (§4): init containers run in order, then the main container. */
const PIPELINES: Readonly<Record<DispatcherStage, { init: StageSpec[]; main: StageSpec }>> = {
  install: {
    init: [
      { name: "host-check", action: "install-stage-host-check", privileged: true, mountHost: true },
      { name: "artifacts", action: "install-stage-artifacts", privileged: true, mountHost: true },
      { name: "cri", action: "install-stage-cri", privileged: true, mountHost: true },
    ],
    main: { name: "label", action: "install-stage-label", privileged: false, mountHost: false },
  },
  cleanup: {
    init: [
      { name: "unlabel", action: "cleanup-stage-unlabel", privileged: false, mountHost: false },
      { name: "revert-cri", action: "cleanup-stage-revert-cri", privileged: true, mountHost: true },
    ],
    main: {
      name: "remove-artifacts",
      action: "cleanup-stage-remove-artifacts",
      privileged: true,
      mountHost: true,
    },
  },
};

function stageContainer(values: ChartValues, stage: StageSpec, env: EnvVar[]): Container {
  return compact({
    name: stage.name,
    image: kataDeployImage(values),
    imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
    command: ["/usr/bin/kata-deploy", stage.action],
    env: cloneJson(env),
    securityContext: { privileged: stage.privileged },
    volumeMounts: stage.mountHost ? commonVolumeMounts(values) : undefined,
  });
}

/** `kata-deploy.perNodeJob`: the Job the dispatcher clones per node (it adds name and nodeName). */
export function perNodeJobTemplate(values: ChartValues, release: Release, stage: DispatcherStage): Job {
  const names = chartNames(multiInstallSuffix(values));
  const labels = { ...nameAndInstance(values, release), "kata-deploy/stage": stage };
  const env = commonEnv(values);
  const pipeline = PIPELINES[stage];
  return compact({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { labels },
    spec: {
      backoffLimit: printedScalar(values.job?.backoffLimit) as number | undefined,
      ttlSecondsAfterFinished: printedScalar(values.job?.ttlSecondsAfterFinished) as number | undefined,
      template: {
        metadata: { labels: { ...labels } },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          serviceAccountName: names.serviceAccount,
          restartPolicy: "Never",
          hostPID: true,
          ...podPlacement(values),
          initContainers: pipeline.init.map((s) => stageContainer(values, s, env)),
          containers: [stageContainer(values, pipeline.main, env)],
          volumes: commonVolumes(values),
        },
      },
    },
  });
}

function jobTemplatesConfigMap(
  values: ChartValues,
  release: Release,
  templates: { install: Job; cleanup: Job },
): ConfigMap {
  const names = chartNames(multiInstallSuffix(values));
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: names.jobTemplatesConfigMap,
      namespace: release.namespace,
      labels: nameAndInstance(values, release),
    },
    data: {
      [INSTALL_TEMPLATE_KEY]: toYaml(templates.install),
      [CLEANUP_TEMPLATE_KEY]: toYaml(templates.cleanup),
    },
  };
}

const HOOKS: Readonly<Record<DispatcherStage, Record<string, string>>> = {
  install: {
    [HOOK_ANNOTATION]: "post-install,post-upgrade",
    [HOOK_WEIGHT_ANNOTATION]: "5",
    [HOOK_DELETE_POLICY_ANNOTATION]: "before-hook-creation",
  },
  cleanup: {
    [HOOK_ANNOTATION]: "pre-delete",
    [HOOK_WEIGHT_ANNOTATION]: "5",
    [HOOK_DELETE_POLICY_ANNOTATION]: "before-hook-creation,hook-succeeded",
  },
};

/** The chart's dispatcher hook Job for `stage` (install: §5 OLD; cleanup: design.md §1), hook annotations included. */
export function chartDispatcherJob(values: ChartValues, release: Release, stage: DispatcherStage): Job {
  const names = chartNames(multiInstallSuffix(values));
  const labels = { ...nameAndInstance(values, release), "kata-deploy/dispatcher": stage };
  return compact({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: stage === "install" ? names.installDispatcherJob : names.cleanupDispatcherJob,
      namespace: release.namespace,
      labels,
      annotations: { ...HOOKS[stage] },
    },
    spec: {
      // The dispatcher retries per node itself; its own failure must surface, not be retried blindly.
      backoffLimit: 0,
      ttlSecondsAfterFinished: printedScalar(values.job?.ttlSecondsAfterFinished) as number | undefined,
      template: {
        metadata: { labels: { ...labels } },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          serviceAccountName: names.dispatcherServiceAccount,
          restartPolicy: "Never",
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...podPlacement(values),
          containers: [
            {
              name: "dispatcher",
              image: dispatcherImage(values),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              command: [UPSTREAM_DISPATCHER_BINARY, ...dispatcherFlags(values, stage)],
              env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }],
              volumeMounts: [{ name: "job-templates", mountPath: JOB_TEMPLATES_MOUNT, readOnly: true }],
            },
          ],
          volumes: [{ name: "job-templates", configMap: { name: names.jobTemplatesConfigMap } }],
        },
      },
    },
  });
}

/** The same Job without Helm's hook annotations (the project creates hooks itself). Returns a copy. */
export function withoutHookAnnotations<T extends K8sObject>(object: T): T {
  const copy = cloneJson(object);
  const annotations = copy.metadata.annotations;
  if (annotations) {
    delete annotations[HOOK_ANNOTATION];
    delete annotations[HOOK_WEIGHT_ANNOTATION];
    delete annotations[HOOK_DELETE_POLICY_ANNOTATION];
    if (Object.keys(annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

function dispatcherRbac(values: ChartValues, release: Release): K8sObject[] {
  const names = chartNames(multiInstallSuffix(values));
  const subject = {
    kind: "ServiceAccount",
    name: names.dispatcherServiceAccount,
    namespace: release.namespace,
  };
  const serviceAccount: K8sObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: names.dispatcherServiceAccount, namespace: release.namespace },
  };
  const nodeRole: RoleLike = {
    kind: "ClusterRole",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.dispatcherNodeClusterRole },
    rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["list"] }],
  };
  const nodeBinding: BindingLike = {
    kind: "ClusterRoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.dispatcherNodeClusterRoleBinding },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: names.dispatcherNodeClusterRole,
    },
    subjects: [{ ...subject }],
  };
  const jobsRole: RoleLike = {
    kind: "Role",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.dispatcherRole, namespace: release.namespace },
    rules: [
      { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "list", "watch", "delete"] },
    ],
  };
  const jobsBinding: BindingLike = {
    kind: "RoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.dispatcherRoleBinding, namespace: release.namespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.dispatcherRole },
    subjects: [{ ...subject }],
  };
  return [serviceAccount, nodeRole, nodeBinding, jobsRole, jobsBinding];
}

// ---------------------------------------------------------------------------------------------------
// Both modes: the kata-deploy identity, RuntimeClasses, optional ConfigMaps and the monitor

function kataRbac(values: ChartValues, release: Release): K8sObject[] {
  const names = chartNames(multiInstallSuffix(values));
  // Kept by Helm on uninstall so DaemonSet pods keep API access during their SIGTERM cleanup.
  const keep = { [RESOURCE_POLICY_ANNOTATION]: "keep" };
  const serviceAccount: K8sObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: names.serviceAccount, namespace: release.namespace, annotations: { ...keep } },
  };
  const role: RoleLike = {
    kind: "ClusterRole",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.clusterRole, annotations: { ...keep } },
    rules: [
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] },
      { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: ["get", "list", "patch"] },
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      {
        apiGroups: ["nfd.k8s-sigs.io"],
        resources: ["nodefeaturerules"],
        verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      },
      { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get", "list", "watch"] },
    ],
  };
  const binding: BindingLike = {
    kind: "ClusterRoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.clusterRoleBinding, annotations: { ...keep } },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: names.clusterRole },
    subjects: [{ kind: "ServiceAccount", name: names.serviceAccount, namespace: release.namespace }],
  };
  return [serviceAccount, role, binding];
}

/** Built-in RuntimeClass overhead per shim (§2.5, OLD table). A shim missing here gets no RuntimeClass. */
export const RUNTIME_CLASS_OVERHEAD: Readonly<Record<string, { memory: string; cpu: string }>> = {
  clh: { memory: "130Mi", cpu: "250m" },
  "clh-azure": { memory: "130Mi", cpu: "250m" },
  "clh-runtime-rs": { memory: "130Mi", cpu: "250m" },
  "clh-azure-runtime-rs": { memory: "130Mi", cpu: "250m" },
  dragonball: { memory: "130Mi", cpu: "250m" },
  fc: { memory: "130Mi", cpu: "250m" },
  qemu: { memory: "160Mi", cpu: "250m" },
  "qemu-coco-dev": { memory: "160Mi", cpu: "250m" },
  "qemu-coco-dev-runtime-rs": { memory: "160Mi", cpu: "250m" },
  "qemu-runtime-rs": { memory: "160Mi", cpu: "250m" },
  "qemu-se-runtime-rs": { memory: "1024Mi", cpu: "1.0" },
  "qemu-se": { memory: "1024Mi", cpu: "1.0" },
  "qemu-snp": { memory: "2048Mi", cpu: "1.0" },
  "qemu-snp-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-nvidia-gpu": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-cca": { memory: "2048Mi", cpu: "1.0" },
  stratovirt: { memory: "130Mi", cpu: "250m" },
  remote: { memory: "120Mi", cpu: "250m" },
};

function isPureTeeShim(shim: string): boolean {
  const tee =
    shim.includes("snp") || shim.includes("tdx") || shim.endsWith("-se") || shim.endsWith("-se-runtime-rs");
  return tee && !shim.includes("nvidia-gpu");
}

function runtimeClasses(values: ChartValues, useShimNodeSelectors: boolean): RuntimeClass[] {
  if (!truthy(values.runtimeClasses?.enabled)) return [];
  const suffix = multiInstallSuffix(values);
  const instance = suffix || "default";
  const defaults = values.defaultShim ?? {};
  const defaultShim = [defaults.amd64, defaults.arm64, defaults.s390x, defaults.ppc64le].find(truthy);
  const globalOverhead =
    values.runtimeClasses && "overheadEnabled" in values.runtimeClasses
      ? values.runtimeClasses.overheadEnabled
      : true;
  const out: RuntimeClass[] = [];
  for (const { name: shim, config } of enabledShims(values)) {
    const base = RUNTIME_CLASS_OVERHEAD[shim];
    if (!base) continue;
    const rc = isMap(config.runtimeClass) ? config.runtimeClass : undefined;
    const overhead = mergeOverwrite(base, rc && truthy(rc.overhead) ? rc.overhead : undefined);
    const overheadOn = rc && "overheadEnabled" in rc ? rc.overheadEnabled : globalOverhead;
    const nodeSelector: Record<string, string> = { "katacontainers.io/kata-runtime": "true" };
    if (rc && truthy(rc.nodeSelector) && isMap(rc.nodeSelector)) {
      // The chart appends the shim's keys in key order; a repeated key would be a duplicate YAML key,
      // which Kubernetes' decoder resolves to the last value, as this assignment does.
      for (const key of Object.keys(rc.nodeSelector).sort())
        nodeSelector[key] = goPrint(rc.nodeSelector[key]);
    } else if (useShimNodeSelectors && isPureTeeShim(shim)) {
      if (shim.includes("snp")) nodeSelector["amd.feature.node.kubernetes.io/snp"] = "true";
      if (shim.includes("tdx")) nodeSelector["intel.feature.node.kubernetes.io/tdx"] = "true";
      if (shim.endsWith("-se") || shim.endsWith("-se-runtime-rs")) {
        nodeSelector["feature.node.kubernetes.io/cpu-security.se.enabled"] = "true";
      }
    }
    const build = (name: string): RuntimeClass =>
      compact({
        kind: "RuntimeClass",
        apiVersion: "node.k8s.io/v1",
        metadata: {
          name,
          labels: { "app.kubernetes.io/managed-by": "kata-deploy", "kata-deploy/instance": instance },
          annotations: { "katacontainers.io/kata-version": APP_VERSION },
        },
        handler: suffixed(`kata-${shim}`, suffix),
        overhead: truthy(overheadOn)
          ? { podFixed: { memory: goPrint(overhead.memory), cpu: goPrint(overhead.cpu) } }
          : undefined,
        scheduling: { nodeSelector: { ...nodeSelector } },
      });
    out.push(build(suffixed(`kata-${shim}`, suffix)));
    if (truthy(values.runtimeClasses?.createDefault) && !suffix && shim === goPrint(defaultShim)) {
      out.push(build(goPrint(values.runtimeClasses?.defaultName)));
    }
  }
  return out;
}

/** The `handler:` of a custom runtime's RuntimeClass text, found line by line as the chart does (last wins). */
function customHandler(runtimeClassText: unknown): string {
  let handler = "";
  if (!truthy(runtimeClassText)) return handler;
  for (const line of goPrint(runtimeClassText).split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("handler:")) handler = trimmed.slice("handler:".length).trim();
  }
  return handler;
}

function dig(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isMap(current) || !(key in current)) return "";
    current = current[key];
  }
  return current;
}

function customRuntimeEntries(values: ChartValues): [string, Record<string, unknown>][] {
  const runtimes = values.customRuntimes?.runtimes;
  if (!isMap(runtimes)) return [];
  return Object.keys(runtimes)
    .sort()
    .map((name) => [name, isMap(runtimes[name]) ? (runtimes[name] as Record<string, unknown>) : {}]);
}

function customConfigsConfigMap(values: ChartValues, release: Release): ConfigMap | undefined {
  if (!hasCustomConfigs(values)) return undefined;
  const data: Record<string, string> = {};
  if (hasCustomRuntimes(values)) {
    // Format: handler:baseConfig:containerd_snapshotter:crio_pulltype
    const lines = customRuntimeEntries(values).flatMap(([, runtime]) => {
      const handler = customHandler(runtime.runtimeClass);
      if (!handler) return [];
      const snapshotter = goPrint(dig(runtime, "containerd", "snapshotter"));
      const pullType = goPrint(dig(runtime, "crio", "pullType"));
      return [`${handler}:${goPrint(runtime.baseConfig)}:${snapshotter}:${pullType}`];
    });
    data["custom-runtimes.list"] = blockText(lines.join("\n"));
    for (const [, runtime] of customRuntimeEntries(values)) {
      const handler = customHandler(runtime.runtimeClass);
      if (handler && truthy(runtime.dropIn))
        data[`dropin-${handler}.toml`] = blockText(goPrint(runtime.dropIn));
    }
  }
  for (const { name, config } of enabledShims(values)) {
    if (truthy(config.dropIn) && goPrint(config.dropIn).trim() !== "") {
      data[`dropin-${name}.toml`] = blockText(goPrint(config.dropIn));
    }
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: customConfigsConfigMapName(values),
      namespace: release.namespace,
      labels: standardLabels(values, release),
    },
    data,
  };
}

function customRuntimeClasses(values: ChartValues, options: RenderOptions): K8sObject[] {
  if (!hasCustomRuntimes(values)) return [];
  const out: K8sObject[] = [];
  for (const [name, runtime] of customRuntimeEntries(values)) {
    if (!truthy(runtime.runtimeClass)) continue;
    if (!options.parseYaml) {
      throw new ChartValuesError(
        `customRuntimes.runtimes.${name}.runtimeClass: rendering it needs a YAML parser; pass options.parseYaml (e.g. require("yaml").parse)`,
      );
    }
    let parsed: unknown;
    try {
      parsed = options.parseYaml(goPrint(runtime.runtimeClass));
    } catch (error) {
      throw new ChartValuesError(
        `customRuntimes.runtimes.${name}.runtimeClass: not valid YAML (${(error as Error).message}); give a whole RuntimeClass manifest`,
      );
    }
    const object: Record<string, unknown> = isMap(parsed) ? cloneJson(parsed) : {};
    const inherit = "inheritBaseOverhead" in runtime ? runtime.inheritBaseOverhead : true;
    const base = RUNTIME_CLASS_OVERHEAD[goPrint(runtime.baseConfig)];
    if (truthy(inherit) && base) {
      const given = dig(object, "overhead", "podFixed");
      object.overhead = { podFixed: mergeOverwrite(base, given) };
    }
    out.push(object as K8sObject);
  }
  return out;
}

function userDropInConfigMap(values: ChartValues, release: Release): ConfigMap | undefined {
  if (!hasUserDropIn(values)) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: userDropInConfigMapName(values),
      namespace: release.namespace,
      labels: standardLabels(values, release),
    },
    data: { "containerd-user-dropin.toml": blockText(goPrint(values.containerd?.userDropIn)) },
  };
}

function monitorDaemonSet(values: ChartValues, release: Release): DaemonSet | undefined {
  const monitor = values.monitor;
  if (!truthy(monitor?.enabled)) return undefined;
  const labels = { "app.kubernetes.io/name": "kata-monitor", "app.kubernetes.io/instance": release.name };
  return compact({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { labels: { ...labels }, name: "kata-monitor", namespace: release.namespace },
    spec: {
      selector: { matchLabels: { ...labels } },
      template: {
        metadata: { labels: { ...labels }, annotations: { "prometheus.io/scrape": "true" } },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          nodeSelector: withValue(values.nodeSelector),
          ...podPlacement(values),
          containers: [
            {
              name: "kata-monitor",
              image: imageRef(monitor?.image),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              securityContext: cloneJson(monitor?.securityContext ?? {}),
              args: [
                `-listen-address=${goPrint(monitor?.listenAddress)}`,
                `-log-level=${goPrint(monitor?.logLevel)}`,
                `-runtime-endpoint=${goPrint(monitor?.runtimeEndpoint)}`,
              ],
              ports: [{ containerPort: printedScalar(monitor?.port) as number }],
              resources: cloneJson(monitor?.resources ?? {}),
              volumeMounts: [
                { name: "containerd-sock", mountPath: "/run/containerd", readOnly: true },
                { name: "sbs", mountPath: "/run/vc/sbs/", readOnly: true },
              ],
            },
          ],
          terminationGracePeriodSeconds: 30,
          volumes: [
            { name: "containerd-sock", hostPath: { path: "/run/containerd", type: "Directory" } },
            { name: "sbs", hostPath: { path: "/run/vc/sbs/", type: "DirectoryOrCreate" } },
          ],
        },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------------
// Post-delete hooks: removal of the RBAC that Helm keeps on uninstall (kata-cleanup-rbac-job.yaml, §2.1)

/**
 * What the rb-cleanup container runs. Our own script with the chart's behaviour (§2.1): wait up to 300 s for
 * the DaemonSet's pods (label `name=base`) to finish their SIGTERM cleanup, then delete the ClusterRoleBinding,
 * the ClusterRole and the ServiceAccount, three attempts each. Same environment variables as the chart's.
 */
const RB_CLEANUP_SCRIPT = [
  "set -u",
  "deadline=$(( $(date +%s) + 300 ))",
  'while [ "$(kubectl get pods -n "$NAMESPACE" -l "$DAEMONSET_POD_LABEL" -o name 2>/dev/null | wc -l)" -gt 0 ]; do',
  '  if [ "$(date +%s)" -ge "$deadline" ]; then echo "pods labelled $DAEMONSET_POD_LABEL still present after 300s; removing RBAC anyway" >&2; break; fi',
  "  sleep 5",
  "done",
  "remove() {",
  "  for attempt in 1 2 3; do",
  '    kubectl delete "$@" --ignore-not-found --wait=false && return 0',
  '    echo "attempt $attempt/3 failed: kubectl delete $*" >&2',
  "    sleep 2",
  "  done",
  "  return 1",
  "}",
  'remove clusterrolebinding "$CLUSTER_ROLE_BINDING_NAME"',
  'remove clusterrole "$CLUSTER_ROLE_NAME"',
  'remove serviceaccount "$SERVICE_ACCOUNT_NAME" -n "$NAMESPACE"',
  "",
].join("\n");

function postDeleteRbacCleanup(values: ChartValues, release: Release): K8sObject[] {
  const suffix = multiInstallSuffix(values);
  const names = chartNames(suffix);
  const hook = (weight: string) => ({
    [HOOK_ANNOTATION]: "post-delete",
    [HOOK_WEIGHT_ANNOTATION]: weight,
    [HOOK_DELETE_POLICY_ANNOTATION]: "before-hook-creation,hook-succeeded",
  });
  const serviceAccountName = suffixed(`${CHART_NAME}-sa-cleanup`, suffix);
  const roleName = suffixed(`${CHART_NAME}-cleanup-role`, suffix);
  const jobName = suffixed(`${CHART_NAME}-rb-cleanup`, suffix);
  const serviceAccount: K8sObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: serviceAccountName, namespace: release.namespace, annotations: hook("-5") },
  };
  const role: RoleLike = {
    kind: "ClusterRole",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: roleName, annotations: hook("-5") },
    rules: [
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["clusterroles", "clusterrolebindings"],
        verbs: ["delete"],
      },
      { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["delete"] },
    ],
  };
  const binding: BindingLike = {
    kind: "ClusterRoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: suffixed(`${CHART_NAME}-cleanup-rb`, suffix), annotations: hook("-5") },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: roleName },
    subjects: [{ kind: "ServiceAccount", name: serviceAccountName, namespace: release.namespace }],
  };
  const job: Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: jobName, namespace: release.namespace, annotations: hook("0") },
    spec: {
      backoffLimit: 3,
      ttlSecondsAfterFinished: 300,
      template: {
        metadata: suffix ? { labels: { name: jobName } } : {},
        spec: {
          restartPolicy: "OnFailure",
          serviceAccountName,
          containers: [
            {
              name: "rb-cleanup",
              image: kubectlImage(values),
              command: ["bash", "-c", RB_CLEANUP_SCRIPT],
              env: [
                { name: "NAMESPACE", value: release.namespace },
                { name: "DAEMONSET_POD_LABEL", value: `name=${names.daemonSet}` },
                { name: "CLUSTER_ROLE_BINDING_NAME", value: names.clusterRoleBinding },
                { name: "CLUSTER_ROLE_NAME", value: names.clusterRole },
                { name: "SERVICE_ACCOUNT_NAME", value: names.serviceAccount },
              ],
            },
          ],
        },
      },
    },
  };
  return [serviceAccount, role, binding, job];
}

// ---------------------------------------------------------------------------------------------------
// DaemonSet mode

const HEALTH_DEFAULTS: Readonly<Record<string, Json>> = {
  port: 8090,
  startupProbe: {
    enabled: true,
    initialDelaySeconds: 1,
    periodSeconds: 10,
    failureThreshold: 60,
    timeoutSeconds: 3,
  },
  livenessProbe: { enabled: true, periodSeconds: 30, failureThreshold: 3, timeoutSeconds: 3 },
  readinessProbe: { enabled: true, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
};

/**
 * Sprig's `merge` (mergo without override): a key missing from the user's tree *or holding an empty value*
 * (false, 0, "", empty list or map) takes the built-in default; maps merge recursively. So, as in the chart,
 * `health.startupProbe.enabled: false` does not switch the probe off.
 */
function sprigMerge(user: unknown, defaults: Readonly<Record<string, Json>>): Record<string, unknown> {
  const out: Record<string, unknown> = isMap(user) ? cloneJson(user) : {};
  for (const [key, fallback] of Object.entries(defaults)) {
    const current = out[key];
    if (isMap(current) && isMap(fallback)) out[key] = sprigMerge(current, fallback as Record<string, Json>);
    else if (!truthy(current)) out[key] = cloneJson(fallback);
  }
  return out;
}

function probe(path: string, port: unknown, settings: Record<string, unknown>, initialDelay: boolean): Probe {
  return compact({
    httpGet: { path, port: printedScalar(port) as number },
    initialDelaySeconds: initialDelay ? (printedScalar(settings.initialDelaySeconds) as number) : undefined,
    periodSeconds: printedScalar(settings.periodSeconds) as number,
    failureThreshold: printedScalar(settings.failureThreshold) as number,
    timeoutSeconds: printedScalar(settings.timeoutSeconds) as number,
  });
}

/** The six virtualization terms the DaemonSet requires when this release enables node-feature-discovery. */
function nfdAffinity(): Record<string, unknown> {
  const arch = (...values: string[]) => ({ key: "kubernetes.io/arch", operator: "In", values });
  const cpuid = (flag: string) => ({
    key: `feature.node.kubernetes.io/cpu-cpuid.${flag}`,
    operator: "In",
    values: ["true"],
  });
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [cpuid("VMX"), arch("amd64")] },
          { matchExpressions: [cpuid("SVM"), arch("amd64")] },
          { matchExpressions: [arch("arm64", "aarch64")] },
          { matchExpressions: [arch("s390x")] },
          { matchExpressions: [arch("ppc64le")] },
          { matchExpressions: [arch("riscv64")] },
        ],
      },
    },
  };
}

function daemonSet(values: ChartValues, release: Release): DaemonSet {
  const names = chartNames(multiInstallSuffix(values));
  const health = sprigMerge(values.health, HEALTH_DEFAULTS);
  const startup = health.startupProbe as Record<string, unknown>;
  const liveness = health.livenessProbe as Record<string, unknown>;
  const readiness = health.readinessProbe as Record<string, unknown>;
  let logLevel = goPrint(values.logLevel).trim();
  if (!logLevel && truthy(values.debug)) logLevel = "debug";
  return compact({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: names.daemonSet, namespace: release.namespace },
    spec: {
      selector: { matchLabels: { name: names.daemonSet } },
      template: {
        metadata: { labels: { name: names.daemonSet } },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          serviceAccountName: names.serviceAccount,
          nodeSelector: withValue(values.nodeSelector),
          ...podPlacement(values),
          affinity: truthy(values["node-feature-discovery"]?.enabled) ? nfdAffinity() : undefined,
          hostPID: true,
          // Lets the SIGTERM cleanup (CRI restart, node back to Ready) finish before a force-kill.
          terminationGracePeriodSeconds: 600,
          containers: [
            {
              name: "kube-kata",
              image: kataDeployImage(values),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              command: ["/usr/bin/kata-deploy", ...(logLevel ? ["--log-level", logLevel] : []), "install"],
              env: [...commonEnv(values), { name: "HEALTH_PORT", value: goPrint(health.port) }],
              securityContext: { privileged: true },
              startupProbe: truthy(startup.enabled)
                ? probe("/readyz", health.port, startup, true)
                : undefined,
              livenessProbe: truthy(liveness.enabled)
                ? probe("/healthz", health.port, liveness, false)
                : undefined,
              readinessProbe: truthy(readiness.enabled)
                ? probe("/readyz", health.port, readiness, false)
                : undefined,
              resources: withValue(values.resources),
              volumeMounts: commonVolumeMounts(values),
            },
          ],
          volumes: commonVolumes(values),
        },
      },
      updateStrategy: withValue(values.updateStrategy),
    },
  });
}

function nfdConflict(values: ChartValues, release: Release, options: RenderOptions): void {
  if (!truthy(values["node-feature-discovery"]?.enabled) || !options.externalNfdNamespace) return;
  throw new ChartValuesError(
    `\n\nERROR: Cannot deploy kata-deploy with node-feature-discovery.enabled=true\n\n` +
      `node-feature-discovery is already installed in namespace '${options.externalNfdNamespace}'.\n\n` +
      `To fix this, deploy with node-feature-discovery disabled:\n` +
      `  helm upgrade --install ${release.name} ... --set node-feature-discovery.enabled=false\n\n` +
      `The existing node-feature-discovery installation will work with kata-deploy.\n`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Ordering and the entry point

/** Helm's install order by kind (releaseutil.InstallOrder); kinds not listed go last, by kind name. */
const INSTALL_ORDER = [
  "PriorityClass",
  "Namespace",
  "NetworkPolicy",
  "ResourceQuota",
  "LimitRange",
  "PodSecurityPolicy",
  "PodDisruptionBudget",
  "ServiceAccount",
  "Secret",
  "SecretList",
  "ConfigMap",
  "StorageClass",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "CustomResourceDefinition",
  "ClusterRole",
  "ClusterRoleList",
  "ClusterRoleBinding",
  "ClusterRoleBindingList",
  "Role",
  "RoleList",
  "RoleBinding",
  "RoleBindingList",
  "Service",
  "DaemonSet",
  "Pod",
  "ReplicationController",
  "ReplicaSet",
  "Deployment",
  "HorizontalPodAutoscaler",
  "StatefulSet",
  "Job",
  "CronJob",
  "IngressClass",
  "Ingress",
  "APIService",
];

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

function checkRelease(release: Release): void {
  const name = release?.name;
  if (typeof name !== "string" || name === "") {
    throw new ChartValuesError(`release.name: give the Helm release name (a non-empty string)`);
  }
  // Helm's own rule: a DNS-1123 subdomain of at most 53 characters.
  const nameErrors = [
    ...(name.length > HELM_RELEASE_NAME_MAX
      ? [`must be no more than ${HELM_RELEASE_NAME_MAX} characters`]
      : []),
    ...dns1123SubdomainErrors(name),
  ];
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
  const mode = deploymentMode(values);
  const names = chartNames(multiInstallSuffix(values));
  const useShimNodeSelectors =
    truthy(values["node-feature-discovery"]?.enabled) || !!options.externalNfdNamespace;
  const rendered: RenderedChart = {
    values,
    mode,
    names,
    resources: [],
    hooks: { postDeleteRbacCleanup: postDeleteRbacCleanup(values, release) },
  };
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

/**
 * Chart 4.0.0's objects for `userValues` (merged over the chart defaults with Helm's rules) and `release`.
 * Throws ChartValuesError (or UnsupportedOperatorError from selectors.ts) where Helm's render would fail.
 */
export function renderChart(
  userValues: Readonly<Record<string, unknown>> | undefined,
  release: Release,
  options: RenderOptions = {},
): RenderedChart {
  return renderMerged(mergeValues(chartDefaults(), userValues, options.onWarning), release, options);
}
