// Real execution of Job pods whose container is a Node.js program: the pod's ConfigMap (and emptyDir)
// volumes are materialized into a temporary folder, mount paths in command/args/env are rewritten to
// it, and the program runs under process.execPath with POD_NAMESPACE, POD_NAME, NODE_NAME and a
// KUBECONFIG for the pod's ServiceAccount token. Its exit code decides the container's outcome.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ExecutionHandle, PodExecutor } from "./controllers/kubelet";
import type { Store } from "./store";
import type { ExecuteOptions, ExecutionRecord, KubeObject } from "./types";

export const EXECUTE_LABEL = "kube-sim/execute";
const OUTPUT_LIMIT = 1 << 20;
const TERMINATION_MESSAGE_BYTES = 2048;
const TERMINATION_MESSAGE_LINES = 80;

type Rec = Record<string, unknown>;

interface ContainerDef {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

/** kubelet's FallbackToLogsOnError: the last 80 lines or 2048 bytes of the log, whichever is shorter. */
export function terminationMessageTail(log: string): string {
  const lines = log.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let tail = lines.slice(-TERMINATION_MESSAGE_LINES).join("\n");
  if (Buffer.byteLength(tail) > TERMINATION_MESSAGE_BYTES)
    tail = Buffer.from(tail).subarray(-TERMINATION_MESSAGE_BYTES).toString("utf8");
  return tail;
}

function rewrite(value: string, mounts: [string, string][]): string {
  let out = value;
  for (const [from, to] of mounts) out = out.split(from).join(to);
  return out;
}

export class NodeProcessExecutor implements PodExecutor {
  private readonly records: ExecutionRecord[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(
    private readonly store: Store,
    private readonly options: ExecuteOptions,
    private readonly kubeconfigFor: (namespace: string, serviceAccount: string) => string,
  ) {}

  executions(): ExecutionRecord[] {
    return this.records.map((r) => ({ ...r, command: [...r.command] }));
  }

  /** stdout+stderr of the newest execution of a pod (for GET pods/<name>/log). */
  log(namespace: string, pod: string): string | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      if (r.namespace === namespace && r.pod === pod) return r.stdout + r.stderr;
    }
    return undefined;
  }

  shouldExecute(pod: KubeObject): boolean {
    if (pod.metadata.labels?.[EXECUTE_LABEL] === "true") return true;
    const first = ((pod.spec?.containers as ContainerDef[] | undefined) ?? [])[0];
    if (!first) return false;
    // An entry ending in "*" matches by prefix (e.g. "docker.io/library/node:*").
    return (this.options.nodeImages ?? []).some((pattern) =>
      pattern.endsWith("*") ? first.image.startsWith(pattern.slice(0, -1)) : first.image === pattern,
    );
  }

  close(): void {
    for (const c of this.children) c.kill("SIGKILL");
  }

  run(pod: KubeObject, onExit: (exitCode: number, message: string) => void): ExecutionHandle {
    const namespace = pod.metadata.namespace ?? "default";
    const container = ((pod.spec?.containers as ContainerDef[] | undefined) ?? [])[0];
    const record: ExecutionRecord = {
      namespace,
      pod: pod.metadata.name ?? "",
      job: pod.metadata.ownerReferences?.find((r) => r.kind === "Job")?.name,
      node: pod.spec?.nodeName as string | undefined,
      command: [],
      exitCode: null,
      signal: null,
      stdout: "",
      stderr: "",
      startedAt: Date.now(),
    };
    this.records.push(record);
    const fail = (message: string): ExecutionHandle => {
      record.stderr += message;
      record.exitCode = 1;
      record.finishedAt = Date.now();
      setImmediate(() => onExit(1, message));
      return { kill: () => undefined };
    };
    if (!container) return fail("pod has no container");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kube-sim-pod-"));
    const volumeDirs = new Map<string, string>();
    for (const v of (pod.spec?.volumes as Rec[] | undefined) ?? []) {
      const name = v.name as string;
      const folder = path.join(dir, `vol-${name}`);
      fs.mkdirSync(folder, { recursive: true });
      volumeDirs.set(name, folder);
      const cmRef = v.configMap as
        { name: string; items?: { key: string; path: string }[]; optional?: boolean } | undefined;
      if (!cmRef) continue;
      const cm = this.store.peek("configmaps", namespace, cmRef.name);
      if (!cm) {
        if (cmRef.optional) continue;
        return fail(`MountVolume.SetUp failed for volume "${name}" : configmap "${cmRef.name}" not found`);
      }
      const data = (cm.data as Record<string, string> | undefined) ?? {};
      const items = cmRef.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        const target = path.join(folder, item.path);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, data[item.key] ?? "");
      }
    }
    // Longest mount paths first, so /etc/a/b is rewritten before /etc/a.
    const mounts: [string, string][] = (container.volumeMounts ?? [])
      .filter((m) => volumeDirs.has(m.name))
      .map((m): [string, string] => [
        m.mountPath,
        m.subPath
          ? path.join(volumeDirs.get(m.name) as string, m.subPath)
          : (volumeDirs.get(m.name) as string),
      ])
      .sort((a, b) => b[0].length - a[0].length);
    const argv = [...(container.command ?? []), ...(container.args ?? [])].map((a) => rewrite(a, mounts));
    if (argv.length > 0 && /(^|\/)(node|nodejs)$/.test(argv[0])) argv.shift();
    record.command = [process.execPath, ...argv];
    const serviceAccount = (pod.spec?.serviceAccountName as string | undefined) ?? "default";
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      POD_NAMESPACE: namespace,
      POD_NAME: pod.metadata.name ?? "",
      NODE_NAME: (pod.spec?.nodeName as string | undefined) ?? "",
      KUBECONFIG: this.kubeconfigFor(namespace, serviceAccount),
      ...(this.options.env ?? {}),
    };
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = rewrite(e.value, mounts);
      else if (e.valueFrom?.fieldRef) {
        const f = e.valueFrom.fieldRef.fieldPath;
        env[e.name] =
          f === "metadata.namespace"
            ? namespace
            : f === "metadata.name"
              ? (pod.metadata.name ?? "")
              : f === "spec.nodeName"
                ? String(pod.spec?.nodeName ?? "")
                : "";
      }
    }
    const child = spawn(process.execPath, argv, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.children.add(child);
    const append = (field: "stdout" | "stderr") => (chunk: Buffer) => {
      if (record[field].length < OUTPUT_LIMIT) record[field] += chunk.toString("utf8");
    };
    child.stdout?.on("data", append("stdout"));
    child.stderr?.on("data", append("stderr"));
    const timeout = setTimeout(() => terminate(), this.options.timeoutMs ?? 120_000);
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 2000);
      killTimer.unref();
    };
    child.on("error", (err) => {
      record.stderr += String(err.message);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      this.children.delete(child);
      record.exitCode = code;
      record.signal = signal;
      record.finishedAt = Date.now();
      fs.rm(dir, { recursive: true, force: true }, () => undefined);
      const exitCode = code ?? (signal === "SIGKILL" ? 137 : 143);
      onExit(exitCode, exitCode === 0 ? "" : terminationMessageTail(record.stderr || record.stdout));
    });
    return { kill: terminate };
  }
}
