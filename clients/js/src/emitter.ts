// A small typed event emitter: listeners run in order, and one that throws
// does not stop the others (its error goes to the "error" listeners, or to
// the console when there are none).

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** on adds a listener and returns the function that removes it. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<Events[K]>)(value);
      } catch (err) {
        if (event !== "error" && this.listeners.get("error" as keyof Events)?.size) {
          this.emit("error" as keyof Events, err as Events[keyof Events]);
        } else {
          console.error("@signal-notify/client: a listener threw", err);
        }
      }
    }
  }
}
