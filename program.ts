// Standalone Pulumi program (Pulumi.yaml `main`): KataDeploy from stack config; the exports are the stack outputs.
import { kataDeployStack } from "./components/stackProgram";

export = kataDeployStack();
