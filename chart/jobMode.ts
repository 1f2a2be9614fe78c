// Job mode of chart 4.0.0: the dispatchers' node selection and flags (§3.4, OLD precedence; cleanup as in
// design.md §1), the per-node Job templates and their ConfigMap (§4), the dispatcher hook Jobs (§5) and the
// dispatcher's RBAC (§6). Node built-ins only.

import type { ChartValues } from "./defaults";
import { cloneJson, goPrint, goSprintfS, isMap, truthy } from "./goValues";
import type { BindingLike, ConfigMap, Container, EnvVar, Job, K8sObject, RoleLike } from "./k8s";
import { chartNames } from "./names";
import {
  compileNodeSelector,
  nodeSelection,
  selectionArgs,
  type NodeSelection,
  type NodeSelectorRequirement,
} from "./selectors";
import {
  ChartValuesError,
  commonEnv,
  commonVolumeMounts,
  commonVolumes,
  dispatcherImage,
  kataDeployImage,
  multiInstallSuffix,
} from "./workload";
import { toYaml } from "./yaml";
import {
  CLEANUP_TEMPLATE_KEY,
  HOOK_ANNOTATION,
  HOOK_DELETE_POLICY_ANNOTATION,
  HOOK_WEIGHT_ANNOTATION,
  INSTALL_TEMPLATE_KEY,
  JOB_TEMPLATES_MOUNT,
  UPSTREAM_DISPATCHER_BINARY,
  type DispatcherStage,
  type Release,
} from "./renderTypes";
import { compact, nameAndInstance, podPlacement, printedScalar, withValue } from "./renderHelpers";

export function equalityMap(value: unknown, path: string): Record<string, string> {
  if (!truthy(value)) return {};
  if (!isMap(value)) {
    throw new ChartValuesError(`${path}: expected a map of label key to value, got ${JSON.stringify(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) out[key] = goSprintfS(item);
  return out;
}

export function requirements(value: unknown, path: string): NodeSelectorRequirement[] {
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

export function nodeList(value: unknown, path: string): string[] {
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
  return selectionArgs(dispatcherSelection(values, stage));
}

/** A dispatcher's node selection as data (what `dispatcherSelectionArgs` writes as flags). */
export function dispatcherSelection(values: ChartValues, stage: DispatcherStage): NodeSelection {
  const source =
    stage === "install" ? values.job : truthy(values.job?.cleanup) ? values.job?.cleanup : undefined;
  const prefix = stage === "install" ? "job" : "job.cleanup";
  const eq = equalityMap(source?.nodeSelector, `${prefix}.nodeSelector`);
  const exprs = requirements(source?.nodeSelectorExpressions, `${prefix}.nodeSelectorExpressions`);
  compileNodeSelector(eq, exprs);
  return nodeSelection(nodeList(source?.nodes, `${prefix}.nodes`), eq, exprs);
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

interface StageSpec {
  name: string;
  action: string;
  privileged: boolean;
  mountHost: boolean;
}

/** The OLD pipelines (§4): init containers run in order, then the main container. */
export const PIPELINES: Readonly<Record<DispatcherStage, { init: StageSpec[]; main: StageSpec }>> = {
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

export function stageContainer(values: ChartValues, stage: StageSpec, env: EnvVar[]): Container {
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

export function jobTemplatesConfigMap(
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

export const HOOKS: Readonly<Record<DispatcherStage, Record<string, string>>> = {
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

/** Chart 4.0.0: nodes list; jobs create/get/delete (no list/watch: the project's pod-reader Role adds them). */
const DISPATCHER_RULES_40 = {
  node: [{ apiGroups: [""], resources: ["nodes"], verbs: ["list"] }],
  jobs: [{ apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "delete"] }],
};

export function dispatcherRbac(
  values: ChartValues,
  release: Release,
  rules: { node: RoleLike["rules"]; jobs: RoleLike["rules"] } = DISPATCHER_RULES_40,
): K8sObject[] {
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
    rules: cloneJson(rules.node),
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
    rules: cloneJson(rules.jobs),
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
