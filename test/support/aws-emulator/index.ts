export { AwsEmulator, startAwsEmulator, useDummyAwsCredentials } from "./server";
export type { EmulatorOptions } from "./server";
export type { Fault, CallRecord } from "./clock";
