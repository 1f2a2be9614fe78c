// Package entry: the TypeScript library API, and what `pulumi package add` analyzes (every exported
// ComponentResource becomes a schema resource; here only KataDeploy). Loaded by `@pulumi/pulumi/cmd/run-plugin`
// (PulumiPlugin.yaml), it also serves the package's provider plugin: KataDeploy plus the Rollout resource (plugin/).
import { requireSupportedNode } from "./plugin/nodeVersion";
requireSupportedNode();

import { serveIfPluginHost } from "./plugin/host";

export * from "./components";

serveIfPluginHost(__dirname);
