// Level-triggered passes, as client-go's work queue treats a key: never two
// passes at once; any number of triggers while a pass runs collapse into one
// more pass after it; a trigger while idle starts one.
export class Coalescer {
  private running = false;
  private again = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
    private readonly defer: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {}

  trigger(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.defer(() => void this.loop());
  }

  get busy(): boolean {
    return this.running;
  }

  /** Resolves when no pass runs or is due. */
  idle(): Promise<void> {
    return this.running ? new Promise((r) => this.waiters.push(r)) : Promise.resolve();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (e) {
        this.onError(e);
      }
    } while (this.again);
    this.running = false;
    for (const w of this.waiters.splice(0)) w();
  }
}
