// Package entry: the TypeScript library API, and what `pulumi package add` analyzes (every exported
// ComponentResource becomes a schema resource; here only KataDeploy).
export * from "./components";
