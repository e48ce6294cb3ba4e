// The producer of seed 000 (simulations/ingest.py): publishes raw records and exits, whether or
// not any consumer runs.   node --import tsx examples/ingestion/producer.ts [COUNT] [FIRST]
import { createBus } from '../../index.js';

const count = Number(process.argv[2] ?? 100);
const first = Number(process.argv[3] ?? 0);
const bus = await createBus();
for (let i = first; i < first + count; i += 500) {
  const n = Math.min(500, first + count - i);
  await bus.publishBatch(
    Array.from({ length: n }, (_, j) => {
      const k = i + j;
      const record = { record_id: `rec-${k}`, name: `Person ${k}`, email: `person${k}@example.com`, ssn: `${100 + (k % 900)}-${10 + (k % 90)}-${1000 + k}`, notes: `ingested by the simulation, #${k}` };
      // The record id is the event id: publishing a record again inside the dedup window stores it once.
      return { type: 'record.raw', data: record, id: record.record_id, subject: record.record_id };
    }),
  );
}
await bus.close();
console.log(`published ${count} records`);
