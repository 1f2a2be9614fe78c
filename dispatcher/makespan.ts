// One-off measurement (not part of npm test): a large fleet against the simulator, makespan vs the ideal
// ceil(N/P) x D. Usage: ts-node --transpile-only dispatcher/makespan.ts [nodes=10000] [parallelism=100]
// [durationSecs=120] [timeScale=60]. Prints one JSON line.
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { startSimulator } from "../sim";
import { silentLogger } from "./log";
import { runDispatcher } from "./run";

const TEMPLATE = `apiVersion: batch/v1
kind: Job
metadata: { labels: { kata-deploy/stage: install } }
spec:
  backoffLimit: 3
  ttlSecondsAfterFinished: 600000
  template:
    spec:
      restartPolicy: Never
      containers: [{ name: cri, image: quay.io/kata-containers/kata-deploy:3.32.0 }]
`;

export async function measureMakespan(
  nodes: number,
  parallelism: number,
  durationSecs: number,
  timeScale: number,
) {
  const sim = await startSimulator({
    fleet: {
      nodes: Array.from({ length: nodes }, (_, i) => ({
        name: `node-${String(i).padStart(5, "0")}`,
        labels: { "kubernetes.io/os": "linux" },
        outcome: { kind: "succeed" as const, durationMs: durationSecs * 1000 },
      })),
    },
    timeScale,
    podStartDelayMs: 0,
  });
  try {
    sim.create("jobs", {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "bench-dispatcher", namespace: "default" },
      spec: {
        suspend: true,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "d", image: "node" }] } },
      },
    });
    const file = path.join(mkdtempSync(path.join(tmpdir(), "makespan-")), "job.yaml");
    writeFileSync(file, TEMPLATE);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(sim.kubeconfigPath);
    const realStart = Date.now();
    const simStart = sim.now();
    const doc = await runDispatcher(
      {
        jobTemplate: file,
        namePrefix: "bench-install",
        ownerJobName: "bench-dispatcher",
        namespace: "default",
        parallelism,
      },
      { kubeConfig, logger: silentLogger },
    );
    const makespanMs = sim.now() - simStart;
    const idealMs = Math.ceil(nodes / parallelism) * durationSecs * 1000;
    const counts = sim.audit.requestCounts();
    return {
      nodes,
      parallelism,
      durationSecs,
      timeScale,
      exitCode: doc.exitCode,
      succeeded: doc.counts.succeeded,
      makespanSecs: makespanMs / 1000,
      idealSecs: idealMs / 1000,
      ratio: Number((makespanMs / idealMs).toFixed(3)),
      realSecs: (Date.now() - realStart) / 1000,
      peakActive: sim.audit.peakActiveJobsByOwner()["bench-install"],
      requests: Object.values(counts).reduce((a, b) => a + b, 0),
      requestCounts: counts,
    };
  } finally {
    await sim.close();
  }
}

if (require.main === module) {
  const [n = "10000", p = "100", d = "120", scale = "60"] = process.argv.slice(2);
  measureMakespan(Number(n), Number(p), Number(d), Number(scale)).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
