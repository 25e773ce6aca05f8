import { addKeysFromSpec, ApiKeys, hashedKeyEntry } from "../../lib/auth/api-keys";

/** BLACKTREE_API_KEYS entries: plain keys and `name:role:hmac:<hash>` ones (what `blacktree keys hash` prints). */
const PEPPER = Buffer.from("unit-test-pepper-0123456789abcdef0123");
const KEY = "unit-test-key-0123456789";

test("a hashed entry verifies the key it was made from, with the same pepper only", () => {
  const entry = hashedKeyEntry(PEPPER, "ci", "operator", KEY);
  expect(entry).toMatch(/^ci:operator:hmac:[0-9a-f]{64}$/);
  const keys = new ApiKeys(PEPPER);
  addKeysFromSpec(keys, `alice:submitter:plain-key-0123456789,${entry}`);
  expect(keys.verify(KEY)).toEqual({ name: "ci", role: "operator" });
  expect(keys.verify("plain-key-0123456789")).toEqual({ name: "alice", role: "submitter" });
  expect(keys.verify(entry.split(":")[3])).toBeNull(); // the hash is no key
  const other = new ApiKeys(Buffer.from("another-pepper-0123456789abcdef012345"));
  addKeysFromSpec(other, entry);
  expect(other.verify(KEY)).toBeNull();
});

test.each([
  ["ci:operator:hmac:abc", /a hashed entry is name:role:hmac:<64 hex digits>/],
  [`ci:boss:hmac:${"a".repeat(64)}`, /role 'boss'/],
  [`c i:admin:hmac:${"a".repeat(64)}`, /name 'c i'/],
  ["ci:admin:short", /at least 16 characters/],
  ["ci:admin:a:b:c", /entries must be name:role:key \(or name:role:hmac:<hash>\)/],
])("%s is refused, named", (spec, message) => {
  expect(() => addKeysFromSpec(new ApiKeys(PEPPER), spec)).toThrow(message);
});

test("hashedKeyEntry checks the entry as a node would", () => {
  expect(() => hashedKeyEntry(PEPPER, "ci", "operator", "short")).toThrow(/at least 16 characters/);
  expect(() => hashedKeyEntry(PEPPER, "ci", "root", KEY)).toThrow(/role 'root'/);
});
