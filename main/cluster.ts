// Where the main job runs: the embedded simulated cluster (default) or a real cluster from a kubeconfig; and
// applying the objects a `pulumi up` of KataDeploy creates before its rollout starts (what helm.v4.Chart
// applies, plus the component's own dispatcher ConfigMap and Role).
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

function describeObject(o: K8sObject): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;
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
      const code = (err as { code?: number }).code;
      if (code === 409) {
        const live = await api.read(spec as k8s.KubernetesObject & { metadata: { name: string } });
        await api.replace({
          ...spec,
          metadata: { ...spec.metadata, resourceVersion: live.metadata?.resourceVersion },
        });
      } else if (
        code === 404 ||
        /resource .* not found|Unrecognized API version and kind/i.test(String(err))
      ) {
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
