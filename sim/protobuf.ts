// Protobuf bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed commands, Helm and other
// client-go programs send and ask for: the `k8s\0` magic, a runtime.Unknown envelope naming apiVersion/kind,
// and the object in Kubernetes' protobuf encoding, for every kind described in sim/schemas.ts (all served
// kinds, their lists, DeleteOptions, the reviews, Status). A body of another kind answers 415 like
// kube-apiserver does for a kind without a protobuf encoding.
import { ApiError, badRequest } from "./errors";
import { Field, jsonFields, SCALARS, SCHEMAS, schemaOf } from "./schemas";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

// -------------------------------------------------------------------------------------------------
// Decoding

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
  fixed(n: 4 | 8): Buffer {
    if (this.pos + n > this.buf.length) throw badRequest("protobuf: truncated field");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function timeText(seconds: number, nanos: number, micro: boolean): Json {
  if (seconds === 0 && nanos === 0) return null;
  const iso = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "");
  return micro ? `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z` : `${iso}Z`;
}

/** A message with a JSON form of its own, decoded to that form. */
function special(type: string, m: JsonObject): Json | undefined {
  switch (type) {
    case "Time":
    case "MicroTime":
      return timeText(Number(m.seconds ?? 0), Number(m.nanos ?? 0), type === "MicroTime");
    case "Quantity":
      return m.string ?? "0";
    case "IntOrString":
      return m.type === 1 ? (m.strVal ?? "") : (m.intVal ?? 0);
    case "RawExtension":
    case "FieldsV1":
      return typeof m.raw === "string"
        ? (JSON.parse(Buffer.from(m.raw, "base64").toString("utf8")) as Json)
        : {};
    case "ExtraValue":
      return m.items ?? [];
    default:
      return undefined;
  }
}

function scalar(type: string, wire: number, r: Reader): Json {
  switch (type) {
    case "string":
      return r.bytes().toString("utf8");
    case "bytes":
      return r.bytes().toString("base64");
    case "int":
      return Number(BigInt.asIntN(64, r.varint()));
    case "bool":
      return r.varint() !== 0n;
    default: // double
      return wire === 1 ? r.fixed(8).readDoubleLE(0) : r.fixed(4).readFloatLE(0);
  }
}

function value(field: Field, wire: number, r: Reader, path: string): Json | Json[] {
  if (SCALARS.has(field.type)) {
    // Repeated numbers may come packed.
    if (wire === 2 && field.type !== "string" && field.type !== "bytes") {
      const packed = new Reader(r.bytes());
      const out: Json[] = [];
      while (!packed.done()) out.push(scalar(field.type, field.type === "double" ? 1 : 0, packed));
      return out;
    }
    return scalar(field.type, wire, r);
  }
  if (wire !== 2) throw badRequest(`protobuf: ${path}: expected a message`);
  const m = decodeMessage(field.type, r.bytes(), path);
  return special(field.type, m) ?? m;
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

const byNumberCache = new Map<string, ReadonlyMap<number, Field>>();

function fieldsByNumber(type: string): ReadonlyMap<number, Field> {
  let out = byNumberCache.get(type);
  if (!out) byNumberCache.set(type, (out = new Map(schemaOf(type).map((f) => [f.num, f]))));
  return out;
}

function decodeMessage(type: string, buf: Buffer, path: string): JsonObject {
  const byNumber = fieldsByNumber(type);
  const r = new Reader(buf);
  const out: JsonObject = {};
  const pointers = new Set<string>();
  while (!r.done()) {
    const key = Number(r.varint());
    const num = key >>> 3;
    const wire = key & 7;
    const field = byNumber.get(num);
    if (!field) {
      // A field kube-sim does not know: refuse rather than drop what the client said.
      throw badRequest(`protobuf: ${path}: field number ${num} is not served by kube-sim`);
    }
    const at = `${path}.${field.name}`;
    if (field.inline) {
      Object.assign(out, decodeMessage(field.type, r.bytes(), at));
      continue;
    }
    if (field.map) {
      const entry = new Reader(r.bytes());
      let k = "";
      let v: Json = "";
      while (!entry.done()) {
        const ek = Number(entry.varint());
        if (ek >>> 3 === 1) k = entry.bytes().toString("utf8");
        else v = value({ ...field, map: false }, ek & 7, entry, `${at}[${k}]`);
      }
      const map = (out[field.name] ?? {}) as JsonObject;
      map[k] = v;
      out[field.name] = map;
      continue;
    }
    const v = value(field, wire, r, at);
    if (field.repeated) {
      const list = (out[field.name] ??= []) as Json[];
      if (Array.isArray(v) && SCALARS.has(field.type)) list.push(...v);
      else list.push(v);
    } else out[field.name] = v;
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
  const unknown = decodeMessage("Unknown", body.subarray(4), "Unknown");
  const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const kind = typeMeta.kind ?? "";
  if (!hasProtobuf(kind)) throw unsupportedProtobuf(kind);
  const raw = Buffer.from((unknown.raw as string | undefined) ?? "", "base64");
  return { apiVersion: typeMeta.apiVersion, kind, ...decodeMessage(kind, raw, kind) };
}

const NOT_TOP_LEVEL = new Set(["Unknown", "TypeMeta", "Time", "MicroTime", "Quantity", "IntOrString"]);

function hasProtobuf(kind: string): boolean {
  return SCHEMAS.has(kind) && !NOT_TOP_LEVEL.has(kind);
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

// -------------------------------------------------------------------------------------------------
// Encoding

/** A JSON value the schema cannot carry (a field it does not have, a wrong type): answer in JSON instead. */
class Unrepresentable extends Error {
  override name = "Unrepresentable";
}

/** A protobuf writer for messages without a schema here (the OpenAPI v2 document, sim/openapi.ts). */
export class Writer {
  private readonly parts: Buffer[] = [];
  varint(v: bigint | number): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const bytes: number[] = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n !== 0n) b |= 0x80;
      bytes.push(b);
    } while (n !== 0n);
    this.parts.push(Buffer.from(bytes));
  }
  key(num: number, wire: number): void {
    this.varint((num << 3) | wire);
  }
  bytes(num: number, b: Buffer): void {
    this.key(num, 2);
    this.varint(b.length);
    this.parts.push(b);
  }
  raw(b: Buffer): void {
    this.parts.push(b);
  }
  string(num: number, s: string): void {
    this.bytes(num, Buffer.from(s, "utf8"));
  }
  bool(num: number, b: boolean): void {
    this.key(num, 0);
    this.varint(b ? 1 : 0);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function timeMessage(text: Json, micro: boolean): JsonObject {
  if (typeof text !== "string") throw new Unrepresentable("time");
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Unrepresentable("time");
  const fraction = /\.(\d+)Z$/.exec(text)?.[1] ?? "";
  const nanos = micro ? Number(fraction.padEnd(9, "0").slice(0, 9)) : 0;
  return { seconds: Math.floor(ms / 1000), nanos };
}

/** The message form of a type with a JSON form of its own. */
function specialMessage(type: string, v: Json): JsonObject | undefined {
  switch (type) {
    case "Time":
    case "MicroTime":
      return timeMessage(v, type === "MicroTime");
    case "Quantity":
      return { string: String(v) };
    case "IntOrString":
      return typeof v === "number" ? { type: 0, intVal: v } : { type: 1, strVal: String(v) };
    case "RawExtension":
    case "FieldsV1":
      return { raw: Buffer.from(JSON.stringify(v)).toString("base64") };
    case "ExtraValue":
      return { items: v };
    default:
      return undefined;
  }
}

function writeScalar(w: Writer, num: number, type: string, v: Json): void {
  switch (type) {
    case "string":
      if (typeof v !== "string") throw new Unrepresentable(type);
      return w.bytes(num, Buffer.from(v, "utf8"));
    case "bytes":
      if (typeof v !== "string") throw new Unrepresentable(type);
      return w.bytes(num, Buffer.from(v, "base64"));
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) throw new Unrepresentable(type);
      w.key(num, 0);
      return w.varint(v);
    case "bool":
      if (typeof v !== "boolean") throw new Unrepresentable(type);
      w.key(num, 0);
      return w.varint(v ? 1 : 0);
    default: {
      if (typeof v !== "number") throw new Unrepresentable(type);
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v, 0);
      w.key(num, 1);
      return w.raw(b);
    }
  }
}

function writeValue(w: Writer, num: number, type: string, v: Json): void {
  if (SCALARS.has(type)) return writeScalar(w, num, type, v);
  w.bytes(num, encodeMessage(type, specialMessage(type, v) ?? v));
}

function encodeMessage(type: string, json: Json): Buffer {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Unrepresentable(type);
  const obj = json;
  const used = new Set<string>();
  const w = new Writer();
  for (const f of schemaOf(type)) {
    if (f.inline) {
      const part: JsonObject = {};
      for (const k of jsonFields(f.type).keys()) {
        if (obj[k] === undefined) continue;
        part[k] = obj[k];
        used.add(k);
      }
      if (Object.keys(part).length > 0) w.bytes(f.num, encodeMessage(f.type, part));
      continue;
    }
    const v = obj[f.name];
    used.add(f.name);
    if (v === undefined || v === null) continue;
    if (f.map) {
      if (typeof v !== "object" || Array.isArray(v)) throw new Unrepresentable(f.name);
      for (const [k, mv] of Object.entries(v)) {
        const entry = new Writer();
        entry.bytes(1, Buffer.from(k, "utf8"));
        if (mv !== null) writeValue(entry, 2, f.type, mv);
        w.bytes(f.num, entry.done());
      }
    } else if (f.repeated) {
      if (!Array.isArray(v)) throw new Unrepresentable(f.name);
      for (const item of v) writeValue(w, f.num, f.type, item);
    } else writeValue(w, f.num, f.type, v);
  }
  for (const k of Object.keys(obj)) if (!used.has(k) && obj[k] !== undefined) throw new Unrepresentable(k);
  return w.done();
}

/**
 * The protobuf body of an object (a served kind, `<Kind>List` or Status), or undefined when it has a field
 * the schema does not carry (the caller answers in JSON then, or 406 when the client takes only protobuf).
 */
export function encodeProtobufObject(obj: Record<string, unknown>): Buffer | undefined {
  const { apiVersion, kind, ...rest } = obj as JsonObject;
  if (typeof kind !== "string") return undefined;
  const listOf = kind.endsWith("List") ? kind.slice(0, -4) : undefined;
  try {
    let raw: Buffer;
    if (listOf && hasProtobuf(listOf)) {
      const w = new Writer();
      w.bytes(1, encodeMessage("ListMeta", rest.metadata ?? {}));
      for (const item of (rest.items as Json[] | undefined) ?? []) {
        const { apiVersion: _a, kind: _k, ...fields } = item as JsonObject;
        w.bytes(2, encodeMessage(listOf, fields));
      }
      raw = w.done();
    } else if (hasProtobuf(kind)) raw = encodeMessage(kind, rest);
    else return undefined;
    const envelope = new Writer();
    envelope.bytes(1, encodeMessage("TypeMeta", { apiVersion: apiVersion ?? "", kind }));
    envelope.bytes(2, raw);
    return Buffer.concat([MAGIC, envelope.done()]);
  } catch (e) {
    if (e instanceof Unrepresentable) return undefined;
    throw e;
  }
}
