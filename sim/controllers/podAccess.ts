// How the node-side controllers (kubelet, node lifecycle, taint eviction, PodGC) name, read and write pods:
// by "namespace/name" key, through the store's controller writes, ignoring a pod that changed or went away
// meanwhile (the next event brings the work back).
import { conditionStatus } from "./podStatus";
import { ApiError } from "../errors";
import type { Store } from "../store";
import type { KubeObject } from "../types";

export const podKey = (p: KubeObject): string => `${p.metadata.namespace}/${p.metadata.name}`;

export function nodeReady(node: KubeObject | undefined): boolean {
  return !!node && conditionStatus(node, "Ready") === "True";
}

/** Which pod keys are bound to a node (the kubelet keeps this index). */
export type PodsOnNode = (node: string) => Iterable<string>;

export function currentPod(store: Store, key: string): KubeObject | undefined {
  const [ns, name] = key.split("/");
  return store.peek("pods", ns, name);
}

/** A controller write of a pod; undefined when the pod is gone or the write was refused. */
export function writePod(
  store: Store,
  key: string,
  fn: (draft: KubeObject) => boolean | void,
): KubeObject | undefined {
  const [ns, name] = key.split("/");
  try {
    return store.mutate("pods", ns, name, fn);
  } catch (e) {
    if (e instanceof ApiError) return undefined;
    throw e;
  }
}

/** Deletes a pod through the API's DELETE, with the given options; a pod already gone is no error. */
export function deletePod(store: Store, key: string, gracePeriodSeconds?: number): void {
  const [ns, name] = key.split("/");
  try {
    store.delete("pods", ns, name, {
      ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }),
      propagationPolicy: "Background",
    });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
  }
}
