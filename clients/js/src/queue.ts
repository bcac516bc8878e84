// The buffer behind `for await (const envelope of client)`: one per iteration.

export class EnvelopeQueue<T> implements AsyncIterator<T> {
  private readonly items: T[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  /** `detach`: called once when the iteration ends, however it ends. */
  constructor(private readonly detach: () => void) {}

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** Ends the iteration: at once with `discard`, else once what is buffered has been read. */
  end(discard = false): void {
    this.ended = true;
    if (discard) {
      this.items.length = 0;
    }
    this.wake?.();
  }

  /** Ends the iteration with an error, once what is buffered has been read. */
  fail(error: Error): void {
    this.failure = error;
    this.end();
  }

  async next(): Promise<IteratorResult<T>> {
    while (this.items.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    if (this.items.length > 0) {
      return { value: this.items.shift() as T, done: false };
    }
    this.detach();
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined; // thrown once; the iteration is over after it
      throw failure;
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<T>> {
    this.ended = true;
    this.items.length = 0;
    this.detach();
    return { value: undefined, done: true };
  }
}
