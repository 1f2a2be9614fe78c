// When `@pulumi/pulumi/cmd/run-plugin` loads this package (what PulumiPlugin.yaml's nodejs runtime starts), serve
// KataDeployProvider instead of the component-only host that run-plugin would start for the exported KataDeploy.
// @pulumi/pulumi's provider/server `main()` serves one provider per process and ignores later calls, so serving here,
// while index.ts loads, makes run-plugin's own componentProviderHost call a no-op.
import * as path from "node:path";

const RUN_PLUGIN = path.join("@pulumi", "pulumi", "cmd", "run-plugin", "index.js");

/** True when this process is the package's provider plugin, started by Pulumi's nodejs language host. */
export function isPluginHost(main: string | undefined = require.main?.filename): boolean {
  return !!main && main.endsWith(`${path.sep}${RUN_PLUGIN}`);
}

/** Serves the provider when running as the plugin; a no-op for programs and tests that import the library. */
export function serveIfPluginHost(packageDir: string): void {
  if (!isPluginHost()) return;
  // Loaded only here: programs that use the library never load the provider server or the schema analyzer.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { servePlugin } = require("./serve") as typeof import("./serve");
  servePlugin(packageDir);
}
