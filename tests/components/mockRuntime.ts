// Pulumi mock runtime for the component tests. Mocha runs every test file in one process, so each suite
// installs its mocks in `before` (never at module load) and looks only at the resources it named.
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider?: string;
  custom?: boolean;
}

export class MockRecorder {
  readonly registered: Registered[] = [];

  async install(preview = false, project = "kata-deploy", stack = "dev"): Promise<void> {
    this.registered.length = 0;
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          this.registered.push({
            type: a.type,
            name: a.name,
            inputs: a.inputs,
            provider: a.provider,
            custom: a.custom,
          });
          // Outputs = inputs, so every known input reads back as a known output (preview included).
          return { id: a.custom ? `${a.name}-id` : undefined, state: a.inputs };
        },
        call: (a) => a.inputs,
      },
      project,
      stack,
      preview,
    );
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
