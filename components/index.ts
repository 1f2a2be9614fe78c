// The component part's public API.
export * from "./args";
export { KataDeploy, KATA_DEPLOY_TYPE } from "./kataDeploy";
export { planKataDeploy, DEFAULT_RESOURCE_NAME } from "./plan";
export type { Plan, PlannedChart, PlannedSelection } from "./plan";
export { planRollout } from "./rolloutObjects";
export type { PlannedRollout, DataSummary } from "./rolloutObjects";
export { KataDeployArgsError, checkArgs } from "./validation";
export type { ArgIssue } from "./validation";
export { CHART_REFERENCE, CHART_REPOSITORY, CHART_VERSION, DEFAULT_NAMESPACE } from "./chartDefaults";
// Reading `nodeOutcomes` back, also from a StackReference (rollout/outcomes.ts).
export { nodeOutcome, listNodeOutcomes } from "../rollout";
export type { NodeOutcomeOf } from "../rollout";
