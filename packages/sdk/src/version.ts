/**
 * The plugin API version this SDK describes, and that an orchestrator built on it
 * implements: the loader checks each plugin's `apiVersion` range against it. It is the
 * SDK package's own `major.minor.0` (a test holds them together): a minor release adds to
 * the API, a major one changes it.
 */
export const PLUGIN_API_VERSION = "1.2.0";
