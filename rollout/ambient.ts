// The ambient kubeconfig, re-read by the provider at each use. When the user passes no kubeconfig, the rollout's
// `connection` is an ambient reference (rollout/connection.ts `ambientReference`: server, context, source; no
// credential), so the state holds no credential the user did not pass, and a destroy or refresh uses the
// credentials in effect when it runs (a rotated token, a CI kubeconfig). Node built-ins only: serialized with the
// provider.
import { createRequire } from "node:module";
import * as path from "node:path";
import { sameServer, type ConnectionSpec } from "./connection";
import {
  ConnectionResolutionError,
  ambientSource,
  specFromKubeConfig,
  type LoadedKubeConfig,
} from "./kubeconfigSpec";

/** Loads the ambient kubeconfig of this process (`$KUBECONFIG`, `~/.kube/config`, in-cluster), with a context. */
export type AmbientLoader = (context: string | undefined) => { kc: LoadedKubeConfig; source: string };

interface KubeConfigLibrary {
  KubeConfig: new () => LoadedKubeConfig & {
    loadFromDefault(): void;
    setCurrentContext(context: string): void;
  };
}

/**
 * The dynamic-provider host's loader: @kubernetes/client-node from the folder the host runs in (the program's,
 * where this package's dependencies are installed), loaded only when an ambient reference is used.
 */
export function loadAmbientFromWorkingDirectory(context: string | undefined): {
  kc: LoadedKubeConfig;
  source: string;
} {
  let library: KubeConfigLibrary;
  try {
    library = createRequire(path.join(process.cwd(), "package.json"))(
      "@kubernetes/client-node",
    ) as KubeConfigLibrary;
  } catch (err) {
    throw new ConnectionResolutionError(
      `the rollout connects with the ambient kubeconfig, but @kubernetes/client-node cannot be loaded from ` +
        `${process.cwd()} to read it (${(err as Error).message}); run pulumi from the program's folder, or pass ` +
        `the kubeconfig argument`,
    );
  }
  const kc = new library.KubeConfig();
  kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return { kc, source: ambientSource(kc) };
}

/** Set by the package's plugin (plugin/serve.ts), which loads kubeconfigs itself; unset in the dynamic host. */
let pluginLoader: AmbientLoader | undefined;

export function useAmbientLoader(loader: AmbientLoader): void {
  pluginLoader = loader;
}

/**
 * The spec to connect with now: an explicit spec as it is; an ambient reference re-read from this process's
 * environment, refused (before any request) when it reaches another API server than the one recorded, so a
 * destroy or a mode switch never acts on a cluster the chart was not installed on.
 */
export function liveConnection(spec: ConnectionSpec, load?: AmbientLoader): ConnectionSpec {
  if (!spec.ambient) return spec;
  const { kc, source } = (load ?? pluginLoader ?? loadAmbientFromWorkingDirectory)(spec.context);
  const live = specFromKubeConfig(kc, source);
  if (!sameServer(live.server, spec.server)) {
    const context = spec.context ? `, context ${spec.context}` : "";
    throw new ConnectionResolutionError(
      `the release was installed through ${spec.server} with the ambient kubeconfig (${spec.source ?? "ambient"}` +
        `${context}), but the ambient kubeconfig (${source}${context}) now reaches ${live.server}; point ` +
        `$KUBECONFIG at the cluster of ${spec.server}, or pass that cluster's kubeconfig as the kubeconfig argument ` +
        `and run pulumi up`,
    );
  }
  return live;
}
