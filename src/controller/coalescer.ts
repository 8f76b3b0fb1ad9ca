// Level-triggered passes, as client-go's work queue treats a key: never two
// passes at once; any number of triggers while a pass runs collapse into one
// more pass after it; a trigger while idle starts one.
export class Coalescer {
  private running = false;
  private again = false;
  private waiters: (() => void)[] = [];

  private lastStart = -Infinity;

  /**
   * minGapMs: at least this long between the starts of two passes, so a burst
   * of triggers (every finished launch asks for one) does not keep the engine
   * busy listing containers while it is creating them.
   */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
    private readonly defer: (fn: () => void) => void = (fn) => void setImmediate(fn),
    private readonly minGapMs = 0,
    private readonly now: () => number = () => Date.now(),
    private readonly wait: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
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
      const gap = this.lastStart + this.minGapMs - this.now();
      if (gap > 0) await this.wait(gap);
      this.again = false;
      this.lastStart = this.now();
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
