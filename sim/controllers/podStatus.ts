// Builders for realistic pod status (container states, conditions) as the kubelet reports them. Pure.
import type { KubeObject } from "../types";

type Rec = Record<string, unknown>;

export interface ContainerSpec {
  name: string;
  image: string;
}

export function containersOf(pod: KubeObject): { init: ContainerSpec[]; main: ContainerSpec[] } {
  const spec = (pod.spec ?? {}) as Rec;
  return {
    init: ((spec.initContainers as ContainerSpec[] | undefined) ?? []).map((c) => ({
      name: c.name,
      image: c.image,
    })),
    main: ((spec.containers as ContainerSpec[] | undefined) ?? []).map((c) => ({
      name: c.name,
      image: c.image,
    })),
  };
}

export function imageId(image: string): string {
  const name = image.includes("@") ? image.split("@")[0] : image;
  return `${name.split(":")[0]}@sha256:${"0".repeat(64)}`;
}

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
      terminated: {
        exitCode: number;
        reason: string;
        message?: string;
        startedAt?: string;
        finishedAt: string;
        containerID?: string;
      };
    };

export function containerStatus(
  c: ContainerSpec,
  state: ContainerState,
  opts: { ready?: boolean; restartCount?: number; lastState?: ContainerState; podUid: string },
): Rec {
  const started = "running" in state;
  const status: Rec = {
    name: c.name,
    image: c.image,
    imageID: "waiting" in state ? "" : imageId(c.image),
    ready: opts.ready ?? false,
    restartCount: opts.restartCount ?? 0,
    started,
    state,
    lastState: opts.lastState ?? {},
  };
  if (!("waiting" in state)) status.containerID = `containerd://${containerIdFor(opts.podUid, c.name)}`;
  return status;
}

function containerIdFor(podUid: string, name: string): string {
  let h = 0x811c9dc5;
  for (const ch of `${podUid}/${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0").repeat(8);
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

/** Sets a condition, keeping lastTransitionTime when the status does not change. */
export function setCondition(
  conditions: Condition[],
  next: Omit<Condition, "lastProbeTime" | "lastTransitionTime">,
  now: string,
): Condition[] {
  const out = conditions.slice();
  const i = out.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? out[i] : undefined;
  const cond: Condition = {
    type: next.type,
    status: next.status,
    lastProbeTime: null,
    lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now,
  };
  if (next.reason) cond.reason = next.reason;
  if (next.message) cond.message = next.message;
  if (i >= 0) out[i] = cond;
  else out.push(cond);
  return out;
}

/** The pod conditions for a phase of its life. */
export function podConditions(
  existing: Condition[],
  now: string,
  s: { initialized: boolean; ready: boolean; sandbox: boolean; completed?: boolean; notReadyReason?: string },
): Condition[] {
  let c = existing;
  c = setCondition(c, { type: "PodReadyToStartContainers", status: s.sandbox ? "True" : "False" }, now);
  c = setCondition(
    c,
    s.initialized
      ? { type: "Initialized", status: "True" }
      : { type: "Initialized", status: "False", reason: "ContainersNotInitialized" },
    now,
  );
  const notReady = s.completed ? "PodCompleted" : (s.notReadyReason ?? "ContainersNotReady");
  c = setCondition(
    c,
    s.ready ? { type: "Ready", status: "True" } : { type: "Ready", status: "False", reason: notReady },
    now,
  );
  c = setCondition(
    c,
    s.ready
      ? { type: "ContainersReady", status: "True" }
      : { type: "ContainersReady", status: "False", reason: notReady },
    now,
  );
  c = setCondition(c, { type: "PodScheduled", status: "True" }, now);
  return c;
}

export function conditionStatus(o: KubeObject, type: string): string | undefined {
  const conds = (o.status?.conditions as Condition[] | undefined) ?? [];
  return conds.find((c) => c.type === type)?.status;
}

export function isPodTerminal(pod: KubeObject): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}
