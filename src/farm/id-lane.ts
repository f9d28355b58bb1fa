/**
 * A lane of task ids in id order, for the leader's queue view (queue-view.ts): pure bookkeeping, no I/O.
 * Ids are consumed from `head`; a lane is sorted again only when an older id comes in (a task given back
 * or retried keeps its id), so appending in order costs nothing.
 */
/** Ids in order, consumed from `head`; sorted again when an older id comes in. */
export class IdLane {
  ids: string[] = [];
  head = 0;
  stale = false;

  add(id: string): void {
    const last = this.ids.length > this.head ? this.ids[this.ids.length - 1]! : undefined;
    if (last !== undefined && id <= last) this.stale = true;
    this.ids.push(id);
  }

  /** The ids from the head on, in order, dropping those `keep` refuses from the front. */
  live(keep: (id: string) => boolean): string[] {
    if (this.stale) {
      this.ids = [...new Set(this.ids.slice(this.head).filter(keep))].sort();
      this.head = 0;
      this.stale = false;
    }
    while (this.head < this.ids.length && !keep(this.ids[this.head]!)) this.head++;
    if (this.head > 4096 && this.head > this.ids.length / 2) {
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
    return this.ids;
  }
}
