// Shared helpers of the kube-sim conformance tests: clients through a real kubeconfig, Status checks,
// and a raw HTTP helper for what client-node does not expose (watch streams, headers).
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as https from "node:https";
import { RunningSimulator, startSimulator, SimulatorOptions } from "../../sim";

export interface Clients {
  sim: RunningSimulator;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  apps: k8s.AppsV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
}

export function clientsFor(kubeconfigPath: string): Omit<Clients, "sim"> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
  };
}

export async function startWithClients(options: SimulatorOptions = {}): Promise<Clients> {
  const sim = await startSimulator(options);
  return { sim, ...clientsFor(sim.kubeconfigPath) };
}

export interface StatusBody {
  kind: string;
  status: string;
  reason?: string;
  message?: string;
  code: number;
  details?: {
    name?: string;
    kind?: string;
    group?: string;
    causes?: { field?: string; reason: string }[];
    retryAfterSeconds?: number;
  };
}

/** Awaits a rejected client-node call and returns the Status body, checking code and reason. */
export async function expectStatus(p: Promise<unknown>, code: number, reason?: string): Promise<StatusBody> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: number; body?: unknown };
    assert.equal(err.code, code, `expected HTTP ${code}, got ${err.code}: ${String(err.body)}`);
    const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as StatusBody;
    assert.equal(body.kind, "Status");
    assert.equal(body.code, code);
    if (reason) assert.equal(body.reason, reason, body.message);
    return body;
  }
  assert.fail(`expected HTTP ${code} ${reason ?? ""}, but the call succeeded`);
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTPS request (keep-alive off), for checks of headers and raw bodies. */
export function raw(
  sim: RunningSimulator,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; contentType?: string; accept?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = opts.accept ? { Accept: opts.accept } : {};
    const token = opts.token === undefined ? sim.adminToken : opts.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    const payload =
      opts.body === undefined
        ? undefined
        : typeof opts.body === "string"
          ? opts.body
          : JSON.stringify(opts.body);
    if (payload !== undefined) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const req = (sim.url.startsWith("https:") ? https : http).request(
      `${sim.url}${path}`,
      { method, headers, agent: false, ca: sim.caPem },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${method} ${path}`)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export interface WatchEvent {
  type: string;
  object: {
    metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
    code?: number;
    reason?: string;
    message?: string;
    status?: unknown;
  };
}

/** Opens a raw watch stream; events are collected until close() or the server ends it. */
export function rawWatch(
  sim: RunningSimulator,
  path: string,
): { events: WatchEvent[]; ended: Promise<void>; close(): void } {
  const events: WatchEvent[] = [];
  let req: http.ClientRequest | undefined;
  const ended = new Promise<void>((resolve) => {
    req = (sim.url.startsWith("https:") ? https : http).get(
      `${sim.url}${path}`,
      { headers: { Authorization: `Bearer ${sim.adminToken}` }, agent: false, ca: sim.caPem },
      (res) => {
        let buf = "";
        res.on("data", (c: Buffer) => {
          buf += c.toString("utf8");
          let i: number;
          while ((i = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim()) events.push(JSON.parse(line) as WatchEvent);
          }
        });
        res.on("end", () => resolve());
        res.on("close", () => resolve());
        res.on("error", () => resolve());
      },
    );
    req.on("error", () => resolve());
  });
  return { events, ended, close: () => req?.destroy() };
}

/** Polls `check` (real time) until it returns true; fails after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${what} not reached within ${timeoutMs} ms`);
}

export function jobBody(
  name: string,
  node: string,
  extra: {
    labels?: Record<string, string>;
    spec?: Record<string, unknown>;
    initContainers?: k8s.V1Container[];
    containers?: k8s.V1Container[];
  } = {},
): k8s.V1Job {
  return {
    metadata: { name, labels: extra.labels },
    spec: {
      backoffLimit: 0,
      ...(extra.spec ?? {}),
      template: {
        metadata: { labels: { app: "kata-install" } },
        spec: {
          nodeName: node,
          restartPolicy: "Never",
          initContainers: extra.initContainers,
          containers: extra.containers ?? [
            { name: "install", image: "quay.io/kata-containers/kata-deploy:3.x" },
          ],
        },
      },
    },
  };
}
