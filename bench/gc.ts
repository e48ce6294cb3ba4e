// What V8's garbage collector did over a measured step, from v8.GCProfiler's before/after heap
// statistics of every collection: how many young-generation collections (scavenges) and full ones
// (mark-compacts) ran, their time on the main thread, the bytes allocated and the bytes promoted
// (copied from the young generation to the old one: what survived two scavenges, which a later
// mark-compact then has to mark and compact, on helper threads whose CPU is the process's).
// Allocation and promotion move far less with the machine's load than times do.
import { GCProfiler, getHeapStatistics } from 'node:v8';

interface SpaceStats {
  spaceName: string;
  spaceUsedSize: number;
}
interface HeapAt {
  heapStatistics: { usedHeapSize: number };
  heapSpaceStatistics: SpaceStats[];
}
interface GcEntry {
  gcType: string;
  cost: number;
  beforeGC: HeapAt;
  afterGC: HeapAt;
}

export interface GcFigures {
  scavenges: number;
  markCompacts: number;
  /** Main-thread time inside collections (GCProfiler's cost), ms. */
  gcMs: number;
  allocatedMB: number;
  promotedMB: number;
}

/** The spaces a scavenge promotes into. */
const OLD = new Set(['old_space', 'code_space', 'large_object_space', 'code_large_object_space']);
const oldUsed = (h: HeapAt) => h.heapSpaceStatistics.reduce((n, s) => n + (OLD.has(s.spaceName) ? s.spaceUsedSize : 0), 0);
const mb = (bytes: number) => +(bytes / 1e6).toFixed(1);

/** Starts watching the collector; the function returned stops and sums what it saw. */
export function watchGc(): () => GcFigures {
  const profiler = new GCProfiler();
  const used0 = getHeapStatistics().used_heap_size;
  profiler.start();
  return () => {
    const usedEnd = getHeapStatistics().used_heap_size;
    const entries = (profiler.stop()?.statistics ?? []) as GcEntry[];
    const out: GcFigures = { scavenges: 0, markCompacts: 0, gcMs: 0, allocatedMB: 0, promotedMB: 0 };
    let allocated = 0;
    let promoted = 0;
    let last = used0;
    for (const e of entries) {
      out.gcMs += e.cost / 1000;
      allocated += Math.max(0, e.beforeGC.heapStatistics.usedHeapSize - last);
      last = e.afterGC.heapStatistics.usedHeapSize;
      if (e.gcType === 'Scavenge') {
        out.scavenges++;
        promoted += Math.max(0, oldUsed(e.afterGC) - oldUsed(e.beforeGC));
      } else if (e.gcType === 'MarkSweepCompact') out.markCompacts++;
    }
    allocated += Math.max(0, usedEnd - last);
    out.gcMs = +out.gcMs.toFixed(1);
    out.allocatedMB = mb(allocated);
    out.promotedMB = mb(promoted);
    return out;
  };
}
