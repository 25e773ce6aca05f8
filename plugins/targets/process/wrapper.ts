/**
 * The worker runs under a small /bin/sh wrapper that records its exit status in a file,
 * so the status survives an orchestrator that crashed or restarted meanwhile (nobody
 * is left to call waitpid() then, and the worker is no longer our child).
 *
 *   $1 = exit file, the rest = the worker's argv.
 *
 * - The wrapper is spawned detached, so it leads its own process group; the worker, an
 *   asynchronous child with job control off, stays in that group, and stop() signals
 *   the whole group.
 * - TERM is *caught* (`:`) before the fork, so the worker starts with TERM at its
 *   default action (caught signals are reset in children, ignored ones are not), and is
 *   *ignored* after it: the group's SIGTERM then ends only the worker, while the wrapper
 *   lives on to record how it ended. SIGKILL ends both; stop() then records 137 itself.
 * - `wait` reports 128+N for a worker killed by signal N (143 for TERM, 137 for KILL).
 *   A TERM landing in the instant before it was ignored can still cut one `wait`
 *   short (status > 128 while the worker lives): wait once more for the real status
 *   (127 means the shell had already reported it, so the first status stands).
 * - The exit file is written aside and renamed over: readers see all of it or nothing.
 */
export const WRAPPER_SCRIPT = `exit_file=$1; shift
trap ':' TERM
"$@" &
child=$!
trap '' TERM HUP
wait "$child"; code=$?
if [ "$code" -gt 128 ] && kill -0 "$child" 2>/dev/null; then
  wait "$child"; again=$?
  [ "$again" -eq 127 ] || code=$again
fi
printf '%s\\n' "$code" > "$exit_file.tmp.$$" && mv -f -- "$exit_file.tmp.$$" "$exit_file"
exit "$code"`;

/** $0 of the wrapper, as it shows up in `ps`. */
const WRAPPER_NAME = "blacktree-worker";

export function wrapperArgs(exitFile: string, command: string[]): string[] {
  return ["-c", WRAPPER_SCRIPT, WRAPPER_NAME, exitFile, ...command];
}
