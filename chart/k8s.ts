// The slice of the Kubernetes object model the chart renders, as plain JSON-shaped interfaces (no client
// library at run time: the rollout's serialized dynamic provider imports the renderer).

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { fieldPath: string } };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; defaultMode?: number };
  emptyDir?: Record<string, never>;
}

export interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  runAsUser?: number;
  runAsGroup?: number;
  [field: string]: unknown;
}

export interface Probe {
  httpGet: { path: string; port: number | string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
  timeoutSeconds?: number;
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  securityContext?: SecurityContext;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: Record<string, unknown>;
  ports?: { containerPort: number }[];
  volumeMounts?: VolumeMount[];
}

export interface PodSecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  seccompProfile?: { type: string };
}

export interface PodSpec {
  imagePullSecrets?: unknown[];
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  restartPolicy?: string;
  securityContext?: PodSecurityContext;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  priorityClassName?: string;
  affinity?: Record<string, unknown>;
  hostPID?: boolean;
  terminationGracePeriodSeconds?: number;
  nodeName?: string;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}

export interface PodTemplate {
  metadata: ObjectMeta;
  spec: PodSpec;
}

export interface Job extends K8sObject {
  apiVersion: "batch/v1";
  kind: "Job";
  spec: {
    backoffLimit?: number;
    ttlSecondsAfterFinished?: number;
    activeDeadlineSeconds?: number;
    template: PodTemplate;
  };
}

export interface DaemonSet extends K8sObject {
  apiVersion: "apps/v1";
  kind: "DaemonSet";
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: PodTemplate;
    updateStrategy?: Record<string, unknown>;
  };
}

export interface ConfigMap extends K8sObject {
  apiVersion: "v1";
  kind: "ConfigMap";
  data: Record<string, string>;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export interface RoleLike extends K8sObject {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "Role" | "ClusterRole";
  rules: PolicyRule[];
}

export interface BindingLike extends K8sObject {
  apiVersion: "rbac.authorization.k8s.io/v1";
  kind: "RoleBinding" | "ClusterRoleBinding";
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
}

export interface RuntimeClass extends K8sObject {
  apiVersion: "node.k8s.io/v1";
  kind: "RuntimeClass";
  handler: string;
  overhead?: { podFixed: Record<string, string> };
  scheduling?: { nodeSelector: Record<string, string> };
}
