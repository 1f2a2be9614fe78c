// Public surface of the chart 4.0.0 renderer (Node built-ins only; safe for the serialized dynamic provider).
export * from "./defaults";
export * from "./dispatcherJobs";
export type * from "./k8s";
export * from "./names";
export {
  chartDispatcherJob,
  dispatcherFlags,
  dispatcherSelectionArgs,
  perNodeJobTemplate,
  renderChart,
  renderMerged,
  withoutHookAnnotations,
  RUNTIME_CLASS_OVERHEAD,
  CLEANUP_TEMPLATE_KEY,
  HOOK_ANNOTATION,
  HOOK_DELETE_POLICY_ANNOTATION,
  HOOK_WEIGHT_ANNOTATION,
  INSTALL_TEMPLATE_KEY,
  JOB_TEMPLATES_MOUNT,
  RESOURCE_POLICY_ANNOTATION,
  UPSTREAM_DISPATCHER_BINARY,
  type DeploymentMode,
  type DispatcherStage,
  type Release,
  type RenderedChart,
  type RenderOptions,
} from "./render";
export * from "./selectors";
export {
  ChartValuesError,
  commonEnv,
  containerdConfPath,
  dispatcherImage,
  kataDeployImage,
} from "./workload";
export { toYaml, YamlEmitError } from "./yaml";
