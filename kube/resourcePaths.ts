// The REST path of a Kubernetes object from its apiVersion and kind, for a client without discovery (the rollout's
// built-ins-only client runs a chart's hook objects, whose kinds it does not know in advance). Plurals follow the
// lower-cased kind as Kubernetes' built-in kinds name their resources; scope from the list of built-in (and common
// add-on) cluster-scoped kinds.

/** Cluster-scoped kinds; every other kind is namespaced. */
export const CLUSTER_SCOPED_KINDS: readonly string[] = [
  "Namespace",
  "Node",
  "PersistentVolume",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "APIService",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "PriorityClass",
  "RuntimeClass",
  "StorageClass",
  "CSIDriver",
  "CSINode",
  "VolumeAttachment",
  "IngressClass",
  "PodSecurityPolicy",
  "CertificateSigningRequest",
  "FlowSchema",
  "PriorityLevelConfiguration",
  // node-feature-discovery (the kata-deploy chart renders NodeFeatureRules)
  "NodeFeatureRule",
];

/** `Ingress` → `ingresses`, `NetworkPolicy` → `networkpolicies`, `Job` → `jobs`. */
export function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (/(s|x|z|ch|sh)$/.test(lower)) return `${lower}es`;
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

export interface ObjectRef {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/**
 * The collection path of an object's kind (`/api/v1/namespaces/ns/configmaps`, `/apis/rbac.authorization.k8s.io/v1/
 * clusterroles`); a namespaced object without a namespace goes to `defaultNamespace`, as Helm puts it in the
 * release namespace.
 */
export function collectionPath(object: ObjectRef, defaultNamespace: string): string {
  const apiVersion = object.apiVersion ?? "";
  const kind = object.kind ?? "";
  if (!apiVersion || !kind)
    throw new Error(`object ${object.metadata?.name ?? "?"}: apiVersion and kind are required`);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const plural = pluralOf(kind);
  if (CLUSTER_SCOPED_KINDS.includes(kind)) return `${base}/${plural}`;
  const ns = object.metadata?.namespace || defaultNamespace;
  return `${base}/namespaces/${encodeURIComponent(ns)}/${plural}`;
}

/** The object's own path. */
export function objectPath(object: ObjectRef, defaultNamespace: string): string {
  const name = object.metadata?.name;
  if (!name) throw new Error(`${object.kind ?? "object"}: metadata.name is required`);
  return `${collectionPath(object, defaultNamespace)}/${encodeURIComponent(name)}`;
}
