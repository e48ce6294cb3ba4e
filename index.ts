// The package root: every public name is listed here; internals are not reachable from outside.
export type { BusOptions, SubscribeOptions, DeliveryOptions, BackoffOptions, RetentionOptions, RequestOptions } from './bus/contract.js';
export type { Bus, BusObserver, DueMoved, RequestOutcome, Subscription, Handler, DeliveryContext, DeliveryOutcome, KeyedStats, ReplayOptions, ReplayResult, RewindOptions, Bound, DeadLetter, DeadLetters, ScheduledEvent, Schedules, TopicStats, StoreHealth, PublishResult, SpoolStats } from './bus/contract.js';
export type { CloudEvent, EventInput, PublishOptions } from './bus/event.js';
export type { KeyOf, KeyedOptions, KeyedStateOptions, KeyedDeliveryContext, KeyedStates, KeyState, KeyStep, KeyWait, KeyedRequestOptions, WaitOptions } from './bus/keyed/contract.js';
export { AgentbusError, ValidationError, BusClosedError, NotFoundError, ConnectionError, ConfigurationError, NonRetryableError, CircuitOpenError, OwnershipLostError, StateTooLargeError, TimeoutError, RetryLaterError, RequestTimeoutError, RequestFailedError, WaitTimeoutError, NotReplicatedError, ReplayRequestError, type ErrorCode } from './bus/errors.js';
export { createBus, type CreateBusOptions } from './runtime/config.js';
// The adapters are loaded when a bus is created, not by importing this root (runtime/stores.ts).
export { createSqliteBus, createRedisBus } from './runtime/stores.js';
export type { SqliteBusOptions } from './adapters/sqlite/index.js';
export type { RedisBusOptions } from './adapters/redis/index.js';
export type { SpoolOptions } from './adapters/redis/spool/options.js';
export { BaseAgent, type AgentOptions, type AgentContext, type HandlerContext, type KeyedContext } from './agents/base.js';
export { AgentHost, type AgentHostOptions, type AgentReplayResult, type HostStatus } from './runtime/host.js';
export type { ReplayPublished, ReplayPublishing } from './runtime/capture.js';
export type { AgentEntry } from './runtime/agent-spec.js';
export type { SupervisorOptions, Strategy, RestartType, Clock, Transition, ChildStatus } from './runtime/supervisor.js';
export type { LifecycleState } from './runtime/lifecycle.js';
export { serveHttp, type HttpEndpoints, type HttpOptions } from './runtime/http.js';
export { serveUi, type ServeUiOptions } from './runtime/ui/serve.js';
export { CircuitBreaker, type CircuitBreakerOptions } from './runtime/breaker.js';
