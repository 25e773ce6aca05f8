import { blacktreeError } from "@blacktree/sdk";

/** `k=v,k2=v2` → `{ k: "v", k2: "v2" }`; a malformed pair fails the launch (retrying cannot fix it). */
export function parseSelector(text: string | undefined): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of (text ?? "").split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw blacktreeError("LAUNCH_FAILED", `pool selector '${pair}' is not name=value`, undefined, { retryable: false });
    selector[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return selector;
}

export function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([name, value]) => labels[name] === value);
}

export const describeSelector = (selector: Record<string, string>) => Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(",") || "(any)";
