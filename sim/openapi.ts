// OpenAPI v3 for the kinds kube-sim serves: the index `/openapi/v3` and one document per group-version.
// Enough for what clients read from it: kubectl and Helm check that each kind's PATCH operation takes the
// `fieldValidation` query parameter (then they leave validation to the server), and `kubectl explain` prints a
// kind's description and its top-level fields. Nested schemas (a Pod's spec fields, ...) are not described.
import { createHash } from "node:crypto";
import { RESOURCES, ResourceInfo } from "./resources";

type Rec = Record<string, unknown>;

/** Query parameters every write takes (what the server honours; see sim/README.md). */
const WRITE_PARAMETERS = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
const PATCH_PARAMETERS = [...WRITE_PARAMETERS, "force"];

const KIND_DESCRIPTIONS: Partial<Record<string, string>> = {
  Namespace: "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
  Node: "Node is a worker node in Kubernetes. Each node will have a unique identifier in the cache (i.e. in etcd).",
  ConfigMap: "ConfigMap holds configuration data for pods to consume.",
  Secret:
    "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.",
  ServiceAccount:
    "ServiceAccount binds together: * a name, understood by users, and perhaps by peripheral systems, for an identity * a principal that can be authenticated and authorized * a set of secrets",
  Pod: "Pod is a collection of containers that can run on a host. This resource is created by clients and scheduled onto hosts.",
  Event: "Event is a report of an event somewhere in the cluster.",
  Job: "Job represents the configuration of a single job.",
  DaemonSet: "DaemonSet represents the configuration of a daemon set.",
  Role: "Role is a namespaced, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding.",
  ClusterRole:
    "ClusterRole is a cluster level, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding or ClusterRoleBinding.",
  RoleBinding: "RoleBinding references a role, but does not contain it.",
  ClusterRoleBinding: "ClusterRoleBinding references a ClusterRole, but not contain it.",
  Service:
    "Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.",
  RuntimeClass: "RuntimeClass defines a class of container runtime supported in the cluster.",
  ControllerRevision: "ControllerRevision implements an immutable snapshot of state data.",
  Lease: "Lease defines a lease concept.",
};

/** Top-level fields of each kind besides apiVersion/kind/metadata, with the type kubectl explain prints. */
const TOP_LEVEL: Partial<Record<string, Record<string, string>>> = {
  ConfigMap: { data: "object", binaryData: "object", immutable: "boolean" },
  Secret: { data: "object", stringData: "object", type: "string", immutable: "boolean" },
  ServiceAccount: { secrets: "array", imagePullSecrets: "array", automountServiceAccountToken: "boolean" },
  Event: { involvedObject: "object", reason: "string", message: "string", type: "string", count: "integer" },
  Role: { rules: "array" },
  ClusterRole: { rules: "array", aggregationRule: "object" },
  RoleBinding: { subjects: "array", roleRef: "object" },
  ClusterRoleBinding: { subjects: "array", roleRef: "object" },
  RuntimeClass: { handler: "string", overhead: "object", scheduling: "object" },
  ControllerRevision: { data: "object", revision: "integer" },
};

function schemaName(info: ResourceInfo): string {
  const group = info.group === "" ? "core" : info.group.replace(/\.k8s\.io$/, "");
  return `io.k8s.api.${group}.${info.version}.${info.kind}`;
}

function gvk(info: ResourceInfo): Rec {
  return { group: info.group, version: info.version, kind: info.kind };
}

function kindSchema(info: ResourceInfo): Rec {
  const fields = TOP_LEVEL[info.kind] ?? { spec: "object", ...(info.hasStatus ? { status: "object" } : {}) };
  const properties: Rec = {
    apiVersion: {
      type: "string",
      description: "APIVersion defines the versioned schema of this representation of an object.",
    },
    kind: {
      type: "string",
      description: "Kind is a string value representing the REST resource this object represents.",
    },
    metadata: {
      allOf: [{ $ref: "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" }],
      default: {},
      description: "Standard object's metadata.",
    },
  };
  for (const [name, type] of Object.entries(fields))
    properties[name] = { type, description: `${info.kind} ${name}.` };
  return {
    type: "object",
    description: KIND_DESCRIPTIONS[info.kind] ?? info.kind,
    properties,
    "x-kubernetes-group-version-kind": [gvk(info)],
  };
}

const OBJECT_META: Rec = {
  type: "object",
  description:
    "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
  properties: Object.fromEntries(
    [
      ["name", "string"],
      ["generateName", "string"],
      ["namespace", "string"],
      ["uid", "string"],
      ["resourceVersion", "string"],
      ["generation", "integer"],
      ["creationTimestamp", "string"],
      ["deletionTimestamp", "string"],
      ["labels", "object"],
      ["annotations", "object"],
      ["ownerReferences", "array"],
      ["finalizers", "array"],
      ["managedFields", "array"],
    ].map(([name, type]) => [name, { type, description: `metadata ${name}.` }]),
  ),
};

function parameters(names: string[]): Rec[] {
  return names.map((name) => ({
    name,
    in: "query",
    description: name,
    schema: { type: name === "force" ? "boolean" : "string", uniqueItems: true },
  }));
}

function operation(info: ResourceInfo, action: string, params: string[]): Rec {
  const ref = { $ref: `#/components/schemas/${schemaName(info)}` };
  return {
    operationId: `${action}${info.kind}`,
    parameters: parameters(params),
    responses: { "200": { description: "OK", content: { "application/json": { schema: ref } } } },
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": gvk(info),
  };
}

function pathsOf(info: ResourceInfo): Rec {
  const prefix = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  const collection = info.namespaced
    ? `${prefix}/namespaces/{namespace}/${info.name}`
    : `${prefix}/${info.name}`;
  return {
    [collection]: {
      get: operation(info, "list", []),
      post: operation(info, "post", WRITE_PARAMETERS),
      delete: operation(info, "deletecollection", ["dryRun"]),
    },
    [`${collection}/{name}`]: {
      get: operation(info, "get", []),
      put: operation(info, "put", WRITE_PARAMETERS),
      patch: operation(info, "patch", PATCH_PARAMETERS),
      delete: operation(info, "delete", ["dryRun"]),
    },
  };
}

/** `api/v1`, `apis/batch/v1`, ... → the OpenAPI v3 document of that group-version. */
function documents(): Map<string, string> {
  const byGv = new Map<string, ResourceInfo[]>();
  for (const info of Object.values(RESOURCES)) {
    const key = info.group ? `apis/${info.group}/${info.version}` : `api/${info.version}`;
    byGv.set(key, [...(byGv.get(key) ?? []), info]);
  }
  const docs = new Map<string, string>();
  for (const [key, infos] of byGv) {
    const schemas: Rec = { "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": OBJECT_META };
    let paths: Rec = {};
    for (const info of infos) {
      schemas[schemaName(info)] = kindSchema(info);
      paths = { ...paths, ...pathsOf(info) };
    }
    docs.set(
      key,
      JSON.stringify({
        openapi: "3.0.0",
        info: { title: "Kubernetes (kube-sim)", version: "v1.35.0" },
        paths,
        components: { schemas },
      }),
    );
  }
  return docs;
}

let cached: { index: string; docs: Map<string, string> } | undefined;

/** The body for `/openapi/v3` or `/openapi/v3/<gv path>`, or undefined when there is no such document. */
export function openApiV3(pathname: string): string | undefined {
  if (!cached) {
    const docs = documents();
    const paths: Rec = {};
    for (const [key, body] of docs) {
      const hash = createHash("sha512").update(body).digest("hex").toUpperCase().slice(0, 128);
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
    }
    cached = { index: JSON.stringify({ paths }), docs };
  }
  const rest = pathname.replace(/^\/openapi\/v3\/?/, "").replace(/\/$/, "");
  return rest === "" ? cached.index : cached.docs.get(rest);
}
