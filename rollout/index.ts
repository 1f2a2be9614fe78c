// KataRollout: the dynamic resource that runs chart 4.0.0's hooks (helm.v4.Chart drops them) and reports per-node
// results. The provider (rollout/provider.ts) is serialized into the state; this wrapper runs at program time only.
import * as pulumi from "@pulumi/pulumi";
import type { NodeResult } from "../kube/jobStatus";
import { kataNodes } from "./aggregate";
import { decodeResults } from "./compact";
import { rolloutProvider } from "./provider";
import type { RolloutInputs, RolloutSummary } from "./types";

export { buildRolloutInputs, type RolloutBuildArgs, type RolloutOptions } from "./inputs";
export { resolveConnection } from "./resolveConnection";
export type { ConnectionSpec } from "./connection";
export type { NodeResult, RolloutInputs, RolloutSummary };

export const ROLLOUT_MODULE = "kata-deploy";
export const ROLLOUT_TYPE = "KataRollout";

/** Every input key, so an Output of the whole input object can be split into per-key inputs. */
const INPUT_KEYS: readonly (keyof RolloutInputs)[] = [
  "connection",
  "namespace",
  "mode",
  "runKey",
  "install",
  "cleanup",
  "daemonSet",
  "daemonSetName",
  "installDispatcherJobName",
  "timeoutSeconds",
  "healDrift",
  "cleanupOnDestroy",
  "stuckGraceSeconds",
  "displayName",
];

/** Resource options of every KataRollout: the engine marks the `connection` output secret in the state. */
export function rolloutResourceOptions(
  opts: pulumi.CustomResourceOptions = {},
): pulumi.CustomResourceOptions {
  return {
    ...opts,
    additionalSecretOutputs: [...new Set([...(opts.additionalSecretOutputs ?? []), "connection"])],
  };
}

export class KataRollout extends pulumi.dynamic.Resource {
  /** Compact encoding of the per-node results as stored in the state (see `nodeResults`). */
  declare readonly results: pulumi.Output<string>;
  declare readonly summary: pulumi.Output<RolloutSummary>;
  declare readonly runId: pulumi.Output<string>;
  /** Per node: outcome, job, attempts, startedAt, finishedAt, reason, message. */
  readonly nodeResults: pulumi.Output<NodeResult[]>;
  /** Sorted names of the nodes where the install succeeded. */
  readonly kataNodes: pulumi.Output<string[]>;

  constructor(name: string, inputs: pulumi.Input<RolloutInputs>, opts: pulumi.CustomResourceOptions = {}) {
    const all = pulumi.output(inputs);
    const props: Record<string, pulumi.Input<unknown>> = {
      results: undefined,
      summary: undefined,
      runId: undefined,
      lastRunKey: undefined,
    };
    for (const key of INPUT_KEYS)
      props[key] = all.apply((i) => (i as unknown as Record<string, unknown>)[key]);
    // The connection carries credentials: secret as an input, and its copy among the outputs is marked secret too.
    props.connection = pulumi.secret(all.apply((i) => i.connection));
    super(rolloutProvider, name, props, rolloutResourceOptions(opts), ROLLOUT_MODULE, ROLLOUT_TYPE);
    this.nodeResults = this.results.apply((r) => decodeResults(r));
    this.kataNodes = this.nodeResults.apply((r) => kataNodes(r));
  }
}
