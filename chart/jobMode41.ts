// Job mode of chart 4.1.0 (chart-versions.md §1.1, kata-deploy-chart.md "HEAD" §1.2-§1.3, §3.4-§3.5, §4-§6; proven
// against Helm's render of the real chart by tests/chart/helmFixtures.test.ts): selection from the top-level
// `nodeSelector` and `affinity.nodeAffinity`, token-free per-node Jobs, and the dispatcher's node-work flags.
// Node built-ins only.

import { createHash } from "node:crypto";
import { ARCHES, type ChartValues } from "./defaults";
import { cloneJson, goPrint, isMap, truthy } from "./goValues";
import type { ConfigMap, Container, Job, K8sObject, RoleLike } from "./k8s";
import { chartNames, runtimeClassName, t63 } from "./names";
import { compileNodeSelector, type NodeSelectorRequirement } from "./selectors";
import {
  ChartValuesError,
  commonEnv,
  commonVolumeMounts,
  commonVolumes,
  dispatcherImage,
  forceGuestPull,
  hasCustomConfigs,
  hasCustomRuntimes,
  hasUserDropIn,
  kataDeployImage,
  multiInstallSuffix,
  pullTypeMapping,
  shimsForArch,
} from "./workload";
import { nfdAffinity } from "./daemonSet";
import { customRuntimeEntries } from "./kataObjects";
import { chartDispatcherJob, equalityMap, nodeList, requirements } from "./jobMode";
import { DAEMONSET_AUTOMATIC_TOLERATIONS, type Toleration } from "../kube/tolerations";
import { toYaml } from "./yaml";
import {
  CLEANUP_TEMPLATE_KEY,
  INSTALL_TEMPLATE_KEY,
  JOB_TEMPLATES_MOUNT,
  UPSTREAM_DISPATCHER_BINARY,
  type DispatcherStage,
  type Release,
  type RenderOptions,
} from "./renderTypes";
import { compact, nameAndInstance, printedScalar, withValue } from "./renderHelpers";

const V = "4.1.0";

/** The chart's own migration hints for the job-mode selection keys 4.1.0 removed (both modes fail). */
export function removedJobSelectionKeyErrors(values: ChartValues): { path: string; message: string }[] {
  const job = isMap(values.job) ? values.job : {};
  const errors: { path: string; message: string }[] = [];
  for (const key of ["nodeSelector", "nodeAffinity", "nodeSelectorExpressions"]) {
    if (key in job) {
      errors.push({
        path: `job.${key}`,
        message: `job.${key} has been removed. Node selection is now expressed once, at the top level, and applies to both deployment modes: use \`nodeSelector\` for exact label matches and/or \`affinity.nodeAffinity\` for match expressions. Use \`job.nodes\` to name nodes explicitly.`,
      });
    }
  }
  const cleanup = isMap(job.cleanup) ? job.cleanup : {};
  if ("nodeSelectorExpressions" in cleanup) {
    errors.push({
      path: "job.cleanup.nodeSelectorExpressions",
      message:
        "job.cleanup.nodeSelectorExpressions has been renamed to job.cleanup.nodeAffinity, which takes the standard Kubernetes nodeAffinity shape. Move each entry into job.cleanup.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[].matchExpressions.",
    });
  }
  return errors;
}

function failOnRemovedKeys(values: ChartValues): void {
  const [first] = removedJobSelectionKeyErrors(values);
  if (first) throw new ChartValuesError(first.message);
}

/** 4.1.0's `nodeLabelSelector`: the 4.0.0 compilation with 4.1.0's message for Gt/Lt and other operators. */
function labelSelector(eq: Record<string, string>, exprs: NodeSelectorRequirement[]): string {
  for (const { key, operator } of exprs) {
    if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(operator)) {
      throw new ChartValuesError(
        `affinity.nodeAffinity matchExpressions: unsupported operator "${operator}" for key "${key}". Node selection compiles to a label selector, which supports In, NotIn, Exists and DoesNotExist only - Gt and Lt cannot be expressed.`,
      );
    }
  }
  return compileNodeSelector(eq, exprs);
}

type Term = { matchExpressions?: unknown; matchFields?: unknown };

function requiredTerms(nodeAffinity: unknown): { hasRequired: boolean; terms: Term[] } {
  const affinity = isMap(nodeAffinity) ? nodeAffinity : {};
  const hasRequired = "requiredDuringSchedulingIgnoredDuringExecution" in affinity;
  const required = affinity.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = isMap(required) && truthy(required.nodeSelectorTerms) ? required.nodeSelectorTerms : [];
  return { hasRequired, terms: Array.isArray(terms) ? (terms as Term[]) : [] };
}

/** One selector per term (OR), equalities folded into each, deduplicated; an empty selector means every node. */
function selectorsOf(eq: Record<string, string>, terms: Term[], path: string): string[] {
  const selectors = truthy(terms)
    ? terms.map((t, i) =>
        labelSelector(eq, requirements(t.matchExpressions, `${path}[${i}].matchExpressions`)),
      )
    : [labelSelector(eq, [])];
  const unique = [...new Set(selectors)];
  return unique.includes("") ? [] : unique;
}

/** `kata-deploy.installNodeSelectors`: the install dispatcher's `--node-selector` values, in order. */
export function installNodeSelectors(values: ChartValues): string[] {
  failOnRemovedKeys(values);
  const eq = equalityMap(values.nodeSelector, "nodeSelector");
  const affinity = isMap(values.affinity) ? values.affinity : {};
  const required = requiredTerms(affinity.nodeAffinity);
  const hasRequired = required.hasRequired;
  let terms = required.terms;
  if (hasRequired && !truthy(terms)) {
    throw new ChartValuesError(
      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms must not be empty with deploymentMode: job. Kubernetes defines an empty required term list as matching no nodes; remove requiredDuringSchedulingIgnoredDuringExecution to select every otherwise eligible node.",
    );
  }
  for (const term of terms) {
    if (isMap(term) && truthy(term.matchFields)) {
      throw new ChartValuesError(
        "affinity.nodeAffinity: matchFields cannot be used with deploymentMode: job. Node selection is a label-selector LIST against the Kubernetes API server, which cannot match on fields. To target nodes by name, use job.nodes instead.",
      );
    }
    if (!isMap(term) || !truthy(term.matchExpressions)) {
      throw new ChartValuesError(
        "affinity.nodeAffinity: an empty nodeSelectorTerm matches no nodes in Kubernetes and cannot be represented as an API label selector in job mode. Remove the empty term or add a matchExpressions requirement.",
      );
    }
  }
  if (truthy(values["node-feature-discovery"]?.enabled)) {
    const nfdTerms = requiredTerms((nfdAffinity() as { nodeAffinity: unknown }).nodeAffinity).terms;
    const list = (v: unknown): unknown[] => (truthy(v) && Array.isArray(v) ? v : []);
    terms = nfdTerms.flatMap((n) =>
      truthy(terms)
        ? terms.map((u) => ({ matchExpressions: [...list(n.matchExpressions), ...list(u.matchExpressions)] }))
        : [n],
    );
  }
  return selectorsOf(
    eq,
    terms,
    "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
  );
}

/** `kata-deploy.cleanupNodeSelectors`: never narrowed by the top-level selection or NFD. */
export function cleanupNodeSelectors(values: ChartValues): string[] {
  const cleanup = isMap(values.job?.cleanup) ? values.job.cleanup : {};
  const eq = equalityMap(cleanup.nodeSelector, "job.cleanup.nodeSelector");
  const { terms } = truthy(cleanup.nodeAffinity) ? requiredTerms(cleanup.nodeAffinity) : { terms: [] };
  for (const term of terms) {
    if (isMap(term) && truthy(term.matchFields)) {
      throw new ChartValuesError(
        "job.cleanup.nodeAffinity: matchFields is not supported; use job.cleanup.nodes to name nodes explicitly.",
      );
    }
  }
  return selectorsOf(
    eq,
    terms,
    "job.cleanup.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
  );
}

/** `kata-deploy.criHandlers`: every handler this release installs (per arch, deduplicated), then custom ones. */
export function criHandlers(values: ChartValues, options: RenderOptions): string[] {
  const suffix = multiInstallSuffix(values);
  const handlers: string[] = [];
  const add = (h: string) => {
    if (h && !handlers.includes(h)) handlers.push(h);
  };
  for (const arch of ARCHES)
    for (const { name } of shimsForArch(values, arch)) add(runtimeClassName(name, suffix));
  if (hasCustomRuntimes(values)) {
    for (const [name, runtime] of customRuntimeEntries(values)) {
      if (!truthy(runtime.runtimeClass)) continue;
      if (!options.parseYaml) {
        throw new ChartValuesError(
          `customRuntimes.runtimes.${name}.runtimeClass: rendering it needs a YAML parser; pass options.parseYaml (e.g. require("yaml").parse)`,
        );
      }
      const parsed = options.parseYaml(goPrint(runtime.runtimeClass));
      add(isMap(parsed) && truthy(parsed.handler) ? goPrint(parsed.handler) : "");
    }
  }
  return handlers;
}

/** "600" when images are pulled or converted inside CreateContainer (guest pull, erofs), else "". */
export function kubeletTimeoutWarnSecs(values: ChartValues): string {
  const guestPull = ARCHES.some(
    (arch) => forceGuestPull(values, arch) !== "" || pullTypeMapping(values, arch).includes("guest-pull"),
  );
  const setup = Array.isArray(values.snapshotter?.setup)
    ? values.snapshotter.setup.map(goPrint).join(",")
    : "";
  const customGuestPull =
    truthy(values.customRuntimes?.enabled) &&
    customRuntimeEntries(values).some(([, r]) => {
      const crio = r.crio;
      return isMap(crio) && goPrint(crio.pullType).includes("guest-pull");
    });
  return guestPull || setup.includes("erofs") || customGuestPull ? "600" : "";
}

/** `kata-deploy.dispatcherNodeWorkFlags` of the in-tree 4.1.0 dispatcher. */
export function nodeWorkFlags(values: ChartValues, stage: DispatcherStage, options: RenderOptions): string[] {
  const suffix = multiInstallSuffix(values);
  const flags = suffix ? [`--multi-install-suffix=${suffix}`] : [];
  if (stage === "cleanup") return [...flags, "--remove-node-label"];
  const job = values.job ?? {};
  const handlers = criHandlers(values, options).join(",");
  const taints =
    truthy(values.startupTaints) && Array.isArray(values.startupTaints) ? values.startupTaints : [];
  const warn = kubeletTimeoutWarnSecs(values);
  return [
    ...flags,
    "--node-label=true",
    "--claim-node-pending",
    `--wait-node-ready-secs=${truthy(job.waitNodeReadySeconds) ? goPrint(job.waitNodeReadySeconds) : "300"}`,
    ...(handlers ? [`--require-node-handlers=${handlers}`] : []),
    ...(taints.length > 0 ? [`--remove-node-taints=${taints.map(goPrint).join(",")}`] : []),
    ...(warn ? [`--kubelet-timeout-warn-secs=${warn}`] : []),
  ];
}

/** The 4.1.0 dispatcher command line after the binary. */
export function dispatcherFlags41(
  values: ChartValues,
  stage: DispatcherStage,
  options: RenderOptions = {},
): string[] {
  const names = chartNames(multiInstallSuffix(values));
  const job = values.job ?? {};
  const common = [
    `--name-prefix=${stage === "install" ? names.installNamePrefix : names.cleanupNamePrefix}`,
    `--owner-job-name=${stage === "install" ? names.installDispatcherJob : names.cleanupDispatcherJob}`,
    `--parallelism=${goPrint(job.parallelism)}`,
  ];
  if (stage === "install") {
    const nodes = nodeList(job.nodes, "job.nodes");
    const selectors = installNodeSelectors(values);
    return [
      `--job-template=${JOB_TEMPLATES_MOUNT}/${INSTALL_TEMPLATE_KEY}`,
      `--cleanup-job-template=${JOB_TEMPLATES_MOUNT}/${CLEANUP_TEMPLATE_KEY}`,
      ...common,
      ...(nodes.length > 0
        ? [`--nodes=${nodes.join(",")}`]
        : [
            ...selectors.map((s) => `--node-selector=${s}`),
            `--wait-for-nodes-secs=${truthy(job.waitForNodesSeconds) ? goPrint(job.waitForNodesSeconds) : "0"}`,
            `--node-settle-secs=${truthy(job.nodeSettleSeconds) ? goPrint(job.nodeSettleSeconds) : "15"}`,
          ]),
      ...nodeWorkFlags(values, "install", options),
    ];
  }
  const cleanup = isMap(job.cleanup) ? job.cleanup : {};
  const nodes = nodeList(cleanup.nodes, "job.cleanup.nodes");
  const selectors = cleanupNodeSelectors(values);
  return [
    `--job-template=${JOB_TEMPLATES_MOUNT}/${CLEANUP_TEMPLATE_KEY}`,
    ...common,
    ...nodeWorkFlags(values, "cleanup", options),
    ...(nodes.length > 0 ? [`--nodes=${nodes.join(",")}`] : selectors.map((s) => `--node-selector=${s}`)),
    "--ignore-node-taints",
  ];
}

const PIPELINES_41: Readonly<Record<DispatcherStage, { init: [string, string][]; main: [string, string] }>> =
  {
    install: {
      init: [
        ["host-check", "install-stage-host-check"],
        ["artifacts", "install-stage-artifacts"],
      ],
      main: ["cri", "install-stage-cri"],
    },
    cleanup: {
      init: [["revert-cri", "cleanup-stage-revert-cri"]],
      main: ["remove-artifacts", "cleanup-stage-remove-artifacts"],
    },
  };

function stageContainer41(values: ChartValues, [name, action]: [string, string]): Container {
  return compact({
    name,
    image: kataDeployImage(values, V),
    imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
    command: ["/usr/bin/kata-deploy", action],
    env: commonEnv(values, V),
    securityContext: { privileged: false, readOnlyRootFilesystem: true },
    volumeMounts: commonVolumeMounts(values, V),
  });
}

/**
 * The sha256 this renderer puts in a `checksum/*` annotation: over the YAML of the object it renders. Helm
 * hashes its own rendered bytes, which differ in layout; what matters, and what is tested, is that the value
 * changes exactly when the hashed object changes (so the pods roll).
 */
export function checksumOf(object: K8sObject | undefined): string {
  return createHash("sha256")
    .update(toYaml(object ?? null))
    .digest("hex");
}

/** `kata-deploy.podTemplateAnnotations`: podAnnotations, then the ConfigMap checksums (which always win). */
export function podTemplateAnnotations(
  values: ChartValues,
  configMaps: { userDropIn?: K8sObject; customConfigs?: K8sObject },
): Record<string, string> | undefined {
  const annotations: Record<string, string> = {};
  if (isMap(values.podAnnotations)) {
    for (const [k, v] of Object.entries(values.podAnnotations)) annotations[k] = goPrint(v);
  }
  if (hasUserDropIn(values))
    annotations["checksum/containerd-user-dropin"] = checksumOf(configMaps.userDropIn);
  if (hasCustomConfigs(values)) annotations["checksum/custom-configs"] = checksumOf(configMaps.customConfigs);
  return truthy(annotations) ? annotations : undefined;
}

/** `kata-deploy.perNodeJob` of 4.1.0: no ServiceAccount or token, DaemonSet-style tolerations, a deadline. */
export function perNodeJobTemplate41(
  values: ChartValues,
  release: Release,
  stage: DispatcherStage,
  configMaps: { userDropIn?: K8sObject; customConfigs?: K8sObject },
): Job {
  const job = values.job ?? {};
  const ttl = typeof job.ttlSecondsAfterFinished === "number" ? Math.trunc(job.ttlSecondsAfterFinished) : 0;
  if (ttl < 60) {
    throw new ChartValuesError(
      `job.ttlSecondsAfterFinished is ${goPrint(job.ttlSecondsAfterFinished)}, which is too short for the dispatcher to observe a per-node Job finishing: the Job is deleted before it is next polled and its node is reported as failed even though its install succeeded. Use 60 or more.`,
    );
  }
  const labels = { ...nameAndInstance(values, release), "kata-deploy/stage": stage };
  const podLabels: Record<string, string> = {};
  if (isMap(values.podLabels))
    for (const [k, v] of Object.entries(values.podLabels)) podLabels[k] = goPrint(v);
  const userTolerations = withValue<Toleration[]>(values.tolerations) ?? [];
  const tolerations: Toleration[] =
    stage === "cleanup"
      ? [{ operator: "Exists" }]
      : [
          ...(truthy(job.nodes) ? [{ operator: "Exists" }] : cloneJson([...DAEMONSET_AUTOMATIC_TOLERATIONS])),
          ...userTolerations,
        ];
  const pipeline = PIPELINES_41[stage];
  return compact({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { labels },
    spec: {
      backoffLimit: printedScalar(job.backoffLimit) as number | undefined,
      ttlSecondsAfterFinished: printedScalar(job.ttlSecondsAfterFinished) as number | undefined,
      activeDeadlineSeconds: truthy(job.activeDeadlineSeconds)
        ? (printedScalar(job.activeDeadlineSeconds) as number)
        : 3600,
      template: {
        metadata: {
          labels: { ...podLabels, ...labels },
          annotations: podTemplateAnnotations(values, configMaps),
        },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          automountServiceAccountToken: false,
          restartPolicy: "Never",
          tolerations,
          priorityClassName: truthy(values.priorityClassName) ? goPrint(values.priorityClassName) : undefined,
          initContainers: pipeline.init.map((s) => stageContainer41(values, s)),
          containers: [stageContainer41(values, pipeline.main)],
          volumes: commonVolumes(values, V),
        },
      },
    },
  });
}

/**
 * The 4.1.0 dispatcher hook Job: 4.0.0's Job (name, labels, hooks, identity, security contexts, templates mount)
 * with 4.1.0's image tag and flags, its own placement, and on the install one the job-templates checksum.
 */
export function chartDispatcherJob41(
  values: ChartValues,
  release: Release,
  stage: DispatcherStage,
  jobTemplates: ConfigMap,
  options: RenderOptions = {},
): Job {
  const job = chartDispatcherJob(values, release, stage);
  const pod = job.spec.template;
  if (stage === "install") pod.metadata.annotations = { "checksum/job-templates": checksumOf(jobTemplates) };
  const jobValues = values.job ?? {};
  // Where the dispatcher pod runs (not where Kata goes): its own selector, its tolerations or the top-level ones.
  const placement = compact({
    nodeSelector: withValue<Record<string, string>>(jobValues.dispatcherNodeSelector),
    tolerations: withValue<unknown[]>(
      truthy(jobValues.dispatcherTolerations) ? jobValues.dispatcherTolerations : values.tolerations,
    ),
  });
  delete pod.spec.tolerations;
  pod.spec = { ...pod.spec, ...placement };
  const container = pod.spec.containers[0];
  container.image = dispatcherImage(values, V);
  container.command = [UPSTREAM_DISPATCHER_BINARY, ...dispatcherFlags41(values, stage, options)];
  return job;
}

/** 4.1.0's dispatcher node ClusterRole rules: nodes list/get/patch, plus nodes/proxy get with the kubelet warning. */
export function dispatcherRbacRules41(values: ChartValues): {
  node: RoleLike["rules"];
  jobs: RoleLike["rules"];
} {
  return {
    node: [
      { apiGroups: [""], resources: ["nodes"], verbs: ["list", "get", "patch"] },
      ...(kubeletTimeoutWarnSecs(values)
        ? [{ apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] }]
        : []),
    ],
    jobs: [{ apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "list", "delete"] }],
  };
}

/**
 * `<release>-kata-deploy-state` (t63): the identity (suffix and mode) 4.1.0 records to refuse changing them. Its
 * `lookup`-based guard never fires in a client-side render (no `.Release.IsUpgrade`), so the component enforces
 * immutability itself. An unknown mode fails here as in the chart.
 */
export function stateConfigMap(values: ChartValues, release: Release): ConfigMap {
  const mode = truthy(values.deploymentMode) ? goPrint(values.deploymentMode) : "daemonset";
  if (mode !== "daemonset" && mode !== "job") {
    throw new ChartValuesError(`deploymentMode must be one of daemonset or job, got ${JSON.stringify(mode)}`);
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: t63(`${release.name}-kata-deploy-state`),
      namespace: release.namespace,
      labels: nameAndInstance(values, release),
    },
    data: { multiInstallSuffix: multiInstallSuffix(values), deploymentMode: mode },
  };
}
