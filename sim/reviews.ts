// Create-only kinds that are answered, never stored: access reviews (`kubectl auth can-i`), SelfSubjectReview
// (`kubectl auth whoami`). They are evaluated with the same RBAC rules as every request (sim/authz.ts).
import { authorize, UserInfo } from "./authz";
import { badRequest } from "./errors";
import type { Store } from "./store";

export interface VirtualResource {
  group: string;
  version: string;
  name: string;
  kind: string;
}

export const VIRTUAL_RESOURCES: readonly VirtualResource[] = [
  {
    group: "authorization.k8s.io",
    version: "v1",
    name: "selfsubjectaccessreviews",
    kind: "SelfSubjectAccessReview",
  },
  { group: "authorization.k8s.io", version: "v1", name: "subjectaccessreviews", kind: "SubjectAccessReview" },
  { group: "authentication.k8s.io", version: "v1", name: "selfsubjectreviews", kind: "SelfSubjectReview" },
];

export function findVirtual(pathname: string): VirtualResource | undefined {
  const segs = pathname.split("/").filter(Boolean);
  if (segs.length !== 4 || segs[0] !== "apis") return undefined;
  return VIRTUAL_RESOURCES.find((v) => v.group === segs[1] && v.version === segs[2] && v.name === segs[3]);
}

type Rec = Record<string, unknown>;

interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

function userFromSpec(spec: Rec, lookup: (name: string) => UserInfo | undefined): UserInfo {
  const name = String(spec.user ?? "");
  const known = lookup(name);
  if (known) return known;
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
  return {
    name,
    groups: (spec.groups as string[] | undefined) ?? [],
    admin: ((spec.groups as string[] | undefined) ?? []).includes("system:masters"),
    serviceAccount: sa ? { namespace: sa[1], name: sa[2] } : undefined,
  };
}

/** The answer to a POST of a virtual kind, as the API server returns it (201 with `status` filled in). */
export function answerReview(
  resource: VirtualResource,
  body: Rec,
  requester: UserInfo,
  deps: { store: Store; authz: boolean; userNamed(name: string): UserInfo | undefined },
): Rec {
  const base = { kind: resource.kind, apiVersion: `${resource.group}/${resource.version}`, metadata: {} };
  if (resource.name === "selfsubjectreviews") {
    return {
      ...base,
      status: { userInfo: { username: requester.name, groups: requester.groups } },
    };
  }
  const spec = (body.spec ?? {}) as Rec;
  const user = resource.name === "subjectaccessreviews" ? userFromSpec(spec, deps.userNamed) : requester;
  const attrs = spec.resourceAttributes as ResourceAttributes | undefined;
  let allowed: boolean;
  if (attrs) {
    if (!attrs.verb) throw badRequest("spec.resourceAttributes.verb: Required value");
    allowed =
      !deps.authz ||
      user.admin ||
      authorize(deps.store, user, {
        verb: attrs.verb,
        group: attrs.group ?? "",
        resource: attrs.resource ?? "",
        subresource: attrs.subresource || undefined,
        namespace: attrs.namespace || undefined,
        name: attrs.name || undefined,
      });
  } else if (spec.nonResourceAttributes) {
    // Non-resource URLs (/healthz, /version, ...) are open to every authenticated user here.
    allowed = true;
  } else {
    throw badRequest(
      "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be set",
    );
  }
  return {
    ...base,
    metadata: { creationTimestamp: null },
    spec,
    status: allowed ? { allowed: true, reason: deps.authz ? "allowed by RBAC" : "" } : { allowed: false },
  };
}
