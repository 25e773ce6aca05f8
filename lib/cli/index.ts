export { runCli, DEFAULT_URL } from "./program";
export type { RunOptions } from "./program";
export { EXIT, exitCodeOfState, CliError } from "./exit-codes";
export { ApiClient, ApiError } from "./client";
export { followStream } from "./sse";
export { watchJob } from "./watch";
export type { CliIo } from "./output";
