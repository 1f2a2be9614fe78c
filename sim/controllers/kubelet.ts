// The simulated kubelets: one per node runs the pods bound to it through the node's outcome program (or for
// real, through the executor): admission, container start, init containers, restarts, termination
// (kubernetes-api-facts.md §6, §7). A kubelet whose node is not Ready does nothing until it is back; one
// whose node is deleted stops its pods' processes. The control-plane loops that act on nodes live next to it:
// nodeLifecycle.ts, taintEviction.ts, podGc.ts.
import { firstUntoleratedTaint, Taint, Toleration } from "../../kube/tolerations";
import type { SimClock } from "../clock";
import type { Store, StoreEvent } from "../store";
import type { ContainerFailure, KubeObject, OutcomeProgram } from "../types";
import { kataRuntimeLabelEffect, withKataRuntimeLabel } from "./kataDeployEffects";
import { currentPod, deletePod, nodeReady, podKey, writePod } from "./podAccess";
import {
  Condition,
  containersOf,
  ContainerSpec,
  ContainerState,
  containerStatus,
  isPodTerminal,
  podConditions,
  setCondition,
} from "./podStatus";

type Rec = Record<string, unknown>;

export interface ExecutionHandle {
  /** SIGTERM the process (pod deleted). */
  kill(): void;
}

/** Decides and runs real executions (see ExecuteOptions). */
export interface PodExecutor {
  shouldExecute(pod: KubeObject): boolean;
  run(pod: KubeObject, onExit: (exitCode: number, message: string) => void): ExecutionHandle;
}

export interface KubeletOptions {
  jobDurationMs: number;
  podStartDelayMs: number;
  /** Simulated ms a deleted pod's containers take to stop after SIGTERM. */
  terminationDelayMs: number;
  outcomeFor(node: string): OutcomeProgram;
  /** An outcome program's disruption of the node (the node lifecycle controller carries it out). */
  disrupt(node: string, kind: "nodeNotReady" | "nodeDeleted"): void;
  executor?: PodExecutor;
}

interface PodRun {
  cancels: (() => void)[];
  execution?: ExecutionHandle;
  /** Set while a deleted pod's real process is being stopped: its exit ends the termination. */
  onStopped?: (exitCode: number) => void;
}

export class Kubelet {
  private readonly runs = new Map<string, PodRun>();
  /** node → keys of pods bound to it */
  private readonly podsByNode = new Map<string, Set<string>>();
  /** node → number of attempts (container runs) begun on it, for failThenSucceed */
  private readonly attempts = new Map<string, number>();
  /** pod key → the node's outcome program when the pod was created (setOutcome affects later pods). */
  private readonly programs = new Map<string, OutcomeProgram>();

  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
    private readonly options: KubeletOptions,
  ) {}

  /** Keys of the pods bound to a node (also read by node lifecycle, taint eviction and PodGC). */
  podsOn(node: string): Iterable<string> {
    return this.podsByNode.get(node) ?? [];
  }

  attemptsOn(node: string): number {
    return this.attempts.get(node) ?? 0;
  }

  close(): void {
    for (const run of this.runs.values()) {
      run.cancels.forEach((c) => c());
      run.execution?.kill();
    }
    this.runs.clear();
  }

  onEvent(e: StoreEvent): void {
    if (e.resource === "pods") this.onPod(e);
    else if (e.resource === "nodes") this.onNode(e);
  }

  // -------------------------------------------------------------------------------------------------
  // Pods

  private onPod(e: StoreEvent): void {
    const pod = e.object;
    const key = podKey(pod);
    const node = pod.spec?.nodeName as string | undefined;
    if (e.type === "DELETED") {
      this.stopRun(key, true);
      this.programs.delete(key);
      if (node) this.podsByNode.get(node)?.delete(key);
      return;
    }
    if (!node) return;
    let set = this.podsByNode.get(node);
    if (!set) this.podsByNode.set(node, (set = new Set()));
    set.add(key);
    // A pod arrives on this node when it is created bound, or when the scheduler binds it.
    if (e.type === "ADDED" || !e.previous?.spec?.nodeName) {
      this.programs.set(key, this.options.outcomeFor(node));
      this.clock.after(0, () => this.admit(key));
      return;
    }
    if (pod.metadata.deletionTimestamp && !e.previous?.metadata.deletionTimestamp) this.beginTermination(key);
  }

  private programOf(key: string, nodeName: string): OutcomeProgram {
    return this.programs.get(key) ?? this.options.outcomeFor(nodeName);
  }

  private current(key: string): KubeObject | undefined {
    return currentPod(this.store, key);
  }

  private write(key: string, fn: (draft: KubeObject) => boolean | void): KubeObject | undefined {
    return writePod(this.store, key, fn);
  }

  private run(key: string): PodRun {
    let r = this.runs.get(key);
    if (!r) this.runs.set(key, (r = { cancels: [] }));
    return r;
  }

  private after(key: string, simMs: number, fn: () => void): void {
    this.run(key).cancels.push(this.clock.after(simMs, fn));
  }

  private stopRun(key: string, kill: boolean): void {
    const r = this.runs.get(key);
    if (!r) return;
    r.cancels.forEach((c) => c());
    r.cancels = [];
    if (kill) r.execution?.kill();
    this.runs.delete(key);
  }

  /** Kubelet admission (predicate.go): NoExecute taints, node selector, then the program's own refusal. */
  private admit(key: string): void {
    const pod = this.current(key);
    if (!pod || isPodTerminal(pod) || pod.metadata.deletionTimestamp || pod.status?.startTime) return;
    const nodeName = pod.spec?.nodeName as string;
    const node = this.store.peek("nodes", undefined, nodeName);
    if (!node) return; // no kubelet: PodGC collects the pod
    if (!nodeReady(node)) return; // kubelet down: the pod waits, Pending
    const tolerations = (pod.spec?.tolerations as Toleration[] | undefined) ?? [];
    const taints = (node.spec?.taints as Taint[] | undefined) ?? [];
    const blocking = firstUntoleratedTaint(taints, tolerations, ["NoExecute"]);
    if (blocking) {
      const shown = blocking.value ? `{${blocking.key}: ${blocking.value}}` : `{${blocking.key}: }`;
      return this.reject(
        key,
        "TaintToleration",
        `Predicate TaintToleration failed: node(s) had untolerated taint ${shown}`,
      );
    }
    const selector = (pod.spec?.nodeSelector as Record<string, string> | undefined) ?? {};
    const labels = node.metadata.labels ?? {};
    if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) {
      return this.reject(
        key,
        "NodeAffinity",
        "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
      );
    }
    const program = this.programOf(key, nodeName);
    if (program.kind === "rejectAdmission") {
      const reason = program.reason ?? "OutOfcpu";
      return this.reject(
        key,
        reason,
        program.message ??
          `Pod was rejected: Node didn't have enough resource: cpu, requested: 250, used: 3900, capacity: 4000`,
      );
    }
    this.accept(key, node, program);
  }

  private reject(key: string, reason: string, message: string): void {
    this.write(key, (p) => {
      const now = this.clock.iso();
      p.status = {
        ...(p.status ?? {}),
        phase: "Failed",
        reason,
        message,
        startTime: now,
        conditions: setCondition(
          (p.status?.conditions as Condition[]) ?? [],
          { type: "PodScheduled", status: "True" },
          now,
        ),
      };
    });
  }

  private accept(key: string, node: KubeObject, program: OutcomeProgram): void {
    const pod = this.write(key, (p) => {
      const now = this.clock.iso();
      const { init, main } = containersOf(p);
      const uid = p.metadata.uid ?? "";
      const addresses = (node.status?.addresses as { type: string; address: string }[] | undefined) ?? [];
      const hostIP = addresses.find((a) => a.type === "InternalIP")?.address ?? "10.0.0.1";
      p.status = {
        ...(p.status ?? {}),
        phase: "Pending",
        hostIP,
        hostIPs: [{ ip: hostIP }],
        startTime: now,
        conditions: podConditions((p.status?.conditions as Condition[]) ?? [], now, {
          initialized: init.length === 0,
          ready: false,
          sandbox: false,
        }),
        containerStatuses: main.map((c) =>
          containerStatus(
            c,
            { waiting: { reason: init.length > 0 ? "PodInitializing" : "ContainerCreating" } },
            { podUid: uid },
          ),
        ),
      };
      if (init.length > 0) {
        p.status.initContainerStatuses = init.map((c) =>
          containerStatus(c, { waiting: { reason: "PodInitializing" } }, { podUid: uid }),
        );
      }
    });
    if (!pod) return;
    this.after(key, this.options.podStartDelayMs, () => this.startContainers(key, program));
  }

  private startContainers(key: string, program: OutcomeProgram): void {
    const pod = this.current(key);
    if (!pod || pod.metadata.deletionTimestamp || isPodTerminal(pod)) return;
    const nodeName = pod.spec?.nodeName as string;
    if (!nodeReady(this.store.peek("nodes", undefined, nodeName))) return;
    const { init, main } = containersOf(pod);
    if (program.kind === "imagePullError") return this.imagePullFailure(key, program, init, main);
    const attempt = (this.attempts.get(nodeName) ?? 0) + 1;
    this.attempts.set(nodeName, attempt);
    if (program.kind === "nodeNotReady" || program.kind === "nodeDeleted") {
      // The disruption hits once, `afterMs` after the first pod started on the node.
      if (attempt === 1) {
        const afterMs = program.afterMs ?? this.options.jobDurationMs / 2;
        this.clock.after(afterMs, () => this.options.disrupt(nodeName, program.kind));
      }
    }
    const executor = this.options.executor;
    if (executor?.shouldExecute(pod)) {
      this.setRunning(key, undefined, true);
      const run = this.run(key);
      run.execution = executor.run(pod, (exitCode, message) => {
        run.execution = undefined;
        if (run.onStopped) return run.onStopped(exitCode);
        this.finishAttempt(
          key,
          exitCode === 0 ? undefined : { container: main[0]?.name, exitCode, message, reason: "Error" },
        );
      });
      return;
    }
    const failure = this.failureFor(program, attempt, init, main);
    const failingInit = !!failure && init.some((c) => c.name === failure.container);
    // Running containers are Ready (no probes), except daemons (restartPolicy Always) that will crash or hang:
    // their readiness never passes.
    const restartPolicy = (pod.spec?.restartPolicy as string | undefined) ?? "Always";
    const daemonStuck = restartPolicy === "Always" && (!!failure || program.kind === "hang");
    this.setRunning(key, failingInit ? failure.container : undefined, !failingInit && !daemonStuck);
    if (program.kind === "hang" || program.kind === "nodeNotReady") return;
    const duration =
      "durationMs" in program && program.durationMs !== undefined
        ? program.durationMs
        : this.options.jobDurationMs;
    this.after(key, duration, () => this.finishAttempt(key, failure));
  }

  private failureFor(
    program: OutcomeProgram,
    attempt: number,
    init: ContainerSpec[],
    main: ContainerSpec[],
  ): ContainerFailure | undefined {
    let f: ContainerFailure | undefined;
    if (program.kind === "fail") f = program.failure ?? {};
    else if (program.kind === "failThenSucceed" && attempt <= program.failures) f = program.failure ?? {};
    if (!f) return undefined;
    const named = f.container && [...init, ...main].some((c) => c.name === f.container);
    return {
      container: named ? f.container : main[0]?.name,
      exitCode: f.exitCode ?? 1,
      reason: f.reason ?? "Error",
      message: f.message ?? `simulated failure (attempt ${attempt})`,
    };
  }

  /** Init containers before `blockedAt` complete; the rest of the pod runs (or waits behind the init container). */
  private setRunning(key: string, blockedAt: string | undefined, ready: boolean): void {
    this.write(key, (p) => {
      const now = this.clock.iso();
      const uid = p.metadata.uid ?? "";
      const { init, main } = containersOf(p);
      let blocked = false;
      const initStatuses = init.map((c) => {
        if (blocked) return containerStatus(c, { waiting: { reason: "PodInitializing" } }, { podUid: uid });
        if (c.name === blockedAt) {
          blocked = true;
          return containerStatus(c, { running: { startedAt: now } }, { podUid: uid });
        }
        return containerStatus(
          c,
          { terminated: { exitCode: 0, reason: "Completed", startedAt: now, finishedAt: now } },
          { podUid: uid },
        );
      });
      const status = (p.status ?? {}) as Rec;
      if (init.length > 0) status.initContainerStatuses = initStatuses;
      status.containerStatuses = main.map((c) =>
        blocked
          ? containerStatus(c, { waiting: { reason: "PodInitializing" } }, { podUid: uid })
          : containerStatus(
              c,
              { running: { startedAt: now } },
              {
                podUid: uid,
                ready: ready && !blocked,
                restartCount: restartCountOf(p, c.name),
                lastState: lastStateOf(p, c.name),
              },
            ),
      );
      status.phase = blocked ? "Pending" : "Running";
      status.podIP = status.podIP ?? podIpFor(uid);
      status.podIPs = [{ ip: status.podIP }];
      status.conditions = podConditions((status.conditions as Condition[]) ?? [], now, {
        initialized: !blocked,
        ready: ready && !blocked,
        sandbox: true,
      });
      p.status = status;
    });
  }

  private finishAttempt(key: string, failure: ContainerFailure | undefined): void {
    const pod = this.current(key);
    if (!pod || isPodTerminal(pod)) return;
    const restartPolicy = (pod.spec?.restartPolicy as string) ?? "Always";
    const nodeName = pod.spec?.nodeName as string;
    const restartInPlace =
      restartPolicy === "Always" || (restartPolicy === "OnFailure" && failure !== undefined);
    if (restartInPlace && !pod.metadata.deletionTimestamp) {
      if (!failure) return; // Always + exit 0: a daemon keeps running.
      this.crashAndRestart(key, failure);
      const program = this.programOf(key, nodeName);
      this.after(key, 10_000, () => this.startContainers(key, program));
      return;
    }
    this.write(key, (p) => {
      const now = this.clock.iso();
      const uid = p.metadata.uid ?? "";
      const { init, main } = containersOf(p);
      const status = (p.status ?? {}) as Rec;
      const failingInit = failure && init.some((c) => c.name === failure.container);
      const started = (name: string, list: Rec[] | undefined): string | undefined => {
        const st = list?.find((s) => s.name === name)?.state as
          { running?: { startedAt: string } } | undefined;
        return st?.running?.startedAt;
      };
      const terminated = (
        c: ContainerSpec,
        list: Rec[] | undefined,
        f: ContainerFailure | undefined,
      ): ContainerState => ({
        terminated: {
          exitCode: f ? (f.exitCode ?? 1) : 0,
          reason: f ? (f.reason ?? "Error") : "Completed",
          ...(f?.message ? { message: f.message } : {}),
          startedAt: started(c.name, list) ?? now,
          finishedAt: now,
        },
      });
      if (failingInit) {
        status.initContainerStatuses = init.map((c) => {
          const prev = (status.initContainerStatuses as Rec[]).find((s) => s.name === c.name);
          if (c.name === failure.container)
            return containerStatus(c, terminated(c, status.initContainerStatuses as Rec[], failure), {
              podUid: uid,
            });
          return prev ?? containerStatus(c, { waiting: { reason: "PodInitializing" } }, { podUid: uid });
        });
      } else {
        status.containerStatuses = main.map((c) =>
          containerStatus(
            c,
            terminated(
              c,
              status.containerStatuses as Rec[],
              failure && failure.container === c.name ? failure : undefined,
            ),
            {
              podUid: uid,
              restartCount: restartCountOf(p, c.name),
            },
          ),
        );
      }
      status.phase = failure ? "Failed" : "Succeeded";
      status.conditions = podConditions((status.conditions as Condition[]) ?? [], now, {
        initialized: !failingInit,
        ready: false,
        sandbox: false,
        completed: true,
      });
    });
    this.applyNodeEffect(pod, nodeName, failure);
    this.stopRun(key, false);
  }

  /** What a simulated kata-deploy stage did to its node (kataDeployEffects.ts): the kata-runtime label. */
  private applyNodeEffect(pod: KubeObject, nodeName: string, failure: ContainerFailure | undefined): void {
    const effect = kataRuntimeLabelEffect(pod, failure?.container);
    if (!effect || !nodeName) return;
    this.store.mutate("nodes", undefined, nodeName, (n) => {
      n.metadata.labels = withKataRuntimeLabel(n.metadata.labels, effect);
    });
  }

  /** restartPolicy Always/OnFailure: the container restarts in place (CrashLoopBackOff in between). */
  private crashAndRestart(key: string, failure: ContainerFailure): void {
    this.write(key, (p) => {
      const now = this.clock.iso();
      const uid = p.metadata.uid ?? "";
      const { main } = containersOf(p);
      const status = (p.status ?? {}) as Rec;
      status.containerStatuses = main.map((c) => {
        const prev = ((status.containerStatuses as Rec[]) ?? []).find((s) => s.name === c.name);
        const prevStart =
          (prev?.state as { running?: { startedAt: string } } | undefined)?.running?.startedAt ?? now;
        const isFailing = c.name === failure.container;
        if (!isFailing) return prev ?? containerStatus(c, { running: { startedAt: now } }, { podUid: uid });
        return containerStatus(
          c,
          {
            waiting: {
              reason: "CrashLoopBackOff",
              message: `back-off 10s restarting failed container=${c.name} pod=${p.metadata.name}`,
            },
          },
          {
            podUid: uid,
            restartCount: restartCountOf(p, c.name) + 1,
            lastState: {
              terminated: {
                exitCode: failure.exitCode ?? 1,
                reason: failure.reason ?? "Error",
                ...(failure.message ? { message: failure.message } : {}),
                startedAt: prevStart,
                finishedAt: now,
              },
            },
          },
        );
      });
      status.conditions = podConditions((status.conditions as Condition[]) ?? [], now, {
        initialized: true,
        ready: false,
        sandbox: true,
      });
    });
  }

  private imagePullFailure(
    key: string,
    program: { image?: string; message?: string },
    init: ContainerSpec[],
    main: ContainerSpec[],
  ): void {
    const target = init[0] ?? main[0];
    if (!target) return;
    const image = program.image ?? target.image;
    const setWaiting = (reason: string, message: string): void => {
      this.write(key, (p) => {
        const uid = p.metadata.uid ?? "";
        const status = (p.status ?? {}) as Rec;
        const field = init.length > 0 ? "initContainerStatuses" : "containerStatuses";
        status[field] = (init.length > 0 ? init : main).map((c) =>
          c.name === target.name
            ? containerStatus({ ...c, image }, { waiting: { reason, message } }, { podUid: uid })
            : containerStatus(
                c,
                { waiting: { reason: init.length > 0 ? "PodInitializing" : "ContainerCreating" } },
                { podUid: uid },
              ),
        );
      });
    };
    setWaiting(
      "ErrImagePull",
      program.message ??
        `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`,
    );
    this.after(key, 10_000, () => setWaiting("ImagePullBackOff", `Back-off pulling image "${image}"`));
  }

  /**
   * Graceful deletion: SIGTERM, then the pod ends terminal and is removed once its containers have stopped. A real
   * process stops when it exits (the executor escalates to SIGKILL), as a kubelet reports a container's end only after
   * the runtime confirms it: no request of a killed program lands after its pod is gone. Simulated containers stop
   * after terminationDelayMs.
   */
  private beginTermination(key: string): void {
    const pod = this.current(key);
    if (!pod) return;
    const nodeName = pod.spec?.nodeName as string;
    const alive = nodeReady(this.store.peek("nodes", undefined, nodeName));
    const r = this.runs.get(key);
    r?.cancels.forEach((c) => c());
    if (r) r.cancels = [];
    if (!alive) return; // nobody to stop the containers: the pod stays Terminating
    if (r?.execution) {
      r.onStopped = (exitCode) => this.endTermination(key, exitCode);
      r.execution.kill();
      return;
    }
    this.clock.after(this.options.terminationDelayMs, () => this.endTermination(key, 143));
  }

  /** The deleted pod's containers have stopped with `exitCode`: record it, then remove the pod. */
  private endTermination(key: string, exitCode: number): void {
    const cur = this.current(key);
    if (!cur) return;
    if (!isPodTerminal(cur)) {
      this.write(key, (p) => {
        const now = this.clock.iso();
        const uid = p.metadata.uid ?? "";
        const status = (p.status ?? {}) as Rec;
        const { main } = containersOf(p);
        status.containerStatuses = main.map((c) => {
          const prev = ((status.containerStatuses as Rec[]) ?? []).find((s) => s.name === c.name);
          const startedAt = (prev?.state as { running?: { startedAt: string } } | undefined)?.running
            ?.startedAt;
          return containerStatus(
            c,
            {
              terminated: {
                exitCode,
                reason: exitCode === 0 ? "Completed" : "Error",
                ...(startedAt ? { startedAt } : {}),
                finishedAt: now,
              },
            },
            { podUid: uid, restartCount: restartCountOf(p, c.name) },
          );
        });
        status.phase = exitCode === 0 ? "Succeeded" : "Failed";
        status.conditions = podConditions((status.conditions as Condition[]) ?? [], now, {
          initialized: true,
          ready: false,
          sandbox: false,
          completed: true,
        });
      });
    }
    this.stopRun(key, false);
    deletePod(this.store, key, 0);
  }

  // -------------------------------------------------------------------------------------------------
  // The node itself: deleted, not Ready, back

  private onNode(e: StoreEvent): void {
    const name = e.object.metadata.name ?? "";
    if (e.type === "DELETED") {
      for (const key of this.podsByNode.get(name) ?? []) this.stopRun(key, true);
      return;
    }
    if (e.type !== "MODIFIED") return;
    const wasReady = nodeReady(e.previous);
    const isReady = nodeReady(e.object);
    if (!wasReady && isReady) {
      // Kubelet back: admit waiting pods, finish pending terminations.
      for (const key of this.podsByNode.get(name) ?? []) {
        const pod = this.current(key);
        if (!pod) continue;
        if (pod.metadata.deletionTimestamp) this.beginTermination(key);
        else this.clock.after(0, () => this.admit(key));
      }
    } else if (wasReady && !isReady) {
      // Kubelet gone: nothing it had planned happens.
      for (const key of this.podsByNode.get(name) ?? []) {
        const r = this.runs.get(key);
        r?.cancels.forEach((c) => c());
        if (r) r.cancels = [];
      }
    }
  }
}

/** A restarted container keeps reporting how its previous run ended. */
function lastStateOf(pod: KubeObject, container: string): ContainerState | undefined {
  const list = (pod.status?.containerStatuses as Rec[] | undefined) ?? [];
  const last = list.find((s) => s.name === container)?.lastState as
    ContainerState | Record<string, never> | undefined;
  return last && Object.keys(last).length > 0 ? (last as ContainerState) : undefined;
}

function restartCountOf(pod: KubeObject, container: string): number {
  const list = (pod.status?.containerStatuses as Rec[] | undefined) ?? [];
  return (list.find((s) => s.name === container)?.restartCount as number | undefined) ?? 0;
}

function podIpFor(uid: string): string {
  let h = 0;
  for (const ch of uid) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `10.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${(h & 253) + 1}`;
}
