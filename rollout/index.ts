// The rollout resource that runs chart 4.0.0's hooks (helm.v4.Chart drops them) and reports per-node results, in two
// hosts with one CRUD (rollout/provider.ts): KataRollout, a dynamic resource whose provider is serialized into the
// state (TypeScript library users), and PackageRollout, a custom resource of this package's own plugin (plugin/).
// These wrappers run at program time only.
import * as pulumi from "@pulumi/pulumi";
import type { NodeResult } from "../kube/jobStatus";
import { kataNodesNow, type KataCorrection } from "./aggregate";
import { decodeResults } from "./compact";
import { encodeOutcomes, type NodeOutcomes } from "./outcomes";
import { rolloutProvider } from "./provider";
import type { RolloutInputs, RolloutSummary } from "./types";

export { buildRolloutInputs, type RolloutBuildArgs, type RolloutOptions } from "./inputs";
export { loadKubeConfig, resolveConnection } from "./resolveConnection";
export { useAmbientLoader } from "./ambient";
export { ambientReference } from "./connection";
export type { ConnectionSpec } from "./connection";
export type { NodeResult, RolloutInputs, RolloutSummary };
export { encodeOutcomes, listNodeOutcomes, nodeOutcome } from "./outcomes";
export type { NodeOutcomeEntry, NodeOutcomeOf, NodeOutcomes } from "./outcomes";

export const ROLLOUT_MODULE = "kata-deploy";
export const ROLLOUT_TYPE = "KataRollout";

/** Every input key, so an Output of the whole input object can be split into per-key inputs. */
const INPUT_KEYS = [
  "connection",
  "namespace",
  "releaseName",
  "mode",
  "runKey",
  "rerunToken",
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
  "hooks",
  "releaseObjects",
  "chartSide",
  "clusterUid",
  "plan",
  "identityImmutable",
] as const satisfies readonly (keyof RolloutInputs)[];
/** Every input reaches the resource: a key added to RolloutInputs and not listed above fails to compile here. */
const EVERY_INPUT_LISTED: [Exclude<keyof RolloutInputs, (typeof INPUT_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void EVERY_INPUT_LISTED;

/** Resource options of every KataRollout: the engine marks the `connection` output secret in the state. */
export function rolloutResourceOptions(
  opts: pulumi.CustomResourceOptions = {},
): pulumi.CustomResourceOptions {
  return {
    ...opts,
    additionalSecretOutputs: [...new Set([...(opts.additionalSecretOutputs ?? []), "connection"])],
  };
}

/** The resource's properties: every input (connection secret) and the outputs the provider fills in. */
function rolloutProps(inputs: pulumi.Input<RolloutInputs>): Record<string, pulumi.Input<unknown>> {
  const all = pulumi.output(inputs);
  const props: Record<string, pulumi.Input<unknown>> = {
    results: undefined,
    summary: undefined,
    runId: undefined,
    lastRunKey: undefined,
    kataCorrection: undefined,
  };
  for (const key of INPUT_KEYS) props[key] = all.apply((i) => (i as unknown as Record<string, unknown>)[key]);
  // The connection carries credentials: secret as an input, and its copy among the outputs is marked secret too.
  props.connection = pulumi.secret(all.apply((i) => i.connection));
  return props;
}

/** The outputs both rollout resources expose. */
export interface RolloutResource extends pulumi.CustomResource {
  readonly results: pulumi.Output<string>;
  readonly summary: pulumi.Output<RolloutSummary>;
  readonly runId: pulumi.Output<string>;
  readonly nodeResults: pulumi.Output<NodeResult[]>;
  /** The component's `nodeOutcomes` (rollout/outcomes.ts). */
  readonly nodeOutcomes: pulumi.Output<NodeOutcomes>;
  readonly kataNodes: pulumi.Output<string[]>;
}

/** The TypeScript library's rollout: a dynamic resource whose provider (rollout/provider.ts) lives in the state. */
export class KataRollout extends pulumi.dynamic.Resource implements RolloutResource {
  /** Compact encoding of the per-node results as stored in the state (see `nodeResults`). */
  declare readonly results: pulumi.Output<string>;
  declare readonly summary: pulumi.Output<RolloutSummary>;
  declare readonly runId: pulumi.Output<string>;
  declare readonly kataCorrection: pulumi.Output<KataCorrection | undefined>;
  /** Per node: outcome, job, attempts, startedAt, finishedAt, reason, message. */
  readonly nodeResults: pulumi.Output<NodeResult[]>;
  /** Per node: outcome, reason, message (rollout/outcomes.ts). */
  readonly nodeOutcomes: pulumi.Output<NodeOutcomes>;
  /** Sorted names of the nodes where Kata is installed now (the last run's successes, corrected from the nodes). */
  readonly kataNodes: pulumi.Output<string[]>;

  constructor(name: string, inputs: pulumi.Input<RolloutInputs>, opts: pulumi.CustomResourceOptions = {}) {
    super(
      rolloutProvider,
      name,
      rolloutProps(inputs),
      rolloutResourceOptions(opts),
      ROLLOUT_MODULE,
      ROLLOUT_TYPE,
    );
    this.nodeResults = this.results.apply((r) => decodeResults(r));
    this.nodeOutcomes = this.nodeResults.apply((r) => encodeOutcomes(r));
    this.kataNodes = pulumi
      .all([this.nodeResults, this.kataCorrection])
      .apply(([r, c]) => kataNodesNow(r, c));
  }
}

/** Type token of the rollout as a custom resource of this package's own provider plugin (plugin/). */
export const PACKAGE_ROLLOUT_TYPE = "kata-deploy:index:Rollout";

/**
 * The rollout as a resource of this package's provider plugin: the same CRUD (rollout/provider.ts) runs in the
 * plugin process, so a Python, Go, YAML or .NET consumer needs no node_modules of its own.
 */
export class PackageRollout extends pulumi.CustomResource implements RolloutResource {
  declare readonly results: pulumi.Output<string>;
  declare readonly summary: pulumi.Output<RolloutSummary>;
  declare readonly runId: pulumi.Output<string>;
  declare readonly kataCorrection: pulumi.Output<KataCorrection | undefined>;
  readonly nodeResults: pulumi.Output<NodeResult[]>;
  readonly nodeOutcomes: pulumi.Output<NodeOutcomes>;
  readonly kataNodes: pulumi.Output<string[]>;

  constructor(
    name: string,
    inputs: pulumi.Input<RolloutInputs>,
    opts: pulumi.CustomResourceOptions & { packageVersion: string },
  ) {
    const { packageVersion, ...rest } = opts;
    super(PACKAGE_ROLLOUT_TYPE, name, rolloutProps(inputs), {
      ...rolloutResourceOptions(rest),
      version: rest.version ?? packageVersion,
    });
    this.nodeResults = this.results.apply((r) => decodeResults(r));
    this.nodeOutcomes = this.nodeResults.apply((r) => encodeOutcomes(r));
    this.kataNodes = pulumi
      .all([this.nodeResults, this.kataCorrection])
      .apply(([r, c]) => kataNodesNow(r, c));
  }
}

/** Which host runs the rollout's CRUD for components constructed in this process. */
let packageHost: { version: string } | undefined;

/** Called by the package's plugin at start: components it constructs register PackageRollout. */
export function useRolloutOfPackage(version: string): void {
  packageHost = { version };
}

/** The rollout resource for this process: PackageRollout inside the package's plugin, else KataRollout. */
export function newRollout(
  name: string,
  inputs: pulumi.Input<RolloutInputs>,
  opts: pulumi.CustomResourceOptions,
): RolloutResource {
  return packageHost
    ? new PackageRollout(name, inputs, { ...opts, packageVersion: packageHost.version })
    : new KataRollout(name, inputs, opts);
}
