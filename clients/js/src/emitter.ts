// A small typed event emitter that works the same in browsers and Node.

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `handler` for each `name` event; returns a function that removes it. */
  on<K extends keyof Events>(name: K, handler: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(handler as Listener<never>);
    return () => this.off(name, handler);
  }

  off<K extends keyof Events>(name: K, handler: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(handler as Listener<never>);
  }

  protected listenerCount(name: keyof Events): number {
    return this.listeners.get(name)?.size ?? 0;
  }

  /** Calls each handler; one that throws does not stop the others, nor the client. */
  protected emit<K extends keyof Events>(name: K, value: Events[K]): void {
    for (const handler of [...(this.listeners.get(name) ?? [])]) {
      try {
        (handler as Listener<Events[K]>)(value);
      } catch (error) {
        console.error(`pingpong-relay-client: a ${String(name)} handler threw:`, error);
      }
    }
  }
}
