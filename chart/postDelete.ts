// Post-delete hooks of chart 4.0.0: removal of the RBAC Helm keeps on uninstall (kata-cleanup-rbac-job.yaml, §2.1).
// Node built-ins only.

import type { ChartValues } from "./defaults";
import type { BindingLike, Job, K8sObject, ObjectMeta, RoleLike } from "./k8s";
import { CHART_NAME, chartNames } from "./names";
import { kubectlImage, multiInstallSuffix } from "./workload";
import {
  HOOK_ANNOTATION,
  HOOK_DELETE_POLICY_ANNOTATION,
  HOOK_WEIGHT_ANNOTATION,
  type Release,
} from "./renderTypes";
import { deploymentMode, suffixed } from "./renderHelpers";

/**
 * What the rb-cleanup container runs. Our own script with the chart's behaviour (§2.1): wait up to 300 s for
 * the DaemonSet's pods (label `name=base`) to finish their SIGTERM cleanup, then delete the ClusterRoleBinding,
 * the ClusterRole and the ServiceAccount, and in job mode the dispatcher's RoleBinding, Role, ClusterRoleBinding,
 * ClusterRole and ServiceAccount, three attempts each. Same environment variables as the chart's.
 */
export const RB_CLEANUP_SCRIPT = [
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
  "# Job mode: the dispatcher's identity too (its variables are set only then).",
  'if [ -n "${DISPATCHER_SERVICE_ACCOUNT_NAME:-}" ]; then',
  '  remove rolebinding "$DISPATCHER_ROLE_BINDING_NAME" -n "$NAMESPACE"',
  '  remove role "$DISPATCHER_ROLE_NAME" -n "$NAMESPACE"',
  '  remove clusterrolebinding "$DISPATCHER_NODE_ROLE_BINDING_NAME"',
  '  remove clusterrole "$DISPATCHER_NODE_ROLE_NAME"',
  '  remove serviceaccount "$DISPATCHER_SERVICE_ACCOUNT_NAME" -n "$NAMESPACE"',
  "fi",
  "",
].join("\n");

export function postDeleteRbacCleanup(values: ChartValues, release: Release): K8sObject[] {
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
        resources: ["clusterroles", "clusterrolebindings", "roles", "rolebindings"],
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
        // The chart writes `metadata:` with nothing under it when there is no suffix: no metadata at all.
        ...((suffix ? { metadata: { labels: { name: jobName } } } : {}) as { metadata: ObjectMeta }),
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
                ...(deploymentMode(values) === "job"
                  ? [
                      { name: "DISPATCHER_SERVICE_ACCOUNT_NAME", value: names.dispatcherServiceAccount },
                      { name: "DISPATCHER_NODE_ROLE_NAME", value: names.dispatcherNodeClusterRole },
                      {
                        name: "DISPATCHER_NODE_ROLE_BINDING_NAME",
                        value: names.dispatcherNodeClusterRoleBinding,
                      },
                      { name: "DISPATCHER_ROLE_NAME", value: names.dispatcherRole },
                      { name: "DISPATCHER_ROLE_BINDING_NAME", value: names.dispatcherRoleBinding },
                    ]
                  : []),
              ],
            },
          ],
        },
      },
    },
  };
  return [serviceAccount, role, binding, job];
}
