// Pulumi mock runtime for the component tests. Mocha runs every test file in one process, so each suite
// installs its mocks in `before` (never at module load) and looks only at the resources it named.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { encodeResults } from "../../rollout/compact";
import { answerInvoke } from "./offlineTemplate";

/** A kubeconfig text fixture (fake server, fake token) so the rollout's connection resolves under mocks. */
export const KUBECONFIG_FIXTURE = path.resolve(__dirname, "fixtures/kubeconfig.yaml");
/** The fake token inside it: it must reach nothing but secret values. */
export const FIXTURE_TOKEN = "kdt-FAKE-TOKEN-7f3a9c2e-do-not-leak";

/** The stack outputs KataDeploy declares (schema), fills (construct) and program.ts exports, sorted. */
export const COMPONENT_OUTPUTS = [
  "chartVersion",
  "kataNodes",
  "mode",
  "namespace",
  "nodeOutcomes",
  "releaseName",
  "runId",
  "summary",
];

export const ROLLOUT_TYPE = "pulumi-nodejs:dynamic/kata-deploy:KataRollout";

/** What the mock returns for every KataRollout, as the provider's create would (3 nodes, one failed). */
export const ROLLOUT_RESULTS = [
  { node: "worker-1", outcome: "succeeded" as const, attempts: 1, job: "kata-deploy-install-worker-1" },
  {
    node: "worker-0",
    outcome: "failed" as const,
    attempts: 4,
    reason: "BackoffLimitExceeded",
    message: "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]",
  },
  { node: "worker-2", outcome: "succeeded" as const, attempts: 1 },
];
/** The component's `nodeOutcomes` for ROLLOUT_RESULTS, written out by hand (rollout/outcomes.ts's format). */
export const ROLLOUT_OUTCOMES = {
  nodes: {
    "worker-1": { outcome: "succeeded" },
    "worker-0": { outcome: "failed", reason: "BackoffLimitExceeded", message: 0 },
    "worker-2": { outcome: "succeeded" },
  },
  messages: ["container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]"],
};
export const ROLLOUT_SUMMARY = { total: 3, succeeded: 2, failed: 1, skipped: 0, durationSeconds: 42 };
export const ROLLOUT_RUN_ID = "20261125T150000Z-0123abcd";

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider?: string;
  custom?: boolean;
  /** URNs the SDK sent as the resource's dependencies (its dependsOn, expanded, and its inputs' resources). */
  dependencies: string[];
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
}
type RegisterFn = (req: RegisterRequest, callback: unknown) => unknown;

export class MockRecorder {
  readonly registered: Registered[] = [];
  private readonly dependencies = new Map<string, string[]>();
  private savedKubeconfig: string | undefined | null = null;

  async install(preview = false, project = "kata-deploy", stack = "dev"): Promise<void> {
    this.registered.length = 0;
    this.dependencies.clear();
    // The rollout resolves its connection from $KUBECONFIG when no kubeconfig argument is given.
    if (this.savedKubeconfig === null) this.savedKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = KUBECONFIG_FIXTURE;
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          this.registered.push({
            type: a.type,
            name: a.name,
            inputs: a.inputs,
            provider: a.provider,
            custom: a.custom,
            dependencies: this.dependencies.get(`${a.type}::${a.name}`) ?? [],
          });
          if (a.type === ROLLOUT_TYPE && !preview) {
            // What the provider's create returns (plaintext connection: the wrapper marks it secret). In preview
            // the engine knows no results yet: the state is the inputs, and the results read as unknown.
            const state = {
              ...a.inputs,
              results: encodeResults(ROLLOUT_RESULTS, "kata-deploy-install"),
              summary: ROLLOUT_SUMMARY,
              runId: ROLLOUT_RUN_ID,
            };
            return { id: `${a.name}-id`, state };
          }
          // Outputs = inputs, so every known input reads back as a known output (preview included).
          return { id: a.custom ? `${a.name}-id` : undefined, state: a.inputs };
        },
        call: (a) => answerInvoke(a.token, a.inputs),
      },
      project,
      stack,
      preview,
    );
    // The mock API does not pass dependencies to newResource; read them off the request the SDK sends.
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: RegisterFn };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
      this.dependencies.set(`${req.getType()}::${req.getName()}`, req.getDependenciesList());
      return original(req, callback);
    };
  }

  /** Puts $KUBECONFIG back as it was before `install`. */
  uninstall(): void {
    if (this.savedKubeconfig === null) return;
    if (this.savedKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = this.savedKubeconfig;
    this.savedKubeconfig = null;
  }

  named(name: string): Registered[] {
    return this.registered.filter((r) => r.name === name);
  }

  one(type: string, name: string): Registered {
    const found = this.registered.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1) {
      throw new Error(
        `expected one ${type} "${name}", found ${found.length}: ${JSON.stringify(this.registered.map((r) => `${r.type}/${r.name}`))}`,
      );
    }
    return found[0];
  }

  /** Waits until `predicate` holds (registrations are asynchronous), at most `ms`. */
  async until(predicate: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error("timed out waiting for registrations");
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** The URNs the mock monitor registered (they carry the parent chain of types). */
export function registeredUrns(): string[] {
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    getRegisteredResources(): Map<string, unknown>;
  };
  return [...monitor.getRegisteredResources().keys()];
}

/** An output's value (only for outputs that are known, else it never resolves). */
export function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise<T>((resolve) => o.apply((v) => resolve(v)));
}

/** Whether an output is known (false for preview unknowns). */
export function isKnown(o: pulumi.Output<unknown>): Promise<boolean> {
  return (o as unknown as { isKnown: Promise<boolean> }).isKnown;
}

/**
 * Collects pulumi.log.warn messages instead of printing them (the component warns through it); returns
 * the collected list and a restore function for `after`.
 */
export function captureWarnings(): { warnings: string[]; restore: () => void } {
  const warnings: string[] = [];
  const log = pulumi.log as { warn: typeof pulumi.log.warn };
  const original = log.warn;
  log.warn = async (message: string) => {
    warnings.push(message);
  };
  return { warnings, restore: () => (log.warn = original) };
}

export const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));
