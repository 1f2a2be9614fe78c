// Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed commands and other
// client-go programs send: the `k8s\0` magic, a runtime.Unknown envelope naming apiVersion/kind, and the object
// in Kubernetes' protobuf encoding. Decoded to the JSON form the store keeps, for the kinds whose schema is
// written below (field numbers and types of Kubernetes' wire format; JSON names as in the API). Other kinds
// answer 415 like kube-apiserver does for a kind that has no protobuf encoding. Responses are always JSON
// (every client-go Accept header lists application/json).
import { ApiError, badRequest } from "./errors";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Scalar = "string" | "int" | "bool" | "bytes";
/** One field: JSON name, type (a scalar, a message name, or a map), repeated, pointer (zero values kept). */
interface Field {
  name: string;
  type: Scalar | string | { map: Scalar | string };
  repeated?: true;
  pointer?: true;
}
type Message = Record<number, Field>;

const f = (name: string, type: Field["type"], extra: Partial<Field> = {}): Field => ({
  name,
  type,
  ...extra,
});
const list = (name: string, type: Field["type"]): Field => ({ name, type, repeated: true });
const ptr = (name: string, type: Field["type"]): Field => ({ name, type, pointer: true });

// Types with a JSON form of their own.
const TIME = "Time"; // seconds(1)/nanos(2) → RFC 3339
const FIELDS_V1 = "FieldsV1"; // Raw(1) bytes holding JSON

const SCHEMAS: Record<string, Message> = {
  Unknown: {
    1: f("typeMeta", "TypeMeta"),
    2: f("raw", "bytes"),
    3: f("contentEncoding", "string"),
    4: f("contentType", "string"),
  },
  TypeMeta: { 1: f("apiVersion", "string"), 2: f("kind", "string") },
  ObjectMeta: {
    1: f("name", "string"),
    2: f("generateName", "string"),
    3: f("namespace", "string"),
    4: f("selfLink", "string"),
    5: f("uid", "string"),
    6: f("resourceVersion", "string"),
    7: f("generation", "int"),
    8: f("creationTimestamp", TIME),
    9: f("deletionTimestamp", TIME),
    10: ptr("deletionGracePeriodSeconds", "int"),
    11: f("labels", { map: "string" }),
    12: f("annotations", { map: "string" }),
    13: list("ownerReferences", "OwnerReference"),
    14: list("finalizers", "string"),
    17: list("managedFields", "ManagedFieldsEntry"),
  },
  OwnerReference: {
    5: f("apiVersion", "string"),
    1: f("kind", "string"),
    3: f("name", "string"),
    4: f("uid", "string"),
    6: ptr("controller", "bool"),
    7: ptr("blockOwnerDeletion", "bool"),
  },
  ManagedFieldsEntry: {
    1: f("manager", "string"),
    2: f("operation", "string"),
    3: f("apiVersion", "string"),
    4: f("time", TIME),
    6: f("fieldsType", "string"),
    7: f("fieldsV1", FIELDS_V1),
    8: f("subresource", "string"),
  },
  LabelSelector: {
    1: f("matchLabels", { map: "string" }),
    2: list("matchExpressions", "LabelSelectorRequirement"),
  },
  LabelSelectorRequirement: {
    1: f("key", "string"),
    2: f("operator", "string"),
    3: list("values", "string"),
  },
  Namespace: {
    1: f("metadata", "ObjectMeta"),
    2: f("spec", "NamespaceSpec"),
    3: f("status", "NamespaceStatus"),
  },
  NamespaceSpec: { 1: list("finalizers", "string") },
  NamespaceStatus: { 1: f("phase", "string"), 2: list("conditions", "NamespaceCondition") },
  NamespaceCondition: {
    1: f("type", "string"),
    2: f("status", "string"),
    4: f("lastTransitionTime", TIME),
    5: f("reason", "string"),
    6: f("message", "string"),
  },
  ConfigMap: {
    1: f("metadata", "ObjectMeta"),
    4: ptr("immutable", "bool"),
    2: f("data", { map: "string" }),
    3: f("binaryData", { map: "bytes" }),
  },
  Secret: {
    1: f("metadata", "ObjectMeta"),
    5: ptr("immutable", "bool"),
    2: f("data", { map: "bytes" }),
    4: f("stringData", { map: "string" }),
    3: f("type", "string"),
  },
  ServiceAccount: {
    1: f("metadata", "ObjectMeta"),
    2: list("secrets", "ObjectReference"),
    3: list("imagePullSecrets", "LocalObjectReference"),
    4: ptr("automountServiceAccountToken", "bool"),
  },
  ObjectReference: {
    1: f("kind", "string"),
    2: f("namespace", "string"),
    3: f("name", "string"),
    4: f("uid", "string"),
    5: f("apiVersion", "string"),
    6: f("resourceVersion", "string"),
    7: f("fieldPath", "string"),
  },
  LocalObjectReference: { 1: f("name", "string") },
  TokenRequest: {
    1: f("metadata", "ObjectMeta"),
    2: f("spec", "TokenRequestSpec"),
    3: f("status", "TokenRequestStatus"),
  },
  TokenRequestStatus: { 1: f("token", "string"), 2: f("expirationTimestamp", TIME) },
  TokenRequestSpec: {
    1: list("audiences", "string"),
    4: ptr("expirationSeconds", "int"),
    3: f("boundObjectRef", "BoundObjectReference"),
  },
  BoundObjectReference: {
    1: f("kind", "string"),
    2: f("apiVersion", "string"),
    3: f("name", "string"),
    4: f("uid", "string"),
  },
  SelfSubjectAccessReview: {
    1: f("metadata", "ObjectMeta"),
    2: f("spec", "SelfSubjectAccessReviewSpec"),
    3: f("status", "SubjectAccessReviewStatus"),
  },
  SubjectAccessReviewStatus: {
    1: f("allowed", "bool"),
    4: f("denied", "bool"),
    2: f("reason", "string"),
    3: f("evaluationError", "string"),
  },
  SelfSubjectAccessReviewSpec: {
    1: f("resourceAttributes", "ResourceAttributes"),
    2: f("nonResourceAttributes", "NonResourceAttributes"),
  },
  SubjectAccessReview: {
    1: f("metadata", "ObjectMeta"),
    2: f("spec", "SubjectAccessReviewSpec"),
    3: f("status", "SubjectAccessReviewStatus"),
  },
  SubjectAccessReviewSpec: {
    1: f("resourceAttributes", "ResourceAttributes"),
    2: f("nonResourceAttributes", "NonResourceAttributes"),
    3: f("user", "string"),
    4: list("groups", "string"),
    6: f("uid", "string"),
  },
  ResourceAttributes: {
    1: f("namespace", "string"),
    2: f("verb", "string"),
    3: f("group", "string"),
    4: f("version", "string"),
    5: f("resource", "string"),
    6: f("subresource", "string"),
    7: f("name", "string"),
  },
  NonResourceAttributes: { 1: f("path", "string"), 2: f("verb", "string") },
  SelfSubjectReview: { 1: f("metadata", "ObjectMeta"), 2: f("status", "SelfSubjectReviewStatus") },
  SelfSubjectReviewStatus: { 1: f("userInfo", "UserInfo") },
  UserInfo: { 1: f("username", "string"), 2: f("uid", "string"), 3: list("groups", "string") },
  PolicyRule: {
    1: list("verbs", "string"),
    2: list("apiGroups", "string"),
    3: list("resources", "string"),
    4: list("resourceNames", "string"),
    5: list("nonResourceURLs", "string"),
  },
  AggregationRule: { 1: list("clusterRoleSelectors", "LabelSelector") },
  Role: { 1: f("metadata", "ObjectMeta"), 2: list("rules", "PolicyRule") },
  ClusterRole: {
    1: f("metadata", "ObjectMeta"),
    2: list("rules", "PolicyRule"),
    3: f("aggregationRule", "AggregationRule"),
  },
  Subject: {
    1: f("kind", "string"),
    2: f("apiGroup", "string"),
    3: f("name", "string"),
    4: f("namespace", "string"),
  },
  RoleRef: { 1: f("apiGroup", "string"), 2: f("kind", "string"), 3: f("name", "string") },
  RoleBinding: { 1: f("metadata", "ObjectMeta"), 2: list("subjects", "Subject"), 3: f("roleRef", "RoleRef") },
  ClusterRoleBinding: {
    1: f("metadata", "ObjectMeta"),
    2: list("subjects", "Subject"),
    3: f("roleRef", "RoleRef"),
  },
  Preconditions: { 1: ptr("uid", "string"), 2: ptr("resourceVersion", "string") },
  DeleteOptions: {
    1: ptr("gracePeriodSeconds", "int"),
    2: f("preconditions", "Preconditions"),
    3: ptr("orphanDependents", "bool"),
    4: ptr("propagationPolicy", "string"),
    5: list("dryRun", "string"),
    6: ptr("ignoreStoreReadErrorWithClusterBreakingPotential", "bool"),
  },
  Eviction: { 1: f("metadata", "ObjectMeta"), 2: f("deleteOptions", "DeleteOptions") },
  RuntimeClass: {
    1: f("metadata", "ObjectMeta"),
    2: f("handler", "string"),
    3: f("overhead", "Overhead"),
    4: f("scheduling", "Scheduling"),
  },
  Overhead: { 1: f("podFixed", { map: "Quantity" }) },
  Quantity: { 1: f("string", "string") },
  Scheduling: { 1: f("nodeSelector", { map: "string" }), 2: list("tolerations", "Toleration") },
  Toleration: {
    1: f("key", "string"),
    2: f("operator", "string"),
    3: f("value", "string"),
    4: f("effect", "string"),
    5: ptr("tolerationSeconds", "int"),
  },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw badRequest("protobuf: truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw badRequest("protobuf: varint too long");
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw badRequest("protobuf: truncated field");
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function scalarOrMessage(type: Scalar | string, wire: number, r: Reader, path: string): Json {
  switch (type) {
    case "string":
      return r.bytes().toString("utf8");
    case "bytes":
      return r.bytes().toString("base64");
    case "int":
      return Number(BigInt.asIntN(64, r.varint()));
    case "bool":
      return r.varint() !== 0n;
    case TIME: {
      const t = decodeMessage({ 1: f("seconds", "int"), 2: f("nanos", "int") }, r.bytes(), path);
      const seconds = typeof t.seconds === "number" ? t.seconds : 0;
      return seconds === 0 ? null : new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    case FIELDS_V1: {
      const raw = decodeMessage({ 1: f("Raw", "bytes") }, r.bytes(), path).Raw;
      return typeof raw === "string" ? (JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as Json) : {};
    }
    default: {
      if (wire !== 2) throw badRequest(`protobuf: ${path}: expected a message`);
      const schema = SCHEMAS[type];
      if (type === "Quantity") return (decodeMessage(schema, r.bytes(), path).string as string) ?? "0";
      return decodeMessage(schema, r.bytes(), path);
    }
  }
}

function isZero(v: Json): boolean {
  return (
    v === null ||
    v === "" ||
    v === 0 ||
    v === false ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0)
  );
}

function decodeMessage(schema: Message, buf: Buffer, path: string): { [k: string]: Json } {
  const r = new Reader(buf);
  const out: { [k: string]: Json } = {};
  const pointers = new Set<string>();
  while (!r.done()) {
    const key = Number(r.varint());
    const num = key >>> 3;
    const wire = key & 7;
    const field = schema[num];
    if (!field) {
      // A field kube-sim does not know: refuse rather than drop what the client said.
      throw badRequest(`protobuf: ${path}: field number ${num} is not served by kube-sim`);
    }
    const at = `${path}.${field.name}`;
    if (typeof field.type === "object") {
      const entry = new Reader(r.bytes());
      let k = "";
      let v: Json = "";
      while (!entry.done()) {
        const ek = Number(entry.varint());
        if (ek >>> 3 === 1) k = entry.bytes().toString("utf8");
        else v = scalarOrMessage(field.type.map, ek & 7, entry, `${at}[${k}]`);
      }
      const map = (out[field.name] ?? {}) as { [k: string]: Json };
      map[k] = v;
      out[field.name] = map;
      continue;
    }
    const value = scalarOrMessage(field.type, wire, r, at);
    if (field.repeated) ((out[field.name] ??= []) as Json[]).push(value);
    else out[field.name] = value;
    if (field.pointer) pointers.add(field.name);
  }
  // Non-pointer fields are always on the wire: their zero values mean "unset" (JSON omitempty).
  for (const [k, v] of Object.entries(out)) if (!pointers.has(k) && isZero(v)) delete out[k];
  return out;
}

/** Decodes a protobuf request body into the JSON object form, or throws 415/400 as kube-apiserver would. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC))
    throw badRequest("protobuf: missing the k8s magic prefix");
  const unknown = decodeMessage(SCHEMAS.Unknown, body.subarray(4), "Unknown");
  const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const kind = typeMeta.kind ?? "";
  const schema = SCHEMAS[kind];
  if (!schema || kind === "Unknown" || kind === "TypeMeta") throw unsupportedProtobuf(kind);
  const raw = Buffer.from((unknown.raw as string | undefined) ?? "", "base64");
  return { apiVersion: typeMeta.apiVersion, kind, ...decodeMessage(schema, raw, kind) };
}

function unsupportedProtobuf(kind: string): ApiError {
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (kube-sim has no protobuf schema for kind "${kind}")`,
    reason: "UnsupportedMediaType",
    code: 415,
  });
}
