// The HTTP front of kube-sim: Kubernetes REST paths, bearer-token authentication, RBAC, fault
// injection, list/watch streaming, Status errors, and the audit/introspection endpoints under /_sim/.
import type * as http from "node:http";
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
import { apiVersionOf, findResource, RESOURCES, ResourceInfo } from "./resources";
import type { DeleteOptions, PatchType, Store } from "./store";
import type { KubeObject, PropagationPolicy, ResourceName, Verb } from "./types";

export interface ServerDeps {
  store: Store;
  audit: AuditLog;
  faults: FaultInjector;
  authenticate(token: string | undefined): UserInfo | undefined;
  authz: boolean;
  now(): number;
  bookmarkIntervalMs: number;
  /** Serving certificate and key (PEM). */
  tls: { cert: string; key: string };
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

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
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
      return route.name ? undefined : "create";
    case "PUT":
      return route.name ? "update" : undefined;
    case "PATCH":
      return route.name ? "patch" : undefined;
    case "DELETE":
      return route.name ? "delete" : undefined;
    default:
      return undefined;
  }
}

function patchTypeOf(contentType: string | undefined): PatchType {
  const ct = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (ct === "application/json-patch+json") return "json";
  if (ct === "application/merge-patch+json" || ct === "application/strategic-merge-patch+json")
    return "merge";
  throw unsupportedMediaType(ct || "(none)");
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ApiServer {
  private server: https.Server;
  private readonly openWatches = new Set<() => void>();

  constructor(private readonly deps: ServerDeps) {
    this.server = https.createServer({ keepAlive: true, ...deps.tls }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendStatus(res, internalError((e as Error).message).status);
        else res.destroy();
      });
    });
    // client-node 2.x opens a new connection per request and never reuses it; a short idle timeout keeps
    // those abandoned sockets (and file descriptors) from piling up in long runs.
    this.server.keepAliveTimeout = 2_000;
  }

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

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const arrived = this.deps.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const query = url.searchParams;
    const method = req.method ?? "GET";
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
    const user = this.deps.authenticate(token);
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
        code: c,
        durationMs: performance.now() - started,
      });
    };
    try {
      if (url.pathname.startsWith("/_sim/")) {
        const handler = this.deps.simEndpoints[url.pathname.slice("/_sim/".length)];
        if (!handler) throw notFound(RESOURCES.nodes, url.pathname);
        sendJson(res, 200, JSON.stringify(handler(query)));
        return;
      }
      if (!user) throw unauthorized();
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
      if (route === "discovery") {
        sendJson(res, 200, JSON.stringify(discovery(url.pathname)));
        record(200);
        return;
      }
      if (!route) throw notFound(RESOURCES.nodes, url.pathname);
      const v = verbOf(method, route, query);
      if (!v) throw methodNotAllowed(`the server does not allow this method on the requested resource`);
      verb = v;
      if (route.subresource && !["status", "log"].includes(route.subresource)) {
        throw notFound(route.info, `${route.name}/${route.subresource}`);
      }
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
      code = await this.serve(req, res, route, verb as Verb, query);
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
  ): Promise<number> {
    const { store } = this.deps;
    const resource = route.info.name;
    const ns = route.namespace;
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
        sendJson(res, 200, jsonOf(o));
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
        const body =
          `{"kind":"${route.info.kind}List","apiVersion":"${apiVersionOf(route.info)}","metadata":${JSON.stringify(meta)},"items":[` +
          // Not cached: a list of a big table would otherwise pin a JSON copy of every object.
          result.items.map((o) => objectJson.get(o) ?? JSON.stringify(o)).join(",") +
          "]}";
        sendJson(res, 200, body);
        return 200;
      }
      case "create": {
        const body = parseJson(await readBody(req)) as KubeObject;
        const created = store.create(resource, body, ns);
        sendJson(res, 201, jsonOf(created));
        return 201;
      }
      case "update": {
        const body = parseJson(await readBody(req)) as KubeObject;
        const updated = store.update(
          resource,
          body,
          ns,
          route.name as string,
          route.subresource === "status" ? "status" : undefined,
        );
        sendJson(res, 200, jsonOf(updated));
        return 200;
      }
      case "patch": {
        const type = patchTypeOf(req.headers["content-type"]);
        const body = parseJson(await readBody(req));
        const patched = store.patch(
          resource,
          ns,
          route.name as string,
          body,
          type,
          route.subresource === "status" ? "status" : undefined,
        );
        sendJson(res, 200, jsonOf(patched));
        return 200;
      }
      case "delete": {
        const text = await readBody(req);
        const opts = (text.trim() ? parseJson(text) : {}) as {
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
        if (graceText !== undefined && graceText !== null)
          deleteOptions.gracePeriodSeconds = Number(graceText);
        const result = store.delete(resource, ns, route.name as string, deleteOptions);
        if (result.object) sendJson(res, 200, JSON.stringify(result.object));
        else sendJson(res, 200, JSON.stringify(result.status));
        return 200;
      }
      default:
        throw methodNotAllowed("unsupported verb");
    }
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
    const sink = {
      event: (type: string, o: KubeObject) => write(`{"type":"${type}","object":${jsonOf(o)}}\n`),
    };
    let tooOldStatus: StatusObject | undefined;
    const rv = sendInitial ? "" : (query.get("resourceVersion") ?? undefined);
    const cancel = store.watch(
      info.name as ResourceName,
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

function discovery(pathname: string): unknown {
  const p = pathname.replace(/\/$/, "");
  if (p === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] };
  if (p === "/apis") {
    const groups = [
      ...new Set(
        Object.values(RESOURCES)
          .filter((r) => r.group)
          .map((r) => `${r.group}/${r.version}`),
      ),
    ];
    return {
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: groups.map((gv) => {
        const [name, version] = gv.split("/");
        return {
          name,
          versions: [{ groupVersion: gv, version }],
          preferredVersion: { groupVersion: gv, version },
        };
      }),
    };
  }
  const gv = p.startsWith("/api/") ? p.slice(5) : p.slice(6);
  const resources = Object.values(RESOURCES).filter((r) => apiVersionOf(r) === gv);
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: gv,
    resources: resources.flatMap((r) => {
      const main = {
        name: r.name,
        singularName: r.kind.toLowerCase(),
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      };
      return r.hasStatus
        ? [
            main,
            {
              name: `${r.name}/status`,
              singularName: "",
              namespaced: r.namespaced,
              kind: r.kind,
              verbs: ["get", "patch", "update"],
            },
          ]
        : [main];
    }),
  };
}
