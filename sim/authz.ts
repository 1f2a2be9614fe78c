// Authentication (bearer tokens → admin or a ServiceAccount) and RBAC authorization against the stored
// Roles/ClusterRoles and their bindings, with kube-apiserver's Forbidden message shape.
import type { Store } from "./store";
import type { KubeObject } from "./types";

export interface UserInfo {
  /** "admin" or "system:serviceaccount:<ns>:<name>". */
  name: string;
  groups: string[];
  admin: boolean;
  serviceAccount?: { namespace: string; name: string };
}

export interface AuthzRequest {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
    admin: false,
    serviceAccount: { namespace, name },
  };
}

function subjectMatches(s: Subject, user: UserInfo, bindingNamespace?: string): boolean {
  if (s.kind === "ServiceAccount") {
    const ns = s.namespace ?? bindingNamespace;
    return (
      !!user.serviceAccount && user.serviceAccount.name === s.name && user.serviceAccount.namespace === ns
    );
  }
  if (s.kind === "Group") return user.groups.includes(s.name);
  if (s.kind === "User") return user.name === s.name;
  return false;
}

function ruleAllows(rule: PolicyRule, req: AuthzRequest): boolean {
  const verbs = rule.verbs ?? [];
  if (!verbs.includes("*") && !verbs.includes(req.verb)) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes("*") && !groups.includes(req.group)) return false;
  const resources = rule.resources ?? [];
  const full = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
  const resourceOk =
    resources.includes("*") ||
    resources.includes(full) ||
    (req.subresource !== undefined && resources.includes(`*/${req.subresource}`));
  if (!resourceOk) return false;
  const names = rule.resourceNames ?? [];
  if (names.length === 0) return true;
  // A rule limited to names cannot allow a request that names nothing (create, unfiltered list/watch).
  return req.name !== undefined && names.includes(req.name);
}

function rulesOf(store: Store, kind: string, name: string, namespace?: string): PolicyRule[] {
  const role: KubeObject | undefined =
    kind === "ClusterRole"
      ? store.peek("clusterroles", undefined, name)
      : store.peek("roles", namespace, name);
  return ((role?.rules as PolicyRule[] | undefined) ?? []).slice();
}

/** RBAC: cluster bindings grant everywhere, role bindings grant inside their namespace. */
export function authorize(store: Store, user: UserInfo, req: AuthzRequest): boolean {
  if (user.admin) return true;
  for (const b of store.all("clusterrolebindings")) {
    const subjects = (b.subjects as Subject[] | undefined) ?? [];
    if (!subjects.some((s) => subjectMatches(s, user))) continue;
    const ref = b.roleRef as { kind: string; name: string } | undefined;
    if (ref?.kind !== "ClusterRole") continue;
    if (rulesOf(store, "ClusterRole", ref.name).some((r) => ruleAllows(r, req))) return true;
  }
  if (req.namespace) {
    for (const b of store.all("rolebindings", req.namespace)) {
      const subjects = (b.subjects as Subject[] | undefined) ?? [];
      if (!subjects.some((s) => subjectMatches(s, user, req.namespace))) continue;
      const ref = b.roleRef as { kind: string; name: string } | undefined;
      if (!ref) continue;
      if (rulesOf(store, ref.kind, ref.name, req.namespace).some((r) => ruleAllows(r, req))) return true;
    }
  }
  return false;
}

/** `jobs.batch "x" is forbidden: User "…" cannot get resource "jobs" in API group "batch" in the namespace "ns"` */
export function forbiddenMessage(user: UserInfo, req: AuthzRequest): string {
  const qualified = req.group ? `${req.resource}.${req.group}` : req.resource;
  const target = req.name ? `${qualified} "${req.name}"` : qualified;
  const resourceText = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
  const scope = req.namespace ? `in the namespace "${req.namespace}"` : "at the cluster scope";
  return `${target} is forbidden: User "${user.name}" cannot ${req.verb} resource "${resourceText}" in API group "${req.group}" ${scope}`;
}
