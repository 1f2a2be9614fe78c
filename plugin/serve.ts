// Starts the provider server of the package's plugin (see host.ts for when).
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "@pulumi/pulumi/provider";
import { loadKubeConfig, useAmbientLoader, useRolloutOfPackage } from "../rollout";
import { KataDeployProvider } from "./provider";

/** The package name as run-plugin derives it from package.json (`@scope/name` → `name`). */
function packageName(packageDir: string): { name: string; namespace?: string } {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")) as {
    name: string;
  };
  const m = /^(?:@([^/]+)\/)?(.+)$/.exec(manifest.name);
  return { name: (m?.[2] ?? manifest.name).replace(/[^-a-zA-Z0-9_]/g, "-"), namespace: m?.[1] };
}

export function servePlugin(packageDir: string): void {
  const provider = new KataDeployProvider({ ...packageName(packageDir), dirname: packageDir });
  // Components constructed here register the rollout as this package's custom resource, not a dynamic one.
  useRolloutOfPackage(provider.version);
  // An ambient connection is re-read here at each use, with the loader the program side uses.
  useAmbientLoader((context) => loadKubeConfig({ context }));
  // Synchronous up to its `isServing` flag: run-plugin's later componentProviderHost call starts nothing.
  void main(provider, process.argv.slice(2));
}
