// The HTTP front of kube-sim: Kubernetes REST paths, bearer-token authentication, RBAC, fault
// injection, list/watch streaming, Status errors, and the audit/introspection endpoints under /_sim/.
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { AuditLog } from "./audit";
import { authorize, forbiddenMessage, UserInfo } from "./authz";
import {
  ApiError,
  badRequest,
  expired,
  forbidden,
  internalError,
  methodNotAllowed,
  notFound,
  serviceUnavailable,
  StatusObject,
  timeoutError,
  tooManyRequests,
  unauthorized,
  unsupportedMediaType,
} from "./errors";
import type { FaultInjector } from "./faults";
import type { LatencyProbe } from "./latency";
import { apiVersionOf, findResource, RESOURCES, ResourceInfo } from "./resources";
import type { DeleteOptions, PatchType, Store, WriteContext } from "./store";
import { applyConfiguration } from "./apply";
import { parse as parseYaml } from "yaml";
import { IncludeObject, partialObjectMetadata, toTable, wantsMetadataOnly, wantsTable } from "./table";
import { answerReview, findVirtual, VIRTUAL_RESOURCES } from "./reviews";
import { decodeProtobufObject, encodeProtobufObject, PROTOBUF } from "./protobuf";
import { unknownFields } from "./schemas";
import { OPENAPI_V2_PROTOBUF, openApiV2, openApiV2Protobuf, openApiV3 } from "./openapi";
import type { KubeObject, PropagationPolicy, Verb } from "./types";

export interface ServerDeps {
  store: Store;
  audit: AuditLog;
  /** Real-time stamps of Job ends shown and Job creates arrived (off unless enabled). */
  latency: LatencyProbe;
  faults: FaultInjector;
  authenticate(token: string | undefined): UserInfo | undefined;
  authz: boolean;
  now(): number;
  bookmarkIntervalMs: number;
  /** A known user by name (SubjectAccessReview of a ServiceAccount or the admin). */
  userNamed(name: string): UserInfo | undefined;
  /** A bearer token for a ServiceAccount (TokenRequest). */
  tokenFor(namespace: string, serviceAccount: string): string;
  /** Serving certificate and key (PEM); undefined: plain http (SimulatorOptions.plainHttp). */
  tls: { cert: string; key: string } | undefined;
  /** Pod logs (stdout+stderr of really executed pods). */
  podLog(namespace: string, name: string): string | undefined;
  /** Extra GET handlers under /_sim/ (path without the prefix) returning JSON. */
  simEndpoints: Record<string, (query: URLSearchParams) => unknown>;
}

interface Route {
  info: ResourceInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const objectJson = new WeakMap<object, string>();

/** JSON of a stored object, computed once per stored version (stored objects are never mutated). */
function jsonOf(o: KubeObject): string {
  let s = objectJson.get(o);
  if (s === undefined) {
    s = JSON.stringify(o);
    objectJson.set(o, s);
  }
  return s;
}

function parseRoute(pathname: string): Route | "discovery" | undefined {
  const segs = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === "api") {
    if (segs.length <= 2) return "discovery";
    group = "";
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === "apis") {
    if (segs.length <= 3) return "discovery";
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  if (
    rest[0] === "namespaces" &&
    rest.length >= 3 &&
    !(rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize"))
  ) {
    const info = findResource(group, version, rest[2]);
    if (!info || !info.namespaced || rest.length > 5) return undefined;
    return { info, namespace: rest[1], name: rest[3], subresource: rest[4] };
  }
  const info = findResource(group, version, rest[0]);
  if (!info || rest.length > 3) return undefined;
  return { info, name: rest[1], subresource: rest[2] };
}

function truthy(v: string | null): boolean {
  return v !== null && v !== "0" && v !== "false";
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
}

/** The request body as an object: JSON, or protobuf for the kinds sim/protobuf.ts knows; undefined if empty. */
async function readObject(req: http.IncomingMessage): Promise<unknown> {
  const bytes = await readBody(req);
  if (bytes.length === 0) return undefined;
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type === PROTOBUF) return decodeProtobufObject(bytes);
  return parseJson(bytes.toString("utf8"));
}

function sendJson(
  res: http.ServerResponse,
  code: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(body, "utf8");
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": bytes.length, ...headers });
  res.end(bytes);
}

/** The media types an Accept header takes, in its order of preference (none given: JSON). */
function acceptedTypes(accept: string | undefined): {
  protobufFirst: boolean;
  json: boolean;
  protobuf: boolean;
} {
  const types = (accept ?? "")
    .split(",")
    .map((part) => part.split(";")[0].trim().toLowerCase())
    .filter(Boolean);
  if (types.length === 0) return { protobufFirst: false, json: true, protobuf: false };
  const json = types.findIndex((t) => t === "application/json" || t === "application/*" || t === "*/*");
  const protobuf = types.indexOf(PROTOBUF);
  return {
    protobufFirst: protobuf >= 0 && (json < 0 || protobuf < json),
    json: json >= 0,
    protobuf: protobuf >= 0,
  };
}

/**
 * An API object in the response's content type: protobuf when the client prefers it and the object has a
 * protobuf form (sim/protobuf.ts), else JSON; 406 NotAcceptable when the client takes neither.
 */
function sendObject(req: http.IncomingMessage, res: http.ServerResponse, code: number, json: string): void {
  const accepted = acceptedTypes(req.headers.accept);
  if (accepted.protobufFirst || !accepted.json) {
    const bytes = accepted.protobuf
      ? encodeProtobufObject(JSON.parse(json) as Record<string, unknown>)
      : undefined;
    if (bytes) {
      res.writeHead(code, { "Content-Type": PROTOBUF, "Content-Length": bytes.length });
      res.end(bytes);
      return;
    }
    if (!accepted.json) throw notAcceptable();
  }
  sendJson(res, code, json);
}

function notAcceptable(): ApiError {
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message:
      "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf",
    reason: "NotAcceptable",
    code: 406,
  });
}

function sendStatus(res: http.ServerResponse, status: StatusObject): void {
  const headers: Record<string, string> = {};
  const retry = status.details?.retryAfterSeconds;
  if (retry && retry > 0) headers["Retry-After"] = String(retry);
  sendJson(res, status.code, JSON.stringify(status), headers);
}

function verbOf(method: string, route: Route, query: URLSearchParams): Verb | undefined {
  switch (method) {
    case "GET":
      if (truthy(query.get("watch")) || (query.has("watch") && query.get("watch") === "")) return "watch";
      return route.name ? "get" : "list";
    case "POST":
      // POST on a named object only creates its action subresources (pods/eviction, serviceaccounts/token).
      return route.name && !route.subresource ? undefined : "create";
    case "PUT":
      return route.name ? "update" : undefined;
    case "PATCH":
      return route.name ? "patch" : undefined;
    case "DELETE":
      return route.name ? "delete" : "deletecollection";
    default:
      return undefined;
  }
}

function patchTypeOf(contentType: string | undefined): PatchType {
  const ct = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (ct === "application/json-patch+json") return "json";
  if (ct === "application/merge-patch+json") return "merge";
  if (ct === "application/strategic-merge-patch+json") return "strategic";
  throw unsupportedMediaType(ct || "(none)");
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ApiServer {
  private server: http.Server;
  private readonly openWatches = new Set<() => void>();

  constructor(private readonly deps: ServerDeps) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendStatus(res, internalError((e as Error).message).status);
        else res.destroy();
      });
    };
    this.server = deps.tls
      ? https.createServer({ keepAlive: true, ...deps.tls }, handler)
      : http.createServer({ keepAlive: true }, handler);
    // Idle connections stay open for a minute, as a real API server keeps them, so a client that reuses its
    // connections (the dispatcher does) is not made to pay a new TLS handshake after each quiet second.
    this.server.keepAliveTimeout = 60_000;
    this.server.on(deps.tls ? "secureConnection" : "connection", () => this.connectionsOpened++);
  }

  /** Connections accepted since start (TLS: completed handshakes): what clients paid in handshakes. */
  connectionsOpened = 0;

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  async close(): Promise<void> {
    for (const stop of [...this.openWatches]) stop();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * `Impersonate-User`/`Impersonate-Group` (kubectl --as/--as-group): honoured for the admin (system:masters may
   * impersonate anyone); other users are refused with 403 (no impersonate rules are evaluated here).
   */
  private impersonated(user: UserInfo | undefined, headers: http.IncomingHttpHeaders): UserInfo | undefined {
    const name = headers["impersonate-user"];
    if (!user || typeof name !== "string" || !user.admin) return user;
    const groupHeader = headers["impersonate-group"];
    const groups = groupHeader === undefined ? [] : Array.isArray(groupHeader) ? groupHeader : [groupHeader];
    const known = this.deps.userNamed(name);
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
    const base: UserInfo = known ?? {
      name,
      groups: sa
        ? ["system:serviceaccounts", `system:serviceaccounts:${sa[1]}`, "system:authenticated"]
        : ["system:authenticated"],
      admin: false,
      serviceAccount: sa ? { namespace: sa[1], name: sa[2] } : undefined,
    };
    const all = [...new Set([...base.groups, ...groups])];
    return { ...base, groups: all, admin: base.admin || all.includes("system:masters") };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const arrived = this.deps.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const query = url.searchParams;
    const method = req.method ?? "GET";
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
    const authenticated = this.deps.authenticate(token);
    const user = this.impersonated(authenticated, req.headers);
    const route = parseRoute(url.pathname);
    let verb: string = method.toLowerCase();
    let code = 200;
    const record = (c: number): void => {
      this.deps.audit.recordRequest({
        time: arrived,
        user: user?.name ?? "anonymous",
        verb,
        resource: route && route !== "discovery" ? route.info.name : url.pathname,
        subresource: route && route !== "discovery" ? route.subresource : undefined,
        namespace: route && route !== "discovery" ? route.namespace : undefined,
        name: route && route !== "discovery" ? route.name : undefined,
        labelSelector: query.get("labelSelector") ?? undefined,
        fieldSelector: query.get("fieldSelector") ?? undefined,
        as: wantsTable(req.headers.accept) ? "Table" : wantsMetadataOnly(req.headers.accept),
        code: c,
        durationMs: performance.now() - started,
      });
    };
    try {
      if (url.pathname.startsWith("/_sim/")) {
        const handler = this.deps.simEndpoints[url.pathname.slice("/_sim/".length)];
        if (!handler) throw pathNotFound();
        sendJson(res, 200, JSON.stringify(handler(query)));
        return;
      }
      if (!user) throw unauthorized();
      const asUser = req.headers["impersonate-user"];
      if (typeof asUser === "string" && !authenticated?.admin) {
        throw forbidden(
          `users "${asUser}" is forbidden: User "${user.name}" cannot impersonate resource "users" in API group "" at the cluster scope`,
        );
      }
      if (url.pathname === "/version") {
        sendJson(
          res,
          200,
          JSON.stringify({
            major: "1",
            minor: "35",
            gitVersion: "v1.35.0-kube-sim",
            platform: "linux/amd64",
          }),
        );
        record(200);
        return;
      }
      if (url.pathname === "/openapi/v2") {
        if ((req.headers.accept ?? "").includes(OPENAPI_V2_PROTOBUF)) {
          const bytes = openApiV2Protobuf();
          // The answer's media type spells the version with a dot: "@" is not valid in a Content-Type.
          res.writeHead(200, {
            "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            "Content-Length": bytes.length,
          });
          res.end(bytes);
        } else sendJson(res, 200, openApiV2());
        record(200);
        return;
      }
      if (url.pathname === "/openapi/v3" || url.pathname.startsWith("/openapi/v3/")) {
        const doc = openApiV3(url.pathname);
        if (!doc) throw pathNotFound();
        sendJson(res, 200, doc);
        record(200);
        return;
      }
      const virtual = findVirtual(url.pathname);
      if (virtual) {
        if (method !== "POST")
          throw methodNotAllowed("the server does not allow this method on the requested resource");
        verb = "create";
        const body = ((await readObject(req)) ?? {}) as Record<string, unknown>;
        if (virtual.name === "subjectaccessreviews" && this.deps.authz && !user.admin) {
          const areq = { verb, group: virtual.group, resource: virtual.name };
          if (!authorize(this.deps.store, user, areq)) throw forbidden(forbiddenMessage(user, areq));
        }
        const answer = answerReview(virtual, body, user, {
          store: this.deps.store,
          authz: this.deps.authz,
          userNamed: this.deps.userNamed,
        });
        sendObject(req, res, 201, JSON.stringify(answer));
        record(201);
        return;
      }
      if (route === "discovery") {
        const doc = discovery(url.pathname);
        if (!doc) throw pathNotFound();
        sendJson(res, 200, JSON.stringify(doc));
        record(200);
        return;
      }
      if (!route) {
        if (!/^\/apis?(\/|$)/.test(url.pathname)) {
          // Outside the API (kube-apiserver's NotFoundHandler): a plain-text 404.
          res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
          res.end("404 page not found\n");
          record(404);
          return;
        }
        throw pathNotFound();
      }
      const v = verbOf(method, route, query);
      if (!v) throw methodNotAllowed(`the server does not allow this method on the requested resource`);
      verb = v;
      const action = ACTION_SUBRESOURCES[route.info.name];
      if (
        route.subresource &&
        !["status", "log"].includes(route.subresource) &&
        !(action === route.subresource && verb === "create")
      ) {
        throw notFound(route.info, `${route.name}/${route.subresource}`);
      }
      if (verb === "create" && route.name && route.subresource !== action)
        throw methodNotAllowed(`the server does not allow this method on the requested resource`);
      if (route.subresource === "log" && (route.info.name !== "pods" || verb !== "get")) {
        throw notFound(route.info, `${route.name}/log`);
      }
      if (route.subresource === "status" && !route.info.hasStatus)
        throw notFound(route.info, `${route.name}/status`);
      if (this.deps.authz && !user.admin) {
        let authzName = route.name;
        if (!authzName && (verb === "list" || verb === "watch")) {
          const m = /(?:^|,)metadata\.name==?([^,]*)/.exec(query.get("fieldSelector") ?? "");
          if (m) authzName = m[1];
        }
        const areq = {
          verb,
          group: route.info.group,
          resource: route.info.name,
          subresource: route.subresource,
          namespace: route.namespace ?? (route.info.name === "namespaces" ? route.name : undefined),
          name: authzName,
        };
        if (route.info.name === "namespaces") areq.namespace = route.name;
        if (!authorize(this.deps.store, user, areq)) {
          throw forbidden(forbiddenMessage(user, { ...areq, name: route.name }), route.info, route.name);
        }
      }
      const decision = this.deps.faults.decide(verb as Verb, route.info.name, query.has("continue"));
      if (decision.latencyMs > 0) await sleep(decision.latencyMs);
      if (decision.kind === "reset") {
        record(0);
        req.socket.destroy();
        return;
      }
      if (decision.kind === "error") {
        if (decision.code === 429 && decision.plainText) {
          res.writeHead(429, {
            "Content-Type": "text/plain",
            "Retry-After": String(decision.retryAfterSeconds),
          });
          res.end("Too many requests, please try again later.\n");
          record(429);
          return;
        }
        const err =
          decision.code === 429
            ? tooManyRequests(decision.retryAfterSeconds)
            : decision.code === 503
              ? serviceUnavailable()
              : decision.code === 504
                ? timeoutError()
                : internalError("injected fault");
        throw err;
      }
      if (decision.kind === "expireContinue") {
        throw expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        );
      }
      if (verb === "watch") {
        this.serveWatch(req, res, route, query);
        record(200);
        return;
      }
      code = await this.serve(req, res, route, verb as Verb, query, started);
      record(code);
    } catch (e) {
      if (e instanceof ApiError) {
        sendStatus(res, e.status);
        record(e.code);
        return;
      }
      throw e;
    }
  }

  private async serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: Route,
    verb: Verb,
    query: URLSearchParams,
    arrived: number,
  ): Promise<number> {
    const { store, latency } = this.deps;
    const resource = route.info.name;
    const ns = route.namespace;
    const write: WriteContext = {
      dryRun: dryRunOf(query),
      manager: fieldManagerOf(query, req.headers["user-agent"]),
      subresource: route.subresource === "status" ? "status" : undefined,
    };
    const accepted = acceptedTypes(req.headers.accept);
    // Negotiated before anything is done, as kube-apiserver does (logs are plain text).
    if (!accepted.json && !accepted.protobuf && route.subresource !== "log") throw notAcceptable();
    write.pruneUnknown = fieldValidationOf(query, res);
    switch (verb) {
      case "get": {
        if (route.subresource === "log") {
          const log = this.deps.podLog(ns ?? "", route.name as string);
          store.get(resource, ns, route.name as string);
          res.writeHead(200, { "Content-Type": "text/plain" });
          res.end(log ?? "");
          return 200;
        }
        const o = store.get(resource, ns, route.name as string);
        const metadataOnly = wantsMetadataOnly(req.headers.accept);
        if (wantsTable(req.headers.accept)) {
          const table = toTable(route.info, [o], this.deps.now(), {}, includeObjectOf(query));
          sendJson(res, 200, JSON.stringify(table));
        } else if (metadataOnly === "PartialObjectMetadata") {
          sendJson(res, 200, JSON.stringify(partialObjectMetadata(o)));
        } else if (metadataOnly) {
          throw notAcceptable();
        } else sendObject(req, res, 200, jsonOf(o));
        if (latency.enabled && resource === "jobs") latency.shown(o, false, performance.now());
        return 200;
      }
      case "list": {
        const limitText = query.get("limit");
        const limit = limitText ? Number(limitText) : undefined;
        if (limitText && !(Number.isInteger(limit) && (limit as number) >= 0)) {
          throw badRequest(`limit: Invalid value: "${limitText}": must be a non-negative integer`);
        }
        validateListOptions(query);
        const result = store.list(resource, {
          namespace: ns,
          resourceVersionMatch: query.get("resourceVersionMatch") ?? undefined,
          labelSelector: query.get("labelSelector") ?? undefined,
          fieldSelector: query.get("fieldSelector") ?? undefined,
          limit,
          continueToken: query.get("continue") || undefined,
          resourceVersion: query.get("resourceVersion") ?? undefined,
        });
        const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
        if (result.continueToken) meta.continue = result.continueToken;
        if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
        if (wantsTable(req.headers.accept)) {
          const table = toTable(route.info, result.items, this.deps.now(), meta, includeObjectOf(query));
          sendJson(res, 200, JSON.stringify(table));
          return 200;
        }
        const metadataOnly = wantsMetadataOnly(req.headers.accept);
        if (metadataOnly === "PartialObjectMetadataList") {
          const list = {
            kind: "PartialObjectMetadataList",
            apiVersion: "meta.k8s.io/v1",
            metadata: meta,
            items: result.items.map(partialObjectMetadata),
          };
          sendJson(res, 200, JSON.stringify(list));
          return 200;
        }
        if (metadataOnly) throw notAcceptable();
        const body =
          `{"kind":"${route.info.kind}List","apiVersion":"${apiVersionOf(route.info)}","metadata":${JSON.stringify(meta)},"items":[` +
          // Not cached: a list of a big table would otherwise pin a JSON copy of every object.
          result.items.map((o) => objectJson.get(o) ?? JSON.stringify(o)).join(",") +
          "]}";
        sendObject(req, res, 200, body);
        if (latency.enabled && resource === "jobs") {
          const at = performance.now();
          for (const o of result.items) latency.shown(o, false, at);
        }
        return 200;
      }
      case "create": {
        if (route.subresource) return this.serveAction(req, res, route, write);
        const body = ((await readObject(req)) ?? {}) as KubeObject;
        const created = store.withRequest(write, () => store.create(resource, body, ns));
        if (latency.enabled && resource === "jobs" && !write.dryRun) latency.created(created, arrived);
        sendObject(req, res, 201, jsonOf(created));
        return 201;
      }
      case "update": {
        const body = ((await readObject(req)) ?? {}) as KubeObject;
        const updated = store.withRequest(write, () =>
          store.update(resource, body, ns, route.name as string, write.subresource),
        );
        sendObject(req, res, 200, jsonOf(updated));
        return 200;
      }
      case "patch": {
        const contentType = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
        const text = (await readBody(req)).toString("utf8");
        if (contentType === "application/apply-patch+yaml") {
          const { object, created } = this.serveApply(route, query, text, write);
          sendObject(req, res, created ? 201 : 200, jsonOf(object));
          return created ? 201 : 200;
        }
        const type = patchTypeOf(contentType);
        const body = parseJson(text);
        const patched = store.withRequest(write, () =>
          store.patch(resource, ns, route.name as string, body, type, write.subresource),
        );
        sendObject(req, res, 200, jsonOf(patched));
        return 200;
      }
      case "deletecollection": {
        const body = await readObject(req);
        const options = deleteOptionsOf(query, body);
        write.dryRun ||= bodyDryRun(body);
        validateListOptions(query);
        const result = store.list(resource, {
          namespace: ns,
          labelSelector: query.get("labelSelector") ?? undefined,
          fieldSelector: query.get("fieldSelector") ?? undefined,
        });
        const deleted: KubeObject[] = [];
        for (const o of result.items) {
          const r = store.withRequest(write, () =>
            store.delete(resource, o.metadata.namespace, o.metadata.name ?? "", options),
          );
          deleted.push(r.object ?? o);
        }
        sendObject(
          req,
          res,
          200,
          JSON.stringify({
            kind: `${route.info.kind}List`,
            apiVersion: apiVersionOf(route.info),
            metadata: { resourceVersion: String(store.currentResourceVersion()) },
            items: deleted,
          }),
        );
        return 200;
      }
      case "delete": {
        const body = await readObject(req);
        const deleteOptions = deleteOptionsOf(query, body);
        write.dryRun ||= bodyDryRun(body);
        const result = store.withRequest(write, () =>
          store.delete(resource, ns, route.name as string, deleteOptions),
        );
        if (result.object) sendObject(req, res, 200, JSON.stringify(result.object));
        else sendObject(req, res, 200, JSON.stringify(result.status));
        return 200;
      }
      default:
        throw methodNotAllowed("unsupported verb");
    }
  }

  /** Server-side apply: creates the object or merges the manager's configuration into it (sim/apply.ts). */
  private serveApply(
    route: Route,
    query: URLSearchParams,
    text: string,
    write: WriteContext,
  ): { object: KubeObject; created: boolean } {
    const { store } = this.deps;
    const manager = query.get("fieldManager");
    if (!manager)
      throw badRequest(
        "PATCH /apply requires fieldManager: fieldManager: Required value: is required for apply patch",
      );
    let config: KubeObject;
    try {
      config = parseYaml(text) as KubeObject;
    } catch (e) {
      throw badRequest(`error decoding YAML: ${(e as Error).message}`);
    }
    if (!config || typeof config !== "object" || Array.isArray(config))
      throw badRequest("the apply configuration must be an object");
    config.metadata = config.metadata ?? {};
    const name = route.name as string;
    if (config.metadata.name !== undefined && config.metadata.name !== name)
      throw badRequest(
        `the name of the object (${String(config.metadata.name)}) does not match the name on the URL (${name})`,
      );
    if (config.apiVersion !== apiVersionOf(route.info) || config.kind !== route.info.kind) {
      throw badRequest(
        `the apiVersion/kind of the applied object (${String(config.apiVersion)}/${String(config.kind)}) does not match the URL (${apiVersionOf(route.info)}/${route.info.kind})`,
      );
    }
    // Unknown fields are refused (Strict) or dropped before they could become anyone's managed fields.
    if (write.pruneUnknown) config = write.pruneUnknown(route.info, config);
    const live = store.peek(route.info.name, route.namespace, name);
    const merged = applyConfiguration(live, config, {
      manager,
      force: truthy(query.get("force")),
      time: new Date(this.deps.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      kindName: route.info.name,
      subresource: write.subresource,
    });
    merged.metadata.name = name;
    // The field sets are already computed: the store must not track this write as an update.
    const context: WriteContext = { ...write, manager: undefined, pruneUnknown: undefined };
    if (!live) {
      if (write.subresource) throw notFound(route.info, name);
      return {
        object: store.withRequest(context, () => store.create(route.info.name, merged, route.namespace)),
        created: true,
      };
    }
    merged.metadata.resourceVersion = live.metadata.resourceVersion;
    const object = store.withRequest(context, () =>
      store.update(route.info.name, merged, route.namespace, name, write.subresource),
    );
    return { object, created: false };
  }

  /** POST pods/<name>/eviction (deletes the pod; no PodDisruptionBudgets here) and serviceaccounts/<name>/token. */
  private async serveAction(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: Route,
    write: WriteContext,
  ): Promise<number> {
    const { store } = this.deps;
    const name = route.name as string;
    const body = ((await readObject(req)) ?? {}) as Record<string, unknown>;
    if (route.subresource === "eviction") {
      const meta = (body.metadata ?? {}) as { name?: string };
      if (meta.name !== undefined && meta.name !== name)
        throw badRequest(`name in URL does not match name in Eviction object`);
      const options = (body.deleteOptions ?? {}) as DeleteOptions;
      write.dryRun ||= bodyDryRun(body.deleteOptions);
      store.withRequest(write, () => store.delete("pods", route.namespace, name, options));
      sendObject(
        req,
        res,
        201,
        JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 }),
      );
      return 201;
    }
    const sa = store.get("serviceaccounts", route.namespace, name);
    const spec = (body.spec ?? {}) as { audiences?: string[]; expirationSeconds?: number };
    const expirationSeconds = spec.expirationSeconds ?? 3600;
    if (expirationSeconds < 600)
      throw badRequest(
        "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes",
      );
    const now = this.deps.now();
    sendObject(
      req,
      res,
      201,
      JSON.stringify({
        kind: "TokenRequest",
        apiVersion: "authentication.k8s.io/v1",
        metadata: {
          name,
          namespace: route.namespace,
          creationTimestamp: new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z"),
        },
        spec: {
          audiences: spec.audiences ?? ["https://kubernetes.default.svc.cluster.local"],
          expirationSeconds,
          boundObjectRef: null,
        },
        status: {
          token: this.deps.tokenFor(route.namespace ?? "", sa.metadata.name ?? name),
          expirationTimestamp: new Date(now + expirationSeconds * 1000)
            .toISOString()
            .replace(/\.\d{3}Z$/, "Z"),
        },
      }),
    );
    return 201;
  }

  private serveWatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: Route,
    query: URLSearchParams,
  ): void {
    const { store } = this.deps;
    const info = route.info;
    const bookmarks = truthy(query.get("allowWatchBookmarks"));
    const sendInitial = truthy(query.get("sendInitialEvents"));
    let fieldSelector = query.get("fieldSelector") ?? undefined;
    if (route.name) {
      // A watch on a named path is a watch with a metadata.name field selector.
      const pinned = /(?:^|,)metadata\.name==?([^,]*)/.exec(fieldSelector ?? "");
      if (pinned && pinned[1] !== route.name)
        throw badRequest("fieldSelector metadata.name doesn't match requested name");
      fieldSelector = fieldSelector
        ? `${fieldSelector},metadata.name=${route.name}`
        : `metadata.name=${route.name}`;
    }
    if (sendInitial && (!bookmarks || query.get("resourceVersionMatch") !== "NotOlderThan")) {
      throw new ApiError({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled, allowWatchBookmarks is set and resourceVersionMatch is NotOlderThan`,
        reason: "Invalid",
        details: { group: "meta.k8s.io", kind: "ListOptions" },
        code: 422,
      });
    }
    let open = true;
    const lines: string[] = [];
    let headersSent = false;
    const write = (line: string): void => {
      if (!open) return;
      if (!headersSent) {
        lines.push(line);
        return;
      }
      res.write(line);
    };
    // `kubectl get -w` asks for Tables: each event carries a one-row Table of the object.
    const asTable = wantsTable(req.headers.accept);
    const includeObject = includeObjectOf(query);
    const encode = (o: KubeObject): string =>
      asTable
        ? JSON.stringify(
            toTable(
              info,
              [o],
              this.deps.now(),
              { resourceVersion: o.metadata.resourceVersion },
              includeObject,
            ),
          )
        : jsonOf(o);
    const { latency } = this.deps;
    const sink = {
      event: (type: string, o: KubeObject) => {
        write(`{"type":"${type}","object":${encode(o)}}\n`);
        if (open && latency.enabled && info.name === "jobs")
          latency.shown(o, type === "DELETED", performance.now());
      },
    };
    let tooOldStatus: StatusObject | undefined;
    const rv = sendInitial ? "" : (query.get("resourceVersion") ?? undefined);
    const cancel = store.watch(
      info.name,
      {
        namespace: route.namespace,
        labelSelector: query.get("labelSelector") ?? undefined,
        fieldSelector,
        resourceVersion: rv,
      },
      sink,
      (requested, oldest) => {
        tooOldStatus = {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: `too old resource version: ${requested} (${oldest})`,
          reason: "Expired",
          code: 410,
        };
      },
    );
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Transfer-Encoding": "chunked",
      "Cache-Control": "no-cache, private",
    });
    res.flushHeaders();
    headersSent = true;
    if (lines.length > 0) res.write(lines.join(""));
    const bookmark = (annotations?: Record<string, string>): void => {
      const meta: Record<string, unknown> = { resourceVersion: String(store.currentResourceVersion()) };
      if (annotations) meta.annotations = annotations;
      write(
        `{"type":"BOOKMARK","object":${JSON.stringify({ kind: info.kind, apiVersion: apiVersionOf(info), metadata: meta })}}\n`,
      );
    };
    if (sendInitial) bookmark({ "k8s.io/initial-events-end": "true" });
    if (tooOldStatus) {
      res.write(`{"type":"ERROR","object":${JSON.stringify(tooOldStatus)}}\n`);
      res.end();
      return;
    }
    const timers: NodeJS.Timeout[] = [];
    const stop = (abrupt: boolean): void => {
      if (!open) return;
      open = false;
      cancel();
      for (const t of timers) clearTimeout(t);
      this.openWatches.delete(stopClean);
      this.deps.faults.watches.delete(drop);
      if (abrupt) res.socket?.destroy();
      else res.end();
    };
    const stopClean = (): void => stop(false);
    const drop = (mode: "reset" | "close"): void => stop(mode === "reset");
    this.openWatches.add(stopClean);
    this.deps.faults.watches.add(drop);
    const timeoutSeconds = query.get("timeoutSeconds");
    const timeoutMs = timeoutSeconds ? Number(timeoutSeconds) * 1000 : (1800 + Math.random() * 1800) * 1000;
    const t = setTimeout(stopClean, timeoutMs);
    t.unref();
    timers.push(t);
    if (bookmarks) {
      const b = setInterval(() => bookmark(), this.deps.bookmarkIntervalMs);
      b.unref();
      timers.push(b);
    }
    req.on("close", () => stop(false));
  }

  address(): number {
    return (this.server.address() as AddressInfo).port;
  }
}

/** `dryRun: ["All"]` in a DeleteOptions body (kubectl delete --dry-run=server sends it there). */
function bodyDryRun(body: unknown): boolean {
  const values = (body as { dryRun?: unknown } | undefined)?.dryRun;
  if (values === undefined || values === null) return false;
  if (!Array.isArray(values) || values.some((v) => v !== "All"))
    throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(values)}: supported values: "All"`);
  return values.length > 0;
}

/** `dryRun=All` (the only value kube-apiserver accepts). */
function dryRunOf(query: URLSearchParams): boolean {
  const values = query.getAll("dryRun");
  for (const v of values) {
    if (v !== "All") throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  }
  return values.length > 0;
}

/** The request's field manager: `fieldManager`, else the User-Agent up to its first "/" (as kube-apiserver). */
function fieldManagerOf(query: URLSearchParams, userAgent: string | undefined): string {
  const given = query.get("fieldManager");
  if (given !== null) {
    if (given.length > 128) throw badRequest("fieldManager: Too long: may not be more than 128 bytes");
    return given;
  }
  return (userAgent ?? "unknown").split("/")[0].slice(0, 128) || "unknown";
}

/**
 * `fieldValidation` (default Warn): the fields a body has that its kind does not (sim/schemas.ts) are dropped,
 * as a real server's decoder drops them; Strict refuses the write with 400 listing them, Warn reports each in a
 * `Warning` header, Ignore says nothing.
 */
function fieldValidationOf(
  query: URLSearchParams,
  res: http.ServerResponse,
): (info: ResourceInfo, o: KubeObject) => KubeObject {
  const mode = query.get("fieldValidation") || "Warn";
  if (!["Strict", "Warn", "Ignore"].includes(mode)) {
    throw badRequest(
      `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
    );
  }
  return (info, o) => {
    const { apiVersion, kind, ...fields } = o;
    const { paths, pruned } = unknownFields(info.kind, fields);
    if (paths.length === 0) return o;
    const problems = paths.map((p) => `unknown field "${p}"`);
    if (mode === "Strict") throw badRequest(`strict decoding error: ${problems.join(", ")}`);
    if (mode === "Warn") {
      const previous = res.getHeader("Warning");
      const earlier = Array.isArray(previous) ? previous : previous ? [String(previous)] : [];
      res.setHeader("Warning", [...earlier, ...problems.map((p) => `299 - ${JSON.stringify(p)}`)]);
    }
    return { apiVersion, kind, ...(pruned as object) } as KubeObject;
  };
}

/** DeleteOptions from the query and/or the body (both are accepted, as by kube-apiserver). */
function deleteOptionsOf(query: URLSearchParams, body: unknown): DeleteOptions {
  const opts = (body ?? {}) as {
    propagationPolicy?: string;
    orphanDependents?: boolean;
    preconditions?: { uid?: string; resourceVersion?: string };
    gracePeriodSeconds?: number;
  };
  const policyText = query.get("propagationPolicy") ?? opts.propagationPolicy;
  let propagationPolicy: PropagationPolicy | undefined;
  if (policyText) {
    if (!["Foreground", "Background", "Orphan"].includes(policyText)) {
      throw badRequest(
        `propagationPolicy: Unsupported value: "${policyText}": supported values: "Foreground", "Background", "Orphan"`,
      );
    }
    propagationPolicy = policyText as PropagationPolicy;
  } else {
    const orphan = query.get("orphanDependents") ?? opts.orphanDependents;
    if (orphan !== undefined && orphan !== null)
      propagationPolicy = String(orphan) === "true" ? "Orphan" : "Background";
  }
  const graceText = query.get("gracePeriodSeconds") ?? opts.gracePeriodSeconds;
  const deleteOptions: DeleteOptions = { propagationPolicy, preconditions: opts.preconditions };
  if (graceText !== undefined && graceText !== null) deleteOptions.gracePeriodSeconds = Number(graceText);
  return deleteOptions;
}

/** Query-option validation of kube-apiserver (facts §3): failures are 422 Invalid on ListOptions. */
function validateListOptions(query: URLSearchParams): void {
  const problems: string[] = [];
  const match = query.get("resourceVersionMatch");
  if (match) {
    if (match !== "Exact" && match !== "NotOlderThan") {
      problems.push(
        `resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`,
      );
    } else if (!query.get("resourceVersion")) {
      problems.push(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
      );
    }
    if (query.get("continue"))
      problems.push(
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
      );
  }
  if (query.has("sendInitialEvents"))
    problems.push("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list");
  if (problems.length === 0) return;
  const text = problems.length === 1 ? problems[0] : `[${problems.join(", ")}]`;
  throw new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `ListOptions.meta.k8s.io "" is invalid: ${text}`,
    reason: "Invalid",
    details: {
      group: "meta.k8s.io",
      kind: "ListOptions",
      causes: problems.map((m) => ({
        reason: m.includes("Unsupported") ? "FieldValueNotSupported" : "FieldValueForbidden",
        message: m.slice(m.indexOf(": ") + 2),
        field: m.slice(0, m.indexOf(":")),
      })),
    },
    code: 422,
  });
}

/** 404 for a path the API does not serve (kube-apiserver's answer for an unknown resource or group). */
function pathNotFound(): ApiError {
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "the server could not find the requested resource",
    reason: "NotFound",
    details: {},
    code: 404,
  });
}

function includeObjectOf(query: URLSearchParams): IncludeObject {
  const v = query.get("includeObject");
  if (v === null || v === "") return "Metadata";
  if (v === "None" || v === "Metadata" || v === "Object") return v;
  throw badRequest(
    `includeObject: Unsupported value: "${v}": supported values: "None", "Metadata", "Object"`,
  );
}

/** POST-only subresources that act on an object (kubectl drain's eviction, `kubectl create token`). */
const ACTION_SUBRESOURCES: Partial<Record<string, string>> = { pods: "eviction", serviceaccounts: "token" };

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** Subresources each kind serves besides /status, with their verbs (discovery lists them). */
const SUBRESOURCES: Partial<Record<string, { name: string; kind: string; verbs: string[] }[]>> = {
  pods: [
    { name: "log", kind: "Pod", verbs: ["get"] },
    { name: "eviction", kind: "Eviction", verbs: ["create"] },
  ],
  serviceaccounts: [{ name: "token", kind: "TokenRequest", verbs: ["create"] }],
};

/** Legacy discovery documents (/api, /apis, /api/v1, /apis/<g>, /apis/<g>/<v>); undefined: not served. */
function discovery(pathname: string): unknown {
  const p = pathname.replace(/\/$/, "");
  const served = [
    ...Object.values(RESOURCES).map((r) => ({ ...r, verbs: ALL_VERBS })),
    ...VIRTUAL_RESOURCES.map((v) => ({ ...v, namespaced: false, hasStatus: false, verbs: ["create"] })),
  ];
  const groupVersions = [...new Set(served.map((r) => (r.group ? `${r.group}/${r.version}` : r.version)))];
  const groupOf = (gv: string) => {
    const [name, version] = gv.split("/");
    return {
      name,
      versions: [{ groupVersion: gv, version }],
      preferredVersion: { groupVersion: gv, version },
    };
  };
  if (p === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] };
  if (p === "/apis") {
    return {
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: groupVersions.filter((gv) => gv.includes("/")).map(groupOf),
    };
  }
  const segs = p.split("/").filter(Boolean);
  if (segs[0] === "apis" && segs.length === 2) {
    const gv = groupVersions.find((x) => x.split("/")[0] === segs[1] && x.includes("/"));
    return gv ? { kind: "APIGroup", apiVersion: "v1", ...groupOf(gv) } : undefined;
  }
  const gv = p.startsWith("/api/") ? p.slice(5) : p.slice(6);
  const resources = served.filter((r) => (r.group ? `${r.group}/${r.version}` : r.version) === gv);
  if (resources.length === 0) return undefined;
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: gv,
    resources: resources.flatMap((r) => {
      const main: Record<string, unknown> = {
        name: r.name,
        singularName: r.kind.toLowerCase(),
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: r.verbs,
      };
      if ("shortNames" in r && r.shortNames) main.shortNames = r.shortNames;
      if ("categories" in r && r.categories) main.categories = r.categories;
      const subs = [
        ...(r.hasStatus ? [{ name: "status", kind: r.kind, verbs: ["get", "patch", "update"] }] : []),
        ...(SUBRESOURCES[r.name] ?? []),
      ];
      return [
        main,
        ...subs.map((s) => ({
          name: `${r.name}/${s.name}`,
          singularName: "",
          namespaced: r.namespaced,
          kind: s.kind,
          verbs: s.verbs,
        })),
      ];
    }),
  };
}
