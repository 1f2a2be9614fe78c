// The resource catalogue kube-sim serves: URL names, API groups, kinds, scope, the fields each kind
// allows in field selectors (kubernetes-api-facts.md §5, §1.8) and the default delete propagation.
import type { KubeObject, PropagationPolicy, ResourceName } from "./types";

export interface ResourceInfo {
  name: ResourceName;
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  /** Has a /status subresource whose writes are separate from spec writes. */
  hasStatus: boolean;
  /** Objects get metadata.generation, bumped on spec changes. */
  hasGeneration: boolean;
  defaultPropagation: PropagationPolicy;
  /** Field-selector fields beyond metadata.name / metadata.namespace. */
  extraFields: Readonly<Record<string, (o: KubeObject) => string>>;
  /** Which name rule applies (namespaces are DNS labels; RBAC objects are path segments). */
  nameRule: "dns1123Subdomain" | "dns1123Label" | "pathSegment";
  /** Discovery: the short names and categories kube-apiserver advertises (`kubectl get ns`, `get all`). */
  shortNames?: readonly string[];
  categories?: readonly string[];
}

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));
const spec = (o: KubeObject): Record<string, unknown> => o.spec ?? {};
const status = (o: KubeObject): Record<string, unknown> => o.status ?? {};
const involved = (o: KubeObject): Record<string, unknown> =>
  (o.involvedObject as Record<string, unknown>) ?? {};

const base = {
  hasStatus: false,
  hasGeneration: false,
  defaultPropagation: "Background" as const,
  extraFields: {},
};

export const RESOURCES: Readonly<Record<ResourceName, ResourceInfo>> = {
  namespaces: {
    ...base,
    name: "namespaces",
    group: "",
    version: "v1",
    kind: "Namespace",
    namespaced: false,
    shortNames: ["ns"],
    hasStatus: true,
    nameRule: "dns1123Label",
    extraFields: { "status.phase": (o) => str(status(o).phase) },
  },
  nodes: {
    ...base,
    name: "nodes",
    group: "",
    version: "v1",
    kind: "Node",
    namespaced: false,
    shortNames: ["no"],
    hasStatus: true,
    nameRule: "dns1123Subdomain",
    extraFields: { "spec.unschedulable": (o) => (spec(o).unschedulable === true ? "true" : "false") },
  },
  configmaps: {
    ...base,
    name: "configmaps",
    group: "",
    version: "v1",
    kind: "ConfigMap",
    namespaced: true,
    shortNames: ["cm"],
    nameRule: "dns1123Subdomain",
  },
  serviceaccounts: {
    ...base,
    name: "serviceaccounts",
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    namespaced: true,
    shortNames: ["sa"],
    nameRule: "dns1123Subdomain",
  },
  pods: {
    ...base,
    name: "pods",
    group: "",
    version: "v1",
    kind: "Pod",
    namespaced: true,
    shortNames: ["po"],
    categories: ["all"],
    hasStatus: true,
    hasGeneration: true,
    nameRule: "dns1123Subdomain",
    extraFields: {
      "spec.nodeName": (o) => str(spec(o).nodeName),
      "spec.restartPolicy": (o) => str(spec(o).restartPolicy),
      "spec.schedulerName": (o) => str(spec(o).schedulerName),
      "spec.serviceAccountName": (o) => str(spec(o).serviceAccountName),
      "spec.hostNetwork": (o) => (spec(o).hostNetwork === true ? "true" : "false"),
      "status.phase": (o) => str(status(o).phase),
      "status.podIP": (o) => str(status(o).podIP),
      "status.nominatedNodeName": (o) => str(status(o).nominatedNodeName),
    },
  },
  events: {
    ...base,
    name: "events",
    group: "",
    version: "v1",
    kind: "Event",
    namespaced: true,
    shortNames: ["ev"],
    nameRule: "dns1123Subdomain",
    extraFields: {
      "involvedObject.kind": (o) => str(involved(o).kind),
      "involvedObject.namespace": (o) => str(involved(o).namespace),
      "involvedObject.name": (o) => str(involved(o).name),
      "involvedObject.uid": (o) => str(involved(o).uid),
      "involvedObject.apiVersion": (o) => str(involved(o).apiVersion),
      "involvedObject.resourceVersion": (o) => str(involved(o).resourceVersion),
      "involvedObject.fieldPath": (o) => str(involved(o).fieldPath),
      reason: (o) => str(o.reason),
      reportingComponent: (o) => str(o.reportingComponent),
      source: (o) => str((o.source as Record<string, unknown> | undefined)?.component),
      type: (o) => str(o.type),
    },
  },
  jobs: {
    ...base,
    name: "jobs",
    group: "batch",
    version: "v1",
    kind: "Job",
    namespaced: true,
    categories: ["all"],
    hasStatus: true,
    hasGeneration: true,
    defaultPropagation: "Orphan",
    nameRule: "dns1123Subdomain",
    extraFields: { "status.successful": (o) => str(status(o).succeeded ?? 0) },
  },
  daemonsets: {
    ...base,
    name: "daemonsets",
    group: "apps",
    version: "v1",
    kind: "DaemonSet",
    namespaced: true,
    shortNames: ["ds"],
    categories: ["all"],
    hasStatus: true,
    hasGeneration: true,
    nameRule: "dns1123Subdomain",
  },
  roles: {
    ...base,
    name: "roles",
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "Role",
    namespaced: true,
    nameRule: "pathSegment",
  },
  clusterroles: {
    ...base,
    name: "clusterroles",
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRole",
    namespaced: false,
    nameRule: "pathSegment",
  },
  rolebindings: {
    ...base,
    name: "rolebindings",
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "RoleBinding",
    namespaced: true,
    nameRule: "pathSegment",
  },
  clusterrolebindings: {
    ...base,
    name: "clusterrolebindings",
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRoleBinding",
    namespaced: false,
    nameRule: "pathSegment",
  },
  secrets: {
    ...base,
    name: "secrets",
    group: "",
    version: "v1",
    kind: "Secret",
    namespaced: true,
    nameRule: "dns1123Subdomain",
    extraFields: { type: (o) => str(o.type) },
  },
  services: {
    ...base,
    name: "services",
    group: "",
    version: "v1",
    kind: "Service",
    namespaced: true,
    hasStatus: true,
    nameRule: "dns1123Label",
    shortNames: ["svc"],
    categories: ["all"],
  },
  runtimeclasses: {
    ...base,
    name: "runtimeclasses",
    group: "node.k8s.io",
    version: "v1",
    kind: "RuntimeClass",
    namespaced: false,
    nameRule: "dns1123Subdomain",
  },
  controllerrevisions: {
    ...base,
    name: "controllerrevisions",
    group: "apps",
    version: "v1",
    kind: "ControllerRevision",
    namespaced: true,
    nameRule: "dns1123Subdomain",
  },
  leases: {
    ...base,
    name: "leases",
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    namespaced: true,
    nameRule: "dns1123Subdomain",
  },
};

export function apiVersionOf(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** "jobs.batch" for named groups, "pods" for core (the form Status messages use). */
export function qualifiedResource(info: ResourceInfo): string {
  return info.group ? `${info.name}.${info.group}` : info.name;
}

/** "Job.batch" / "Pod" (the form Invalid messages use). */
export function qualifiedKind(info: ResourceInfo): string {
  return info.group ? `${info.kind}.${info.group}` : info.kind;
}

/** Looks a resource up by API group/version and plural name, as it appears in a URL. */
export function findResource(group: string, version: string, name: string): ResourceInfo | undefined {
  const info = (RESOURCES as Record<string, ResourceInfo>)[name];
  if (!info || info.group !== group || info.version !== version) return undefined;
  return info;
}

/** The field set a field selector is evaluated on, for one object. */
export function selectableFields(info: ResourceInfo, o: KubeObject): Record<string, string> {
  const fields: Record<string, string> = {
    "metadata.name": o.metadata.name ?? "",
    "metadata.namespace": o.metadata.namespace ?? "",
  };
  for (const [f, get] of Object.entries(info.extraFields)) fields[f] = get(o);
  return fields;
}

export function supportedFields(info: ResourceInfo): string[] {
  return ["metadata.name", "metadata.namespace", ...Object.keys(info.extraFields)];
}
