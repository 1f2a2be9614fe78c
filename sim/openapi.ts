// OpenAPI for the kinds kube-sim serves: v3 (the index `/openapi/v3` and one document per group-version) and
// v2 (`/openapi/v2`, one document), with every type inside them described from sim/schemas.ts (field names and
// JSON types; no field descriptions). Enough for what clients read from it: kubectl and Helm check that each
// kind's PATCH operation takes the `fieldValidation` query parameter (then they leave validation to the
// server), client-side validation finds each kind by its group-version-kind, and `kubectl explain` walks
// nested fields (`job.spec.template.spec.containers`).
import { createHash } from "node:crypto";
import { RESOURCES, ResourceInfo } from "./resources";
import { Writer } from "./protobuf";
import { definitionName, Field, jsonFields, SCALARS } from "./schemas";

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

function schemaName(info: ResourceInfo): string {
  return definitionName(info.kind);
}

function gvk(info: ResourceInfo): Rec {
  return { group: info.group, version: info.version, kind: info.kind };
}

/** Where a document keeps its definitions: v3 `#/components/schemas/`, v2 `#/definitions/`. */
type RefPrefix = "#/components/schemas/" | "#/definitions/";

/** Types with a JSON form of their own. */
const SPECIAL_SCHEMAS: Record<string, Rec> = {
  Time: { type: "string", format: "date-time" },
  MicroTime: { type: "string", format: "date-time" },
  Quantity: { type: "string" },
  IntOrString: { type: "string", format: "int-or-string" },
  RawExtension: { type: "object" },
  FieldsV1: { type: "object" },
  ExtraValue: { type: "array", items: { type: "string" } },
};

const SCALAR_SCHEMAS: Record<string, Rec> = {
  string: { type: "string" },
  int: { type: "integer", format: "int64" },
  bool: { type: "boolean" },
  bytes: { type: "string", format: "byte" },
  double: { type: "number", format: "double" },
};

function typeRef(type: string, prefix: RefPrefix): Rec {
  return SCALARS.has(type) ? SCALAR_SCHEMAS[type] : { $ref: `${prefix}${definitionName(type)}` };
}

function fieldSchema(f: Field, prefix: RefPrefix): Rec {
  const one = typeRef(f.type, prefix);
  if (f.map) return { type: "object", additionalProperties: one };
  if (f.repeated) return { type: "array", items: one };
  return one;
}

/** The definition of a type; `info` for a served kind (apiVersion, kind, its group-version-kind). */
function definition(type: string, prefix: RefPrefix, info?: ResourceInfo): Rec {
  const special = SPECIAL_SCHEMAS[type];
  if (special) return special;
  const properties: Rec = {};
  if (info) {
    properties.apiVersion = {
      type: "string",
      description: "APIVersion defines the versioned schema of this representation of an object.",
    };
    properties.kind = {
      type: "string",
      description: "Kind is a string value representing the REST resource this object represents.",
    };
  }
  for (const [name, f] of jsonFields(type)) properties[name] = fieldSchema(f, prefix);
  const out: Rec = { type: "object", properties };
  if (info) {
    out.description = KIND_DESCRIPTIONS[info.kind] ?? info.kind;
    out["x-kubernetes-group-version-kind"] = [gvk(info)];
  }
  return out;
}

/** Every type reachable from `roots`, each once. */
function closure(roots: string[]): string[] {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const t = stack.pop() as string;
    if (seen.has(t) || SCALARS.has(t)) continue;
    seen.add(t);
    if (!SPECIAL_SCHEMAS[t]) for (const f of jsonFields(t).values()) stack.push(f.type);
  }
  return [...seen];
}

function definitions(infos: ResourceInfo[], prefix: RefPrefix): Rec {
  const byKind = new Map(infos.map((i) => [i.kind, i]));
  const out: Rec = {};
  for (const type of closure(infos.map((i) => i.kind)))
    out[definitionName(type)] = definition(type, prefix, byKind.get(type));
  return out;
}

type Version = "v2" | "v3";

function parameters(names: string[], version: Version): Rec[] {
  return names.map((name) => {
    const type = name === "force" ? "boolean" : "string";
    const base = { name, in: "query", description: name, uniqueItems: true };
    return version === "v3" ? { ...base, schema: { type } } : { ...base, type };
  });
}

function operation(info: ResourceInfo, action: string, params: string[], version: Version): Rec {
  const schema = {
    $ref: `${version === "v3" ? "#/components/schemas/" : "#/definitions/"}${schemaName(info)}`,
  };
  return {
    operationId: `${action}${info.kind}`,
    parameters: parameters(params, version),
    responses: {
      "200":
        version === "v3"
          ? { description: "OK", content: { "application/json": { schema } } }
          : { description: "OK", schema },
    },
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": gvk(info),
  };
}

function pathsOf(info: ResourceInfo, version: Version): Rec {
  const prefix = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  const collection = info.namespaced
    ? `${prefix}/namespaces/{namespace}/${info.name}`
    : `${prefix}/${info.name}`;
  const op = (action: string, params: string[]) => operation(info, action, params, version);
  return {
    [collection]: {
      get: op("list", []),
      post: op("post", WRITE_PARAMETERS),
      delete: op("deletecollection", ["dryRun"]),
    },
    [`${collection}/{name}`]: {
      get: op("get", []),
      put: op("put", WRITE_PARAMETERS),
      patch: op("patch", PATCH_PARAMETERS),
      delete: op("delete", ["dryRun"]),
    },
  };
}

const INFO = { title: "Kubernetes (kube-sim)", version: "v1.35.0" };

function pathsFor(infos: ResourceInfo[], version: Version): Rec {
  return Object.assign({}, ...infos.map((info) => pathsOf(info, version))) as Rec;
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
    docs.set(
      key,
      JSON.stringify({
        openapi: "3.0.0",
        info: INFO,
        paths: pathsFor(infos, "v3"),
        components: { schemas: definitions(infos, "#/components/schemas/") },
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

let cachedV2: string | undefined;

/** The body of `/openapi/v2` (JSON): every served kind in one Swagger 2.0 document. */
export function openApiV2(): string {
  const infos = Object.values(RESOURCES);
  cachedV2 ??= JSON.stringify({
    swagger: "2.0",
    info: INFO,
    paths: pathsFor(infos, "v2"),
    definitions: definitions(infos, "#/definitions/"),
  });
  return cachedV2;
}

// -------------------------------------------------------------------------------------------------
// `/openapi/v2` in protobuf: client-go's OpenAPISchema() (kubectl's client-side validation, `explain
// --output plaintext-openapiv2`, Helm) asks for `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
// and reads nothing else. Message and field numbers are those of the gnostic openapi_v2 Document; the parts
// written are the ones openApiV2() produces. Vendor extensions carry their value as YAML (JSON is YAML).

export const OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

function message(fill: (w: Writer) => void): Buffer {
  const w = new Writer();
  fill(w);
  return w.done();
}

function named(w: Writer, num: number, name: string, value: Buffer): void {
  w.bytes(
    num,
    message((e) => {
      e.string(1, name);
      e.bytes(2, value);
    }),
  );
}

function vendorExtensions(w: Writer, num: number, node: Rec): void {
  for (const [k, v] of Object.entries(node))
    if (k.startsWith("x-"))
      named(
        w,
        num,
        k,
        message((a) => a.string(2, JSON.stringify(v))),
      );
}

function schemaMessage(s: Rec): Buffer {
  return message((w) => {
    if (typeof s.$ref === "string") w.string(1, s.$ref);
    if (typeof s.format === "string") w.string(2, s.format);
    if (typeof s.description === "string") w.string(4, s.description);
    if (s.additionalProperties)
      w.bytes(
        21,
        message((a) => a.bytes(1, schemaMessage(s.additionalProperties as Rec))),
      );
    if (typeof s.type === "string")
      w.bytes(
        22,
        message((t) => t.string(1, s.type as string)),
      );
    if (s.items)
      w.bytes(
        23,
        message((i) => i.bytes(1, schemaMessage(s.items as Rec))),
      );
    if (s.properties)
      w.bytes(
        25,
        message((p) => {
          for (const [k, v] of Object.entries(s.properties as Rec)) named(p, 1, k, schemaMessage(v as Rec));
        }),
      );
    vendorExtensions(w, 31, s);
  });
}

function operationMessage(op: Rec): Buffer {
  return message((w) => {
    w.string(5, op.operationId as string);
    for (const p of op.parameters as Rec[]) {
      const query = message((q) => {
        q.string(2, p.in as string);
        q.string(3, p.description as string);
        q.string(4, p.name as string);
        q.string(6, p.type as string);
        if (p.uniqueItems) q.bool(20, true);
      });
      // ParametersItem.parameter → Parameter.non_body_parameter → NonBodyParameter.query_parameter_sub_schema
      w.bytes(
        8,
        message((i) =>
          i.bytes(
            1,
            message((pa) =>
              pa.bytes(
                2,
                message((n) => n.bytes(3, query)),
              ),
            ),
          ),
        ),
      );
    }
    w.bytes(
      9,
      message((rs) => {
        for (const [code, r] of Object.entries(op.responses as Rec)) {
          const response = message((x) => {
            x.string(1, (r as Rec).description as string);
            x.bytes(
              2,
              message((si) => si.bytes(1, schemaMessage((r as Rec).schema as Rec))),
            );
          });
          named(
            rs,
            1,
            code,
            message((rv) => rv.bytes(1, response)),
          );
        }
      }),
    );
    vendorExtensions(w, 13, op);
  });
}

const PATH_ITEM_FIELDS: Record<string, number> = { get: 2, put: 3, post: 4, delete: 5, patch: 8 };

let cachedV2Protobuf: Buffer | undefined;

/** The `/openapi/v2` document in gnostic's protobuf form. */
export function openApiV2Protobuf(): Buffer {
  if (cachedV2Protobuf) return cachedV2Protobuf;
  const doc = JSON.parse(openApiV2()) as { swagger: string; info: Rec; paths: Rec; definitions: Rec };
  cachedV2Protobuf = message((w) => {
    w.string(1, doc.swagger);
    w.bytes(
      2,
      message((i) => {
        i.string(1, doc.info.title as string);
        i.string(2, doc.info.version as string);
      }),
    );
    w.bytes(
      8,
      message((ps) => {
        for (const [path, item] of Object.entries(doc.paths)) {
          const pathItem = message((pi) => {
            for (const [verb, op] of Object.entries(item as Rec))
              pi.bytes(PATH_ITEM_FIELDS[verb], operationMessage(op as Rec));
          });
          named(ps, 2, path, pathItem);
        }
      }),
    );
    w.bytes(
      9,
      message((ds) => {
        for (const [name, def] of Object.entries(doc.definitions))
          named(ds, 1, name, schemaMessage(def as Rec));
      }),
    );
  });
  return cachedV2Protobuf;
}
