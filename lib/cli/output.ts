import ora, { type Ora } from "ora";
import pc from "picocolors";
import Table from "cli-table3";

export interface Stream {
  write(chunk: string): boolean;
  isTTY?: boolean;
}

export interface CliIo {
  stdout: Stream;
  stderr: Stream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

/**
 * Where the CLI writes. With `--json` only machine output (one JSON document, or one JSON
 * object a line for streams) goes to stdout and everything for people to stderr. Colours
 * and the spinner only on a terminal (and never with NO_COLOR or --no-color).
 */
export class Output {
  readonly colors: ReturnType<typeof pc.createColors>;
  private spinner: Ora | null = null;

  constructor(
    readonly io: CliIo,
    readonly json: boolean,
    color: boolean,
  ) {
    const enabled = color && io.stdout.isTTY === true && !io.env.NO_COLOR && io.env.TERM !== "dumb";
    this.colors = pc.createColors(enabled);
  }

  /** Human output (stdout; stderr with --json so stdout stays parseable). */
  line(text = ""): void {
    this.around(() => (this.json ? this.io.stderr : this.io.stdout).write(text + "\n"));
  }

  /** Progress and warnings: always stderr. */
  note(text: string): void {
    this.around(() => this.io.stderr.write(text + "\n"));
  }

  /** A machine-readable document (stdout). */
  data(value: unknown): void {
    this.around(() => this.io.stdout.write(JSON.stringify(value, null, 2) + "\n"));
  }

  /** One JSON object a line (stdout): for streams a script reads as they come. */
  record(value: unknown): void {
    this.around(() => this.io.stdout.write(JSON.stringify(value) + "\n"));
  }

  table(head: string[], rows: string[][]): void {
    if (rows.length === 0) return;
    const tty = this.io.stdout.isTTY === true && !this.json;
    const table = new Table({
      head: head.map((h) => this.colors.bold(h)),
      style: { head: [], border: [], compact: true, "padding-left": 0, "padding-right": 2 },
      // Plain aligned columns: readable on a terminal, and `awk`-able when piped.
      chars: tty ? undefined : { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "" },
    });
    table.push(...rows);
    this.line(table.toString().split("\n").map((l) => l.trimEnd()).join("\n"));
  }

  /** A spinner on stderr while something runs (only on a terminal, never with --json). */
  progress(text: string): void {
    if (this.json || this.io.stderr.isTTY !== true) return;
    if (!this.spinner) this.spinner = ora({ text, stream: this.io.stderr as NodeJS.WritableStream, discardStdin: false, hideCursor: false }).start();
    else this.spinner.text = text;
  }

  stopProgress(): void {
    this.spinner?.stop();
    this.spinner = null;
  }

  /** Writes without tearing the spinner's line. */
  private around(write: () => void): void {
    if (!this.spinner?.isSpinning) {
      write();
      return;
    }
    this.spinner.clear();
    write();
    this.spinner.render();
  }
}
