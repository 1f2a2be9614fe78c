// A small Kubernetes API client built on Node's own http/https: JSON requests, paginated LISTs, watch streams,
// bearer tokens (static, file, exec credential plugins via child_process), client certificates and CA data.
// It exists because the rollout's dynamic provider is serialized into the Pulumi state and runs from the consumer's
// folder, where no npm package can be assumed (pulumi-facts.md §4.2-4.3). Node built-ins only.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { ConnectionSpec, ExecCredentialConfig } from "./connection";

/** A Kubernetes `Status` failure (or a plain-text error body), with the HTTP code. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 404;
}
export function isForbidden(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 403;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ClientOptions {
  /** Per-request timeout for non-watch requests (ms). */
  requestTimeoutMs?: number;
  /** Attempts for retryable failures (connection errors, 429, 5xx) of idempotent requests. */
  maxAttempts?: number;
  /** Page size of paginated LISTs. */
  pageSize?: number;
  /** Sockets kept per client; bounds concurrent requests. */
  maxSockets?: number;
}

interface Credentials {
  token?: string;
  cert?: string;
  key?: string;
  basic?: string;
  /** Epoch ms after which exec credentials must be fetched again. */
  expiresAt?: number;
}

type Query = Record<string, string | number | boolean | undefined>;

// Arrays, not Sets: the closure serializer turns a module-level Set into a plain object.
const RETRYABLE_CODES: readonly number[] = [429, 500, 502, 503, 504];
const RETRYABLE_ERRNO: readonly string[] = [
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function queryString(query: Query | undefined): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === "") continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** Turn an error response body (Status JSON or plain text, as 429s from APF are) into a KubeApiError. */
export function apiErrorFromResponse(
  code: number,
  body: string,
  retryAfterHeader?: string,
  what?: string,
): KubeApiError {
  let message = body.trim().slice(0, 500) || `HTTP ${code}`;
  let reason = "";
  let retryAfter = retryAfterHeader ? Number(retryAfterHeader) : undefined;
  try {
    const status = JSON.parse(body) as {
      kind?: string;
      message?: string;
      reason?: string;
      details?: { retryAfterSeconds?: number };
    };
    if (status && status.kind === "Status") {
      message = status.message || message;
      reason = status.reason || "";
      retryAfter = status.details?.retryAfterSeconds ?? retryAfter;
    }
  } catch {
    // Plain-text body: kept as the message.
  }
  if (!reason) reason = code === 404 ? "NotFound" : code === 429 ? "TooManyRequests" : `HTTP${code}`;
  return new KubeApiError(
    what ? `${what}: ${message}` : message,
    code,
    reason,
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}

/** Run an exec credential plugin (client.authentication.k8s.io) and read its ExecCredential status. */
export function runExecPlugin(exec: ExecCredentialConfig, timeoutMs = 60_000): Promise<Credentials> {
  const apiVersion = exec.apiVersion || "client.authentication.k8s.io/v1";
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const { name, value } of exec.env ?? []) env[name] = value;
  env.KUBERNETES_EXEC_INFO = JSON.stringify({
    apiVersion,
    kind: "ExecCredential",
    spec: { interactive: false },
  });
  return new Promise((resolve, reject) => {
    execFile(
      exec.command,
      exec.args ?? [],
      { env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        if (error) {
          // Only the first line of stderr: plugins print diagnostics there, never the credential.
          const hint =
            String(stderr)
              .split("\n")
              .find((l) => l.trim()) ?? "";
          const how =
            (error as NodeJS.ErrnoException).code === "ENOENT"
              ? `command not found${exec.installHint ? ` (${exec.installHint.trim().split("\n")[0]})` : ""}`
              : error.killed
                ? `timed out after ${timeoutMs / 1000}s`
                : `exited ${(error as { code?: unknown }).code ?? "with an error"}`;
          reject(
            new Error(
              `exec credential plugin "${exec.command}" ${how}${hint ? `: ${hint.slice(0, 300)}` : ""}`,
            ),
          );
          return;
        }
        try {
          const cred = JSON.parse(String(stdout)) as {
            status?: {
              token?: string;
              clientCertificateData?: string;
              clientKeyData?: string;
              expirationTimestamp?: string;
            };
          };
          const s = cred.status ?? {};
          if (!s.token && !(s.clientCertificateData && s.clientKeyData)) {
            reject(
              new Error(
                `exec credential plugin "${exec.command}" returned no status.token or client certificate`,
              ),
            );
            return;
          }
          const expiresAt = s.expirationTimestamp ? Date.parse(s.expirationTimestamp) : undefined;
          resolve({
            token: s.token,
            cert: s.clientCertificateData,
            key: s.clientKeyData,
            expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined,
          });
        } catch {
          reject(
            new Error(`exec credential plugin "${exec.command}" did not print an ExecCredential JSON object`),
          );
        }
      },
    );
  });
}

export class KubeClient {
  private readonly url: URL;
  private readonly options: Required<ClientOptions>;
  private credentials?: Credentials;
  private agent?: http.Agent;
  private agentKey: string;
  private readonly liveRequests: Set<http.ClientRequest>;
  /** Requests made (all verbs, including watches), for tests and cost figures. */
  requestCount: number;

  constructor(
    private readonly spec: ConnectionSpec,
    options: ClientOptions = {},
  ) {
    // Fields are set here, not with initializers: Pulumi's closure serializer keeps constructor bodies but drops
    // class field initializers (caught by tests/rollout/rollout.sim.test.ts through the serialized provider).
    this.agentKey = "";
    this.liveRequests = new Set();
    this.requestCount = 0;
    this.url = new URL(spec.server);
    this.options = {
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      maxAttempts: options.maxAttempts ?? 5,
      pageSize: options.pageSize ?? 500,
      maxSockets: options.maxSockets ?? 16,
    };
  }

  /** Close kept-alive sockets and abort open watches. */
  close(): void {
    for (const req of this.liveRequests) req.destroy();
    this.liveRequests.clear();
    this.agent?.destroy();
    this.agent = undefined;
  }

  private async currentCredentials(forceRefresh = false): Promise<Credentials> {
    const spec = this.spec;
    if (spec.exec) {
      const c = this.credentials;
      // Refresh 30 s before expiry so a token does not lapse mid-request.
      if (forceRefresh || !c || (c.expiresAt !== undefined && c.expiresAt - 30_000 <= Date.now())) {
        const fresh = await runExecPlugin(spec.exec);
        this.credentials = {
          ...fresh,
          cert: fresh.cert ?? spec.clientCertificateData,
          key: fresh.key ?? spec.clientKeyData,
        };
      }
      return this.credentials as Credentials;
    }
    let token = spec.token;
    if (spec.tokenFile) {
      try {
        token = readFileSync(spec.tokenFile, "utf8").trim();
      } catch (err) {
        if (!token) throw new Error(`connection.tokenFile ${spec.tokenFile}: ${(err as Error).message}`);
      }
    }
    return {
      token,
      cert: spec.clientCertificateData,
      key: spec.clientKeyData,
      basic:
        spec.username !== undefined
          ? Buffer.from(`${spec.username}:${spec.password ?? ""}`).toString("base64")
          : undefined,
    };
  }

  private agentFor(creds: Credentials): http.Agent {
    const key = `${creds.cert ?? ""}|${creds.key ?? ""}`;
    if (this.agent && this.agentKey === key) return this.agent;
    this.agent?.destroy();
    const common = { keepAlive: true, maxSockets: this.options.maxSockets };
    this.agent =
      this.url.protocol === "https:"
        ? new https.Agent({
            ...common,
            ca: this.spec.caData || undefined,
            cert: creds.cert,
            key: creds.key,
            rejectUnauthorized: !this.spec.insecureSkipTlsVerify,
            servername: this.spec.tlsServerName || undefined,
          })
        : new http.Agent(common);
    this.agentKey = key;
    return this.agent;
  }

  private async open(
    method: string,
    path: string,
    query: Query | undefined,
    body: unknown,
    creds: Credentials,
    timeoutMs: number,
    accept = "application/json",
  ): Promise<http.IncomingMessage> {
    const base = this.url.pathname.replace(/\/$/, "");
    const headers: http.OutgoingHttpHeaders = { Accept: accept };
    if (creds.token) headers.Authorization = `Bearer ${creds.token}`;
    else if (creds.basic) headers.Authorization = `Basic ${creds.basic}`;
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = payload.length;
    }
    const transport = this.url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname.replace(/^\[|\]$/g, ""),
          port: this.url.port || undefined,
          method,
          path: `${base}${path}${queryString(query)}`,
          headers,
          agent: this.agentFor(creds),
        },
        (res) => {
          this.liveRequests.delete(req);
          resolve(res);
        },
      );
      this.liveRequests.add(req);
      req.setTimeout(timeoutMs, () =>
        req.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })),
      );
      req.on("error", (err) => {
        this.liveRequests.delete(req);
        reject(err);
      });
      req.end(payload);
    });
  }

  private readBody(res: http.IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", reject);
    });
  }

  /**
   * One JSON request with bounded retries: connection errors and 429/5xx are retried for reads and deletes (and for
   * creates only on connection refusal, which proves nothing was sent); 401 triggers one credential refresh.
   */
  async request<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; what?: string; accept?: string } = {},
  ): Promise<T> {
    const idempotent = method === "GET" || method === "DELETE";
    let refreshed = false;
    let lastError: unknown;
    const deadline = Date.now() + this.options.requestTimeoutMs * 2;
    for (let attempt = 1; attempt <= this.options.maxAttempts; attempt++) {
      this.requestCount++;
      let retryAfterMs = Math.min(5_000, 200 * 2 ** (attempt - 1));
      try {
        const creds = await this.currentCredentials();
        const res = await this.open(
          method,
          path,
          opts.query,
          opts.body,
          creds,
          this.options.requestTimeoutMs,
          opts.accept,
        );
        const text = await this.readBody(res);
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) return (text ? JSON.parse(text) : {}) as T;
        const err = apiErrorFromResponse(code, text, res.headers["retry-after"], opts.what);
        if (code === 401 && this.spec.exec && !refreshed) {
          refreshed = true;
          await this.currentCredentials(true);
          lastError = err;
          continue;
        }
        if (!RETRYABLE_CODES.includes(code) || (!idempotent && code !== 429)) throw err;
        if (err.retryAfterSeconds) retryAfterMs = Math.min(10_000, err.retryAfterSeconds * 1000);
        lastError = err;
      } catch (err) {
        if (err instanceof KubeApiError) throw err;
        const errno = (err as NodeJS.ErrnoException).code ?? "";
        const retryable = RETRYABLE_ERRNO.includes(errno) && (idempotent || errno === "ECONNREFUSED");
        if (!retryable) throw this.wrapNetworkError(err, opts.what);
        lastError = this.wrapNetworkError(err, opts.what);
      }
      if (attempt === this.options.maxAttempts || Date.now() + retryAfterMs > deadline) break;
      await sleep(retryAfterMs);
    }
    throw lastError;
  }

  private wrapNetworkError(err: unknown, what?: string): Error {
    const e = err as NodeJS.ErrnoException;
    const msg = `${what ? `${what}: ` : ""}cannot reach the Kubernetes API at ${this.spec.server}: ${e.code ?? ""} ${e.message}`;
    return Object.assign(new Error(msg.replace(/\s+/g, " ").trim()), { code: e.code });
  }

  get<T>(path: string, what?: string): Promise<T> {
    return this.request<T>("GET", path, { what });
  }

  /** GET that answers undefined for 404. */
  async getOptional<T>(path: string, what?: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path, what);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create<T>(path: string, body: unknown, what?: string): Promise<T> {
    return this.request<T>("POST", path, { body, what });
  }

  /** DELETE with a propagation policy; 404 counts as done (returns false). */
  async delete(
    path: string,
    propagationPolicy: "Background" | "Foreground" | "Orphan" = "Background",
    what?: string,
  ): Promise<boolean> {
    try {
      await this.request("DELETE", path, {
        body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy },
        what,
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * A full LIST, following `continue` tokens (bounded by the page count a 10^6-object cluster would need). With
   * `metadataOnly` the server sends each object's metadata alone (a PartialObjectMetadataList, as client-go's metadata
   * client asks for it): what reading labels and annotations of a large fleet should cost.
   */
  async list<T>(
    path: string,
    query: { labelSelector?: string; fieldSelector?: string } = {},
    what?: string,
    metadataOnly = false,
  ): Promise<ListResult<T>> {
    const accept = metadataOnly
      ? "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
      : undefined;
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    for (let page = 0; page < 10_000; page++) {
      const res = await this.request<{
        items?: T[];
        metadata?: { continue?: string; resourceVersion?: string };
      }>("GET", path, { query: { ...query, limit: this.options.pageSize, continue: cont }, what, accept });
      items.push(...(res.items ?? []));
      resourceVersion = res.metadata?.resourceVersion ?? resourceVersion;
      cont = res.metadata?.continue || undefined;
      if (!cont) return { items, resourceVersion };
    }
    throw new Error(`${what ?? path}: LIST did not end after 10000 pages`);
  }

  /**
   * One watch stream from `resourceVersion`: calls `onEvent` per event until the server closes it, `timeoutSeconds`
   * passes or `signal` aborts. Resolves with the last resourceVersion seen; an ERROR event rejects with its Status
   * (410 Expired means: list again).
   */
  async watch<T extends { metadata?: { resourceVersion?: string } }>(
    path: string,
    query: {
      labelSelector?: string;
      fieldSelector?: string;
      resourceVersion?: string;
      timeoutSeconds?: number;
    },
    onEvent: (event: WatchEvent<T>) => void,
    signal?: AbortSignal,
    onBookmark?: (resourceVersion: string) => void,
  ): Promise<string> {
    this.requestCount++;
    const creds = await this.currentCredentials();
    const timeoutSeconds = query.timeoutSeconds ?? 60;
    const res = await this.open(
      "GET",
      path,
      { ...query, watch: 1, allowWatchBookmarks: true, timeoutSeconds },
      undefined,
      creds,
      (timeoutSeconds + 30) * 1000,
    );
    if ((res.statusCode ?? 0) !== 200) {
      throw apiErrorFromResponse(res.statusCode ?? 0, await this.readBody(res), undefined, `watch ${path}`);
    }
    let lastRv = query.resourceVersion ?? "";
    return new Promise((resolve, reject) => {
      let buffer = "";
      let settled = false;
      // Declared before `finish` (the closure serializer rejects uses that precede a declaration).
      let detach = (): void => undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        detach();
        res.destroy();
        if (err) reject(err);
        else resolve(lastRv);
      };
      const onAbort = () => finish();
      signal?.addEventListener("abort", onAbort);
      detach = () => signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) return finish();
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line || settled) continue;
          let event: WatchEvent<T>;
          try {
            event = JSON.parse(line) as WatchEvent<T>;
          } catch {
            return finish(new Error(`watch ${path}: unreadable event line`));
          }
          if (event.type === "ERROR") {
            const status = event.object as unknown as { code?: number; reason?: string; message?: string };
            return finish(
              new KubeApiError(
                `watch ${path}: ${status.message ?? "error event"}`,
                status.code ?? 500,
                status.reason ?? "",
              ),
            );
          }
          lastRv = event.object?.metadata?.resourceVersion ?? lastRv;
          if (event.type === "BOOKMARK") {
            // A bookmark carries only how far the stream has come.
            onBookmark?.(lastRv);
            continue;
          }
          try {
            onEvent(event);
          } catch (err) {
            return finish(err);
          }
        }
      });
      res.on("end", () => finish());
      res.on("close", () => finish());
      res.on("error", (err) => (signal?.aborted ? finish() : finish(err)));
    });
  }
}
