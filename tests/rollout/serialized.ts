// The provider as the SDK serializes it into `__provider` (serializeFunction, as a program does), and that text loaded
// with require-from-string in a fresh module (pulumi-facts.md §4.4). tests/provider/dynamicHost.test.ts sends the
// text to the real dynamic-provider host; the rollout tests use it to check what the text may require.
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
    // require-from-string, the loader @pulumi/pulumi/cmd/dynamic-provider uses.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const requireFromString = require("require-from-string") as (code: string) => {
      handler: () => RolloutProvider;
    };
    return { text: sf.text, provider: requireFromString(sf.text).handler() };
  })();
  return cached;
}
