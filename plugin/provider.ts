// The package's provider plugin: `construct` for the KataDeploy component (the TypeScript analyzer's schema and
// @pulumi/pulumi's ComponentProvider, as a source-based component package does) plus check/diff/create/update/read/
// delete/cancel for the rollout as the custom resource `kata-deploy:index:Rollout`, with the same CRUD the dynamic
// resource runs (rollout/provider.ts `rolloutProvider`). One Node.js process serves both.
import type { Provider } from "@pulumi/pulumi/provider";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental/provider";
import type { ComponentResourceOptions, Inputs } from "@pulumi/pulumi";
import { KataDeploy } from "../components";
import { PACKAGE_ROLLOUT_TYPE } from "../rollout";
import { rolloutProvider } from "../rollout/provider";
import type { RolloutInputs, RolloutOutputs } from "../rollout/types";
import { toWire, unwrapSecrets } from "./wire";

/** The rollout's schema: inputs as rollout/types.ts RolloutInputs, outputs RolloutOutputs. */
function rolloutSchema(packageName: string): Record<string, unknown> {
  const any = (description: string) => ({ $ref: "pulumi.json#/Any", description });
  const inputs: Record<string, Record<string, unknown>> = {
    connection: {
      ...any("How the provider reaches the cluster (server, CA, credentials or an exec plugin); secret."),
      secret: true,
    },
    namespace: { type: "string", description: "Namespace of the release." },
    releaseName: { type: "string", description: "The Helm release name; a change replaces the rollout." },
    mode: { type: "string", description: '"job" or "daemonset".' },
    runKey: { type: "string", description: "Hash of everything whose change re-runs the install." },
    rerunToken: {
      type: "string",
      description: "A change installs every node, even those whose record shows the payload already.",
    },
    install: any("Job mode: the install dispatcher Job and what its per-node Jobs look like."),
    cleanup: any("Job mode: the cleanup dispatcher Job run on delete."),
    daemonSet: any("Daemonset mode: the DaemonSet to wait for."),
    daemonSetName: { type: "string", description: "The chart's DaemonSet name." },
    installDispatcherJobName: { type: "string", description: "The chart's install dispatcher Job name." },
    timeoutSeconds: { type: "number", description: "Limit of one install or cleanup run." },
    healDrift: {
      type: "boolean",
      description: "Propose an update for selected nodes without a successful install.",
    },
    cleanupOnDestroy: { type: "boolean", description: "Run the cleanup dispatcher on delete (job mode)." },
    stuckGraceSeconds: { type: "number", description: "A pod stuck this long fails its node." },
    displayName: { type: "string", description: "Label of progress lines and messages." },
    hooks: any("The chart's hook objects of every phase, run by Helm's rules."),
    releaseObjects: any("The release's non-hook objects by reference, `keep` ones marked."),
    chartSide: {
      type: "string",
      description:
        '"after" (default): post-install/post-upgrade and pre-delete hooks; "before": pre-install/pre-upgrade and post-delete hooks, then the kept objects removed.',
    },
    plan: any(
      "What the next run installs, read from the nodes' records at program time: counts and names by reason (`new`, `changed`, `failed`), `blocked` by taints, or `unreadable` and why.",
    ),
    identityImmutable: {
      type: "boolean",
      description:
        "The chart (4.1.0 and later) refuses a change of the release's deploymentMode or multiInstallSuffix: Check fails it.",
    },
    clusterUid: {
      type: "string",
      description:
        "The kube-system namespace's uid as the chart's Kubernetes provider read it (same-cluster check).",
    },
  };
  const required = [
    "connection",
    "namespace",
    "mode",
    "runKey",
    "daemonSetName",
    "installDispatcherJobName",
    "timeoutSeconds",
    "healDrift",
    "cleanupOnDestroy",
  ];
  return {
    description:
      "Chart 4.0.0's hooks, run by the provider: create/update = post-install/post-upgrade (the install " +
      "dispatcher and every per-node Job, or the DaemonSet's pods), delete = pre-delete (the cleanup dispatcher). " +
      "Registered by KataDeploy; not meant to be declared by hand.",
    inputProperties: inputs,
    requiredInputs: required,
    properties: {
      ...inputs,
      results: {
        type: "string",
        description: "Per-node results in the compact encoding of rollout/compact.ts.",
      },
      kataCorrection: any(
        "Where Kata is installed now differs from the last run's successes: `add` and `remove` node names.",
      ),
      summary: {
        $ref: `#/types/${packageName}:index:RolloutSummaryOutput`,
        description: "Counts of the last run.",
      },
      runId: { type: "string", description: "Identifier of the last run." },
      lastRunKey: { type: "string", description: "The run key of the last run started." },
    },
    required: [...required, "results", "summary", "runId", "lastRunKey"],
  };
}

/** The resource type of a URN (`urn:pulumi:stack::project::parent$type::name`). */
export function typeOfUrn(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? "";
}

/** An error the engine records as "created but failed, outputs kept", with wire-ready properties. */
function initFailedOnWire(err: unknown): unknown {
  const e = err as {
    id?: string;
    properties?: Record<string, unknown>;
    reasons?: string[];
    message?: string;
  };
  if (!e || !e.id || !e.properties) return err;
  const wired = new Error(e.message) as Error & { id: string; properties: object; reasons?: string[] };
  wired.id = e.id;
  wired.properties = toWire(e.properties, ["connection"]);
  wired.reasons = e.reasons;
  return wired;
}

export class KataDeployProvider implements Provider {
  readonly version: string;
  private readonly components: ComponentProvider;
  /** Aborted by Cancel; replaced afterwards, so operations the engine sends later run normally. */
  private cancelled = new AbortController();
  private cachedSchema?: string;

  constructor(options: { name: string; namespace?: string; dirname: string }) {
    this.components = new ComponentProvider({ ...options, components: [KataDeploy] });
    this.version = this.components.version;
  }

  async getSchema(): Promise<string> {
    if (!this.cachedSchema) {
      const schema = JSON.parse(await this.components.getSchema()) as {
        name: string;
        resources: Record<string, unknown>;
      };
      schema.resources[PACKAGE_ROLLOUT_TYPE] = rolloutSchema(schema.name);
      this.cachedSchema = JSON.stringify(schema);
    }
    return this.cachedSchema;
  }

  async construct(name: string, type: string, inputs: Inputs, options: ComponentResourceOptions) {
    return this.components.construct(name, type, inputs, options);
  }

  /** The rollout's CRUD, after checking the URN's type. */
  private operations(urn: string): typeof rolloutProvider {
    const type = typeOfUrn(urn);
    if (type !== PACKAGE_ROLLOUT_TYPE)
      throw new Error(`unknown resource type ${type}: this provider manages ${PACKAGE_ROLLOUT_TYPE} only`);
    return rolloutProvider;
  }

  async check(urn: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const ops = this.operations(urn);
    const n = unwrapSecrets(news);
    const result = await ops.check(
      unwrapSecrets(olds).plain as unknown as RolloutInputs,
      n.plain as unknown as RolloutInputs,
    );
    return {
      inputs: toWire(result.inputs ?? n.plain, new Set([...n.secretKeys, "connection"])),
      failures: result.failures,
    };
  }

  async diff(id: string, urn: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    return this.operations(urn).diff(
      id,
      unwrapSecrets(olds).plain as unknown as RolloutOutputs,
      unwrapSecrets(news).plain as unknown as RolloutInputs,
    );
  }

  async create(urn: string, inputs: Record<string, unknown>) {
    const ops = this.operations(urn);
    try {
      const { id, outs } = await ops.create(
        unwrapSecrets(inputs).plain as unknown as RolloutInputs,
        this.cancelled.signal,
      );
      return { id, outs: toWire(outs ?? {}, ["connection"]) };
    } catch (err) {
      throw initFailedOnWire(err);
    }
  }

  async update(id: string, urn: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const ops = this.operations(urn);
    try {
      const { outs } = await ops.update(
        id,
        unwrapSecrets(olds).plain as unknown as RolloutOutputs,
        unwrapSecrets(news).plain as unknown as RolloutInputs,
        this.cancelled.signal,
      );
      return { outs: toWire(outs ?? {}, ["connection"]) };
    } catch (err) {
      throw initFailedOnWire(err);
    }
  }

  async read(id: string, urn: string, props: Record<string, unknown>) {
    const recorded = unwrapSecrets(props).plain as unknown as RolloutOutputs;
    const result = await this.operations(urn).read(id, recorded);
    return { id: result.id ?? id, props: toWire(result.props ?? recorded, ["connection"]) };
  }

  async delete(id: string, urn: string, props: Record<string, unknown>) {
    await this.operations(urn).delete(
      id,
      unwrapSecrets(props).plain as unknown as RolloutOutputs,
      this.cancelled.signal,
    );
  }

  /**
   * The engine's Cancel (Ctrl-C): every wait in flight stops within a poll interval and its operation fails; the
   * dispatcher Job and the per-node Jobs keep running in the cluster (stopping them half-way would leave nodes
   * half-installed), and the next create/update with the same run key adopts them.
   */
  async cancel(): Promise<void> {
    const current = this.cancelled;
    this.cancelled = new AbortController();
    current.abort();
  }
}
