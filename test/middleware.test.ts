// Handler middleware (runtime/middleware/) as plain functions: no bus, no host. A handler context
// here is a small object of the shape AgentInstance hands over.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AgentHandler, HandlerContext } from '../agents/base.js';
import type { CloudEvent, EventInput, PublishOptions } from '../bus/event.js';
import { compose, type Middleware } from '../runtime/middleware/middleware.js';
import { propagateTrace } from '../runtime/middleware/trace.js';

const event = (traceparent?: string): CloudEvent => ({ specversion: '1.0', id: 'e1', type: 't', source: '/s', time: '2026-01-01T00:00:00.000Z', data: {}, ...(traceparent ? { traceparent } : {}) });
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** A context recording what is published through it; `agent` is a getter, as on the real one. */
class FakeContext {
  published: Array<[string, PublishOptions | undefined]> = [];
  batches: EventInput[][] = [];
  get agent() {
    return 'Agent';
  }
  publish(type: string, _data: unknown, options?: PublishOptions): Promise<string> {
    this.published.push([type, options]);
    return Promise.resolve('id');
  }
  publishBatch(events: EventInput[]): Promise<string[]> {
    this.batches.push(events);
    return Promise.resolve([]);
  }
}
const fake = () => new FakeContext() as FakeContext & HandlerContext;

test('compose: the first middleware is outermost; with none, the handler itself', async () => {
  const calls: string[] = [];
  const tag = (name: string): Middleware => (next) => async (e, ctx) => {
    calls.push(`${name} in`);
    await next(e, ctx);
    calls.push(`${name} out`);
  };
  const handler: AgentHandler = () => void calls.push('handler');
  await compose([tag('a'), tag('b')], handler)(event(), fake());
  assert.equal(calls, ['a in', 'b in', 'handler', 'b out', 'a out']);
  assert.is(compose([], handler), handler);
});

test('trace: publishes through the context of a traced event carry its traceparent, unless they set one', async () => {
  const ctx = fake();
  let seen: HandlerContext | null = null;
  const h = propagateTrace(async (_e, c) => {
    seen = c;
    await c.publish('a', 1);
    await c.publish('b', 2, { subject: 's' });
    await c.publish('c', 3, { traceparent: 'own' });
    await c.publishBatch([{ type: 'd', data: 4 }, { type: 'e', data: 5, traceparent: 'own' }]);
  });
  await h(event(TRACE), ctx);
  assert.equal(ctx.published, [
    ['a', { traceparent: TRACE }],
    ['b', { traceparent: TRACE, subject: 's' }],
    ['c', { traceparent: 'own' }],
  ]);
  assert.equal(ctx.batches, [[{ traceparent: TRACE, type: 'd', data: 4 }, { traceparent: 'own', type: 'e', data: 5 }]]);
  assert.is(seen!.agent, 'Agent', 'the rest of the context is the original one');
});

test('trace: an event without a traceparent gets its context untouched', async () => {
  const ctx = fake();
  let seen: HandlerContext | null = null;
  await propagateTrace(async (_e, c) => {
    seen = c;
    await c.publish('a', 1);
  })(event(), ctx);
  assert.is(seen, ctx);
  assert.equal(ctx.published, [['a', undefined]]);
});

test('trace: a publishBatch of something not an array goes through unchanged (the bus refuses it)', async () => {
  const ctx = fake();
  await propagateTrace((_e, c) => c.publishBatch('nope' as never))(event(TRACE), ctx);
  assert.equal(ctx.batches, ['nope']);
});

test.run();
