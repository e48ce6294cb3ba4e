import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostProcessSuite } from './host-process.js';

// The default adapter: no AGENTBUS_ADAPTER at all, only the file.
hostProcessSuite('sqlite', { AGENTBUS_SQLITE_PATH: join(mkdtempSync(join(tmpdir(), 'agentbus-hp-')), 'bus.db') });
