// kube-sim: an in-process Kubernetes API simulator speaking the real REST protocol on 127.0.0.1.
// startSimulator() wires the store, the controllers (Job, DaemonSet, kubelet/node lifecycle, TTL, GC),
// the HTTP server, authentication/RBAC, faults and the audit log. See sim/README.md.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify as toYaml } from "yaml";
import { AuditLog } from "./audit";
import { LatencyProbe } from "./latency";
import { serviceAccountUser, UserInfo } from "./authz";
import { SimClock } from "./clock";
import { DaemonSetController } from "./controllers/daemonset";
import { JobController } from "./controllers/job";
import { Kubelet } from "./controllers/kubelet";
import { NodeLifecycle } from "./controllers/nodeLifecycle";
import { PodGc } from "./controllers/podGc";
import { TaintEviction } from "./controllers/taintEviction";
import { Scheduler } from "./controllers/scheduler";
import { NodeProcessExecutor } from "./executor";
import { FaultInjector, seededRandom } from "./faults";
import { cloneJson } from "./json";
import { buildFleet } from "./fleet";
import { RESOURCES } from "./resources";
import { applyJsonPatch, applyMergePatch } from "./patch";
import { ApiServer } from "./server";
import { generatePki } from "./tls";
import { parseSelectors, Store } from "./store";
import { selectableFields } from "./resources";
import type {
  DirectListOptions,
  KubeObject,
  OutcomeProgram,
  ResourceName,
  Simulator,
  SimulatorOptions,
} from "./types";

export * from "./types";
export {
  FleetFileError,
  parseFleetFile,
  readFleetFile,
  generateNodeNames,
  CONTROL_PLANE_LABEL,
  WORKER_LABEL,
  DEDICATED_TAINT,
  GENERATED_FAILURE_MESSAGE,
} from "./fleet";
export { EXECUTE_LABEL } from "./executor";
export { JOB_TRACKING_FINALIZER } from "./controllers/job";
export { OWNER_LABEL } from "./audit";

const INITIAL_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** The simulator with its extra controls (beyond the Simulator interface other parts code against). */
export interface RunningSimulator extends Simulator {
  /** Turns a node NotReady (Ready=Unknown + unreachable taints), as when its kubelet stops. */
  setNodeNotReady(node: string): void;
  /** Brings a node back to Ready and removes the unreachable/not-ready taints. */
  setNodeReady(node: string): void;
  /** Pod attempts begun on a node so far. */
  attemptsOn(node: string): number;
}

interface KubeconfigTarget {
  server: string;
  caPem: string;
  plainHttp: boolean;
}

function writeKubeconfig(
  file: string,
  target: KubeconfigTarget,
  user: string,
  token: string,
  namespace: string,
): void {
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "kube-sim",
        cluster: target.plainHttp
          ? { server: target.server, "insecure-skip-tls-verify": true }
          : {
              server: target.server,
              "certificate-authority-data": Buffer.from(target.caPem).toString("base64"),
            },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "kube-sim", context: { cluster: "kube-sim", user, namespace } }],
    "current-context": "kube-sim",
    preferences: {},
  };
  fs.writeFileSync(file, toYaml(config), { mode: 0o600 });
}

/** Starts kube-sim. Resolves once it listens. Call close() to stop it (tests must). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const seed = options.seed ?? 1;
  const timeScale = options.timeScale ?? 1;
  const jobDurationMs = options.jobDurationMs ?? 120_000;
  const clock = new SimClock(options.startTime ?? Date.now(), timeScale);
  const ownsWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kube-sim-"));
  fs.mkdirSync(workDir, { recursive: true });

  const store = new Store(clock, {
    watchHistory: options.watchHistory ?? 10_000,
    continueTtlMs: options.continueTtlMs ?? 300_000,
  });
  store.random = seededRandom(seed ^ 0x5eed);
  const audit = new AuditLog(options.auditRequestLimit ?? 200_000, () => clock.now());
  store.onEvent((e) => audit.onEvent(e));
  const latency = new LatencyProbe();
  const faults = new FaultInjector(seed);
  if (options.faults) faults.set(options.faults);

  // Tokens
  const adminToken = `kube-sim-admin-${randomBytes(16).toString("hex")}`;
  const tokens = new Map<string, UserInfo>([
    [adminToken, { name: "admin", groups: ["system:masters", "system:authenticated"], admin: true }],
  ]);
  const tokenBySa = new Map<string, string>();
  const tokenFor = (namespace: string, name: string): string => {
    const id = `${namespace}/${name}`;
    let token = tokenBySa.get(id);
    if (!token) {
      token = `kube-sim-sa-${randomBytes(16).toString("hex")}`;
      tokenBySa.set(id, token);
      tokens.set(token, serviceAccountUser(namespace, name));
    }
    return token;
  };

  // Fleet and initial objects
  const initialTime = clock.iso();
  const fleet = buildFleet(options, initialTime);
  const outcomes = fleet.outcomes;
  const outcomeFor = (node: string): OutcomeProgram => outcomes.get(node) ?? fleet.defaultOutcome;
  store.bulkInsert(
    "namespaces",
    INITIAL_NAMESPACES.map((name) => ({
      metadata: { name, labels: { "kubernetes.io/metadata.name": name }, creationTimestamp: initialTime },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    })),
  );
  store.bulkInsert(
    "serviceaccounts",
    INITIAL_NAMESPACES.map((namespace) => ({
      metadata: { name: "default", namespace, creationTimestamp: initialTime },
    })),
  );
  store.bulkInsert(
    "nodes",
    fleet.nodes.map((n) => ({ ...n, metadata: { ...n.metadata, creationTimestamp: initialTime } })),
  );

  // Controllers
  let kubeconfigForRef: (ns: string, sa: string) => string = () => "";
  const executor = options.execute
    ? new NodeProcessExecutor(store, options.execute, (ns, sa) => kubeconfigForRef(ns, sa))
    : undefined;
  const kubelet = new Kubelet(store, clock, {
    jobDurationMs,
    podStartDelayMs: options.podStartDelayMs ?? 1000,
    terminationDelayMs: 1000,
    outcomeFor,
    executor,
    disrupt: (node, kind) =>
      kind === "nodeNotReady" ? nodeLifecycle.setNodeNotReady(node) : nodeLifecycle.deleteNode(node),
  });
  const podsOn = (node: string): Iterable<string> => kubelet.podsOn(node);
  const nodeLifecycle = new NodeLifecycle(store, clock, podsOn);
  const taintEviction = new TaintEviction(store, clock, podsOn);
  const podGc = new PodGc(store, clock, 20_000, podsOn);
  const jobs = new JobController(store, clock);
  const daemonsets = new DaemonSetController(store);
  const scheduler = new Scheduler(store, clock);
  store.onEvent((e) => scheduler.onEvent(e));
  // Node-side controllers see a node change in this order: evictions, the kubelet, pods marked not Ready, PodGC.
  store.onEvent((e) => taintEviction.onEvent(e));
  store.onEvent((e) => kubelet.onEvent(e));
  store.onEvent((e) => nodeLifecycle.onEvent(e));
  store.onEvent((e) => podGc.onEvent(e));
  store.onEvent((e) => jobs.onEvent(e));
  store.onEvent((e) => daemonsets.onEvent(e));
  // ServiceAccount controller: every new namespace gets its "default" ServiceAccount.
  store.onEvent((e) => {
    if (e.resource !== "namespaces" || e.type !== "ADDED") return;
    const ns = e.object.metadata.name ?? "";
    setImmediate(() => {
      if (store.peek("namespaces", undefined, ns) && !store.peek("serviceaccounts", ns, "default")) {
        try {
          store.create("serviceaccounts", { metadata: { name: "default" } }, ns);
        } catch {
          // namespace went away meanwhile
        }
      }
    });
  });
  // waitFor predicates run once per burst of writes (coalesced), not once per write.
  const waiters = new Set<() => void>();
  let waitersScheduled = false;
  store.onEvent(() => {
    if (waitersScheduled || waiters.size === 0) return;
    waitersScheduled = true;
    setImmediate(() => {
      waitersScheduled = false;
      for (const w of [...waiters]) w();
    });
  });

  // Server
  const pki = await generatePki(Date.now());
  const caPath = path.join(workDir, "ca.crt");
  fs.writeFileSync(caPath, pki.caPem);
  let port = 0;
  const server = new ApiServer({
    store,
    audit,
    latency,
    faults,
    authz: options.authz === true,
    now: () => clock.now(),
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000,
    tls: options.plainHttp ? undefined : { cert: pki.certPem, key: pki.keyPem },
    authenticate: (token) => (token ? tokens.get(token) : undefined),
    userNamed: (name) => [...tokens.values()].find((u) => u.name === name),
    tokenFor,
    podLog: (ns, name) => executor?.log(ns, name),
    simEndpoints: {
      healthz: () => ({ ok: true, resourceVersion: store.currentResourceVersion(), now: clock.now() }),
      "audit/requests": (q) => {
        const filter: Record<string, string | number> = {};
        for (const k of ["verb", "resource", "namespace", "user"])
          if (q.get(k)) filter[k] = q.get(k) as string;
        if (q.get("code")) filter.code = Number(q.get("code"));
        return audit.requests(filter);
      },
      "audit/request-counts": () => audit.requestCounts(),
      "audit/transitions": (q) => audit.transitions(q.get("resource") ?? undefined),
      "audit/peak-active-jobs": () => audit.peakActiveJobsByOwner(),
      "audit/timeline": (q) => audit.activeJobsTimeline(q.get("owner") ?? undefined),
      "audit/jobs-by-node": () => audit.jobsByNode(),
      faults: () => ({ config: faults.current(), injected: faults.injected() }),
      executions: () => executor?.executions() ?? [],
    },
  });
  port = await server.listen(options.port ?? 0);
  const plainHttp = options.plainHttp === true;
  const url = `${plainHttp ? "http" : "https"}://127.0.0.1:${port}`;
  const target: KubeconfigTarget = { server: url, caPem: pki.caPem, plainHttp };
  const kubeconfigPath = path.join(workDir, "kubeconfig-admin.yaml");
  writeKubeconfig(kubeconfigPath, target, "admin", adminToken, "default");
  const kubeconfigFor = (namespace: string, name: string): string => {
    const file = path.join(workDir, `kubeconfig-${namespace}-${name}.yaml`);
    if (!fs.existsSync(file))
      writeKubeconfig(
        file,
        target,
        `system:serviceaccount:${namespace}:${name}`,
        tokenFor(namespace, name),
        namespace,
      );
    return file;
  };
  kubeconfigForRef = kubeconfigFor;

  const info = (resource: ResourceName) => RESOURCES[resource];
  const copy = (o: KubeObject | undefined): KubeObject | undefined => (o ? cloneJson(o) : undefined);
  let closed = false;

  const sim: RunningSimulator = {
    url,
    port,
    caPem: pki.caPem,
    caPath,
    kubeconfigPath,
    adminToken,
    tokenFor,
    kubeconfigFor,
    audit,
    latency,
    connectionsOpened: () => server.connectionsOpened,
    faults,
    now: () => clock.now(),
    sleep: (ms) => clock.sleep(ms),
    get: (resource, namespace, name) => copy(store.peek(resource, namespace, name)),
    list: (resource: ResourceName, opts: DirectListOptions = {}) => {
      const { label, field } = parseSelectors(info(resource), opts.labelSelector, opts.fieldSelector);
      return store
        .all(resource, opts.namespace)
        .filter(
          (o) =>
            (!label || label.matches(o.metadata.labels)) &&
            (!field || field.matches(selectableFields(info(resource), o))),
        )
        .map((o) => cloneJson(o));
    },
    create: (resource, object) => cloneJson(store.create(resource, object, object.metadata.namespace)),
    update: (resource, object) => {
      const name = object.metadata.name ?? "";
      const ns = object.metadata.namespace;
      let written = store.update(resource, object, ns, name);
      // Status goes through the status path (a spec write keeps the stored status).
      if (object.status !== undefined && info(resource).hasStatus && store.peek(resource, ns, name))
        written = store.update(resource, { metadata: {}, status: object.status }, ns, name, "status");
      // The write may have completed a deletion (last finalizer removed): then the last state is returned.
      return cloneJson(store.peek(resource, ns, name) ?? written);
    },
    patch: (resource, namespace, name, patch) => {
      // Direct patches reach spec and status alike: patch the whole object, then write both parts.
      const current = store.get(resource, namespace, name);
      const target = (
        Array.isArray(patch) ? applyJsonPatch(current, patch) : applyMergePatch(current, patch)
      ) as KubeObject;
      target.metadata = { ...target.metadata, resourceVersion: undefined };
      return sim.update(resource, target);
    },
    delete: (resource, namespace, name, opts = {}) => {
      store.delete(resource, namespace, name, opts);
    },
    setOutcome: (node, program) => {
      outcomes.set(node, program);
    },
    executions: () => executor?.executions() ?? [],
    waitFor: (predicate, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (predicate()) return resolve();
        const check = (): void => {
          if (!predicate()) return;
          cleanup();
          resolve();
        };
        const poll = setInterval(check, 25);
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`waitFor: condition not met within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = (): void => {
          waiters.delete(check);
          clearInterval(poll);
          clearTimeout(timer);
        };
        waiters.add(check);
      }),
    setNodeNotReady: (node) => nodeLifecycle.setNodeNotReady(node),
    setNodeReady: (node) => nodeLifecycle.setNodeReady(node),
    attemptsOn: (node) => kubelet.attemptsOn(node),
    close: async () => {
      if (closed) return;
      closed = true;
      clock.close();
      kubelet.close();
      jobs.close();
      daemonsets.close();
      executor?.close();
      faults.close();
      store.close();
      await server.close();
      if (ownsWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
  return sim;
}
