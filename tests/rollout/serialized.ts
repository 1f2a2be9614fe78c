// The provider as the Pulumi engine loads it: serializeFunction on the program side, then require-from-string of the
// text in a fresh module (pulumi-facts.md §4.4). Shared by the rollout tests.
import { builtinModules } from "node:module";
import * as pulumi from "@pulumi/pulumi";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { rolloutProvider } from "../../rollout/provider";
import type { RolloutInputs, RolloutOutputs } from "../../rollout/types";

export type RolloutProvider = dynamic.ResourceProvider<RolloutInputs, RolloutOutputs>;

let cached: Promise<{ text: string; provider: RolloutProvider }> | undefined;

/** Module names the serialized text requires at run time. */
export function requiredModules(text: string): string[] {
  return [...new Set([...text.matchAll(/require\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]))].sort();
}

export function isBuiltin(name: string): boolean {
  const bare = name.replace(/^node:/, "").split("/")[0];
  return builtinModules.includes(bare) || builtinModules.includes(name.replace(/^node:/, ""));
}

export function serializedProvider(): Promise<{ text: string; provider: RolloutProvider }> {
  cached ??= (async () => {
    const sf = await pulumi.runtime.serializeFunction(() => rolloutProvider, { allowSecrets: true });
    // Loaded exactly as @pulumi/pulumi/cmd/dynamic-provider does.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const requireFromString = require("require-from-string") as (code: string) => {
      handler: () => RolloutProvider;
    };
    return { text: sf.text, provider: requireFromString(sf.text).handler() };
  })();
  return cached;
}
