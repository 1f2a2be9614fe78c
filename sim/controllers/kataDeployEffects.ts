// What a kata-deploy per-node pod does to its Node that the rest of the system reads. Chart 4.0.0's install pipeline
// ends with the `label` stage, which sets `katacontainers.io/kata-runtime=true`; the cleanup pipeline starts with the
// `unlabel` stage, which removes it (chart/jobMode.ts PIPELINES; docs/spec/chart-versions.md, 4.0 "status"). The
// simulator does not run the kata-deploy image, so the kubelet applies that effect when such a pod ends: the cleanup
// dispatcher's default selection (nodes with the label) then finds the nodes an install reached, as on a real fleet.
import { PIPELINES } from "../../chart/jobMode";
import { KATA_RUNTIME_LABEL } from "../../chart/names";
import type { KubeObject } from "../types";

export type KataRuntimeLabelEffect = "set" | "remove";

const KATA_DEPLOY_BINARY = "/usr/bin/kata-deploy";
const LABEL_ACTION = PIPELINES.install.main.action;
const UNLABEL_ACTION = PIPELINES.cleanup.init[0].action;

interface StageContainer {
  name: string;
  command?: string[];
}

function stageContainers(pod: KubeObject): StageContainer[] {
  const spec = (pod.spec ?? {}) as { initContainers?: StageContainer[]; containers?: StageContainer[] };
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

/**
 * The label change a terminated pod made on its node: `set` when a `label` stage ran to success (the pod succeeded),
 * `remove` when an `unlabel` stage completed (the pod failed later, or not at all); undefined for any other pod.
 */
export function kataRuntimeLabelEffect(
  pod: KubeObject,
  failedContainer: string | undefined,
): KataRuntimeLabelEffect | undefined {
  for (const c of stageContainers(pod)) {
    if (c.command?.[0] !== KATA_DEPLOY_BINARY) continue;
    if (c.command[1] === LABEL_ACTION && failedContainer === undefined) return "set";
    if (c.command[1] === UNLABEL_ACTION && failedContainer !== c.name) return "remove";
  }
  return undefined;
}

/** The node's labels after the effect. */
export function withKataRuntimeLabel(
  labels: Record<string, string> | undefined,
  effect: KataRuntimeLabelEffect,
): Record<string, string> {
  const { [KATA_RUNTIME_LABEL]: _was, ...rest } = labels ?? {};
  return effect === "set" ? { ...rest, [KATA_RUNTIME_LABEL]: "true" } : rest;
}

export { KATA_RUNTIME_LABEL };
