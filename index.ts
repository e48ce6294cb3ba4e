// The package root: every public name is listed here; internals are not reachable from outside.
export type { Bus, Subscription, Handler, DeliveryContext, ReplayOptions, ReplayResult, RewindOptions, Bound, DeadLetter, DeadLetters, TopicStats } from './bus/contract.js';
export type { CloudEvent, EventInput, PublishOptions } from './bus/event.js';
export type { BusOptions, SubscribeOptions, BackoffOptions, RetentionOptions } from './bus/options.js';
export { AgentbusError, ValidationError, BusClosedError, NotFoundError, ConnectionError, NonRetryableError, type ErrorCode } from './bus/errors.js';
export { createBus, type CreateBusOptions } from './runtime/config.js';
export { createSqliteBus, type SqliteBusOptions } from './adapters/sqlite/index.js';
