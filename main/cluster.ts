// Where the main job runs: the embedded simulated cluster (default) or a real cluster from a kubeconfig; applying
// the objects a `pulumi up` of KataDeploy creates before its rollout starts (what helm.v4.Chart applies, plus the
// component's own dispatcher ConfigMap and Role); and, for `--destroy`, finding and deleting those objects.
import * as k8s from "@kubernetes/client-node";
import { BUNDLED_DISPATCHER_IMAGE } from "../chart/dispatcherJobs";
import type { K8sObject } from "../chart/k8s";
import type { ConnectionSpec } from "../rollout/connection";
import { loadKubeConfig, resolveConnection } from "../rollout/resolveConnection";
import { startSimulator, type RunningSimulator } from "../sim";

export interface Target {
  /** The client configuration of everything `npm start` itself reads and applies. */
  kubeConfig: k8s.KubeConfig;
  /** The rollout's connection, resolved as the component resolves its `kubeconfig` argument. */
  connection: ConnectionSpec;
  /** The simulator when running on it; undefined on a real cluster. */
  sim?: RunningSimulator;
  /** The kubeconfig file the simulator wrote (it carries the simulator's CA); undefined on a real cluster. */
  kubeconfigPath?: string;
  describe: string;
  close(): Promise<void>;
}

export interface SimulatedFleet {
  nodes: number;
  seed: number;
  controlPlane: number;
  tainted: number;
  failRate: number;
  /** Workers whose first install attempt fails (then succeed on retry). */
  failOnce: number;
  timeScale: number;
  jobDurationMs: number;
  fleet?: string;
}

export async function startSimulatedCluster(f: SimulatedFleet): Promise<Target> {
  const sim = await startSimulator({
    nodes: f.nodes,
    seed: f.seed,
    controlPlane: f.controlPlane,
    tainted: f.tainted,
    failRate: f.failRate,
    timeScale: f.timeScale,
    jobDurationMs: f.jobDurationMs,
    fleet: f.fleet,
    // The dispatcher runs as chart 4.0.0 runs it: its own ServiceAccount, RBAC enforced, its real process.
    authz: true,
    execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 30 * 60_000 },
  });
  if (!f.fleet && f.failOnce > 0) {
    const workers = sim
      .list("nodes", { labelSelector: "!node-role.kubernetes.io/control-plane" })
      .filter((n) => !(n.spec?.taints as unknown[] | undefined)?.length)
      .map((n) => n.metadata.name as string);
    // Spread evenly over the fleet so the retries show up all along the rollout.
    const step = Math.max(1, Math.floor(workers.length / f.failOnce));
    for (let i = 0; i < f.failOnce && i * step < workers.length; i++) {
      sim.setOutcome(workers[i * step], {
        kind: "failThenSucceed",
        failures: 1,
        failure: { container: "host-check", message: "transient: containerd did not answer in time" },
      });
    }
  }
  const nodes = sim.list("nodes").length;
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(sim.kubeconfigPath);
  return {
    kubeConfig,
    connection: resolveConnection({ kubeconfig: sim.kubeconfigPath }),
    kubeconfigPath: sim.kubeconfigPath,
    sim,
    describe: `simulated cluster at ${sim.url}: ${nodes} nodes, time x${f.timeScale}`,
    close: () => sim.close(),
  };
}

/**
 * A real cluster from a kubeconfig given as the component's `kubeconfig` argument is (YAML, base64 of it, or a
 * file path): loaded by the rollout's own loader, whose errors never repeat the value.
 */
export function realCluster(kubeconfigArgument: string): Target {
  const { kc } = loadKubeConfig({ kubeconfig: kubeconfigArgument });
  return {
    kubeConfig: kc,
    connection: resolveConnection({ kubeconfig: kubeconfigArgument }),
    describe: `cluster ${kc.getCurrentCluster()?.server ?? "?"} (context ${kc.getCurrentContext()})`,
    close: async () => undefined,
  };
}

export interface ApplyReport {
  applied: string[];
  /** Kinds this API server does not serve (e.g. RuntimeClass on the simulator). */
  skipped: string[];
}

export function describeObject(o: K8sObject): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;
}

/** The API server does not serve this kind (the simulator has no RuntimeClass, for instance). */
function unservedKind(err: unknown): boolean {
  return /resource .* not found|Unrecognized API version and kind/i.test(String(err));
}

function errorCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/** The error's message with its network cause (fetch says only "fetch failed": ECONNREFUSED is in the cause). */
function errorText(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message;
  return `${(err as Error).message}${why ? ` (${why})` : ""}`;
}

/** Create each object, or replace it when it exists (an upgrade), in the given order. */
export async function applyObjects(kc: k8s.KubeConfig, objects: readonly K8sObject[]): Promise<ApplyReport> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const report: ApplyReport = { applied: [], skipped: [] };
  for (const object of objects) {
    const spec = object as unknown as k8s.KubernetesObject;
    try {
      await api.create(spec);
    } catch (err) {
      const code = errorCode(err);
      if (code === 409) {
        const live = await api.read(spec as k8s.KubernetesObject & { metadata: { name: string } });
        await api.replace({
          ...spec,
          metadata: { ...spec.metadata, resourceVersion: live.metadata?.resourceVersion },
        });
      } else if (code === 404 || unservedKind(err)) {
        report.skipped.push(describeObject(object));
        continue;
      } else {
        throw new Error(`cannot apply ${describeObject(object)}: ${(err as Error).message}`);
      }
    }
    report.applied.push(describeObject(object));
  }
  return report;
}

/** Where each object stands in the cluster (by `describeObject`). */
export interface Presence {
  present: K8sObject[];
  absent: K8sObject[];
  /** Kinds this API server does not serve. */
  unserved: K8sObject[];
}

/** Reads each object (GET): present, absent (404), or of a kind not served. Other errors are thrown. */
export async function findObjects(kc: k8s.KubeConfig, objects: readonly K8sObject[]): Promise<Presence> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const found: Presence = { present: [], absent: [], unserved: [] };
  for (const object of objects) {
    try {
      await api.read(object as unknown as k8s.KubernetesObject & { metadata: { name: string } });
      found.present.push(object);
    } catch (err) {
      if (unservedKind(err)) found.unserved.push(object);
      else if (errorCode(err) === 404) found.absent.push(object);
      else throw new Error(`cannot read ${describeObject(object)}: ${errorText(err)}`);
    }
  }
  return found;
}

export interface DeleteReport {
  deleted: string[];
  /** Not there (404): deleted before, or never applied. */
  absent: string[];
  /** Kinds this API server does not serve (never applied either). */
  skipped: string[];
}

/**
 * Deletes each object in the given order as the Kubernetes provider deletes a resource (foreground propagation:
 * the object goes once its dependents are gone), without waiting for it to be gone.
 */
export async function deleteObjects(
  kc: k8s.KubeConfig,
  objects: readonly K8sObject[],
): Promise<DeleteReport> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const report: DeleteReport = { deleted: [], absent: [], skipped: [] };
  for (const object of objects) {
    try {
      await api.delete(object, undefined, undefined, undefined, undefined, "Foreground");
      report.deleted.push(describeObject(object));
    } catch (err) {
      if (unservedKind(err)) report.skipped.push(describeObject(object));
      else if (errorCode(err) === 404) report.absent.push(describeObject(object));
      else throw new Error(`cannot delete ${describeObject(object)}: ${errorText(err)}`);
    }
  }
  return report;
}

/** Deletes an object and waits until it is gone (a Namespace goes once its content is deleted); false at the deadline. */
export async function deleteAndWaitGone(
  kc: k8s.KubeConfig,
  object: K8sObject,
  deadline: number,
): Promise<boolean> {
  await deleteObjects(kc, [object]);
  for (let i = 0; ; i++) {
    if ((await findObjects(kc, [object])).present.length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 50 * 2 ** Math.min(i, 5))));
  }
}
