// The admin UI's pages: each a small server-rendered shell (headings, labelled forms, tables with
// captions and header cells) that /ui/app.js fills from the JSON API. No inline script or style,
// so the Content-Security-Policy can forbid both.

export const PAGES = {
  overview: 'Overview',
  topics: 'Topics and groups',
  'dead-letters': 'Dead letters',
  'dead-letter': 'Dead letter',
  keys: 'Keyed state',
  tail: 'Live tail',
  schedules: 'Schedules',
} as const;
export type PageName = keyof typeof PAGES;

/** The navigation, in order (the single dead letter page is reached from the list). */
const NAV: PageName[] = ['overview', 'topics', 'dead-letters', 'keys', 'tail', 'schedules'];

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const table = (id: string, caption: string, heads: string[]) =>
  `<table id="${id}"><caption>${caption}</caption><thead><tr>${heads.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead><tbody></tbody></table>`;

const field = (name: string, label: string, type = 'text', placeholder = '') =>
  `<label>${label}<input name="${name}" id="f-${name}" type="${type}"${placeholder ? ` placeholder="${esc(placeholder)}"` : ''}></label>`;

/** The topic page's "replay to an agent" (actions on): `agentbus replay --agent` for one topic. */
const REPLAY_FORM = `
<section aria-labelledby="h-replay" id="replay"><h2 id="h-replay">Replay to an agent</h2>
<p>Hands a topic's stored events to a fresh instance of an agent, as <code>agentbus replay --agent</code> does: no group moves and nothing is acknowledged; what the agent publishes is listed, and stored only when asked.</p>
<p id="replay-note" hidden>Served by <code>agentbus ui</code>, which runs no agents: replay from the UI of the host that runs them, or with <code>agentbus replay --agent</code>.</p>
<form id="replay-form" class="search">
<label>Topic<select name="type" id="f-replay-type"></select></label><label>Agent<select name="agent" id="f-replay-agent"></select></label>
${field('replay-from', 'From (empty: the oldest)', 'text', 'ISO-8601, epoch ms or position')}${field('replay-to', 'To (empty: the newest)', 'text', 'ISO-8601, epoch ms or position')}
<label class="check"><input type="checkbox" name="publish" id="f-replay-publish"> Store what it publishes</label>
<button type="submit">Replay\u2026</button>
</form>
<pre id="replay-result" hidden></pre>
</section>`;

const BODIES: Record<PageName, (actions: boolean) => string> = {
  overview: () => `
<dl id="summary" class="summary"></dl>
<section aria-labelledby="h-agents"><h2 id="h-agents">Agents</h2>
<p id="agents-note" hidden>Served by <code>agentbus ui</code>: store-level data only. The agents' lifecycle is on each host's <code>/ui</code>.</p>
${table('agents', 'Agents of this host, with their lifecycle state', ['Agent', 'State', 'Restarts', 'Last error', 'Last transitions'])}
</section>`,
  topics: (actions) => `
${table('topics', 'Each topic, and each group reading it', ['Topic', 'Length', 'Group', 'Consumers', 'Pending', 'Lag', 'Dead letters', ...(actions ? ['Action'] : [])])}
<section aria-labelledby="h-lag"><h2 id="h-lag">Lag over the last minutes</h2>
<p>Events stored and not yet handed to each group, sampled by the server while the UI is in use (every 5 seconds by default; the last 15 minutes are kept).</p>
<div id="lag-chart"></div><ul id="lag-legend" class="legend"></ul>
</section>${actions ? REPLAY_FORM : ''}`,
  'dead-letters': (actions) => `
<form id="search" class="search" role="search" aria-label="Search dead letters">
${field('type', 'Type')}${field('group', 'Group')}${field('subject', 'Subject contains')}${field('event', 'Event id contains')}
${field('reason', 'Reason contains')}${field('error', 'Error contains')}${field('from', 'Failed from', 'datetime-local')}${field('to', 'Failed until', 'datetime-local')}
<button type="submit">Search</button> <button type="reset">Clear</button>
</form>
${actions ? '<p class="bulk"><button type="button" id="retry-selected">Retry selected</button> <button type="button" id="retry-fresh-selected" title="Retry with their recorded ctx.step results and waits removed: their steps run again">Retry fresh selected</button> <button type="button" id="purge-selected" class="danger">Purge selected</button></p>' : ''}
${table('dead-letters', 'Dead letters matching the search, newest first', [...(actions ? ['<span class="sr">Select</span>'] : []), 'Failed at', 'Type', 'Group', 'Subject', 'Event id', 'Reason', 'Attempts', 'Error'])}
<p id="scan"></p>`,
  'dead-letter': (actions) => `
<p id="gone" class="notice" hidden></p>
<dl id="detail" class="detail"></dl>
${actions ? '<p class="bulk"><button type="button" id="retry-one">Retry</button> <button type="button" id="retry-fresh-one" title="Retry with its recorded ctx.step results and waits removed: its steps run again">Retry fresh</button> <button type="button" id="purge-one" class="danger">Purge</button></p>' : ''}
<section aria-labelledby="h-error"><h2 id="h-error">Error</h2><pre id="stack"></pre></section>
<section aria-labelledby="h-event"><h2 id="h-event">Event</h2><pre id="event"></pre></section>`,
  keys: () => `
<form id="key-group"><label>Group <select name="group" id="f-group"></select></label> <button type="submit">Show keys</button></form>
${table('keys', 'Keys with state in the group, in key order', ['Key', 'Version', 'Bytes', 'Updated'])}
<p><button type="button" id="keys-more" hidden>More keys</button></p>
<section aria-labelledby="h-state"><h2 id="h-state">State</h2><pre id="state">Choose a key.</pre></section>
${table('waits', 'Durable waits and requests (ctx.waitFor, ctx.request) recorded in the group, by key then deadline', ['Key', 'Awaited type', 'Deadline', 'Status', 'Record id'])}`,
  tail: () => `
<form id="tail-form">${field('type', 'Type or pattern', 'text', 'orders.*')} <button type="submit" id="tail-start">Start</button> <button type="button" id="tail-stop" disabled>Stop</button></form>
${table('tail', 'Events as they are stored, newest first (polled every 2 seconds)', ['Time', 'Type', 'Subject', 'Id', 'Data'])}`,
  schedules: (actions) => `
<form id="schedule-filter" class="search" aria-label="Filter pending delayed events">
${field('type', 'Type')}<label>Order<select name="order" id="f-order"><option value="earliest">Earliest due first</option><option value="latest">Latest due first</option></select></label>
<button type="submit">Show</button>
</form>
${actions ? '<p class="bulk"><button type="button" id="cancel-selected" class="danger">Cancel selected</button></p>' : ''}
${table('schedules', "Pending delayed events, agents' reminders (named [agent, name, key]) and schedule ticks", [...(actions ? ['<span class="sr">Select</span>'] : []), 'Due at', 'Type', 'Name', 'Subject', 'Event id', 'Entry id', ...(actions ? ['Action'] : [])])}
<p id="schedules-page"><button type="button" id="schedules-prev" hidden>Previous page</button> <span id="schedules-count"></span> <button type="button" id="schedules-next" hidden>Next page</button></p>`,
};

/** A page's HTML; `notice` replaces its body (the 404 page). */
export function page(name: PageName, actions: boolean, notice?: string): string {
  const title = notice ? 'Not found' : PAGES[name];
  const nav = NAV.map((n) => `<li><a href="/ui/${n === 'overview' ? '' : n}"${n === name && !notice ? ' aria-current="page"' : ''}>${PAGES[n]}</a></li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · agentbus</title><link rel="stylesheet" href="/ui/app.css"><link rel="icon" href="data:,">
<script src="/ui/app.js" defer></script></head>
<body data-page="${notice ? '' : name}" data-actions="${actions ? '1' : '0'}">
<header><p class="brand">agentbus admin</p><nav aria-label="Pages"><ul>${nav}</ul></nav>
<p class="mode">${actions ? 'Actions on: retry, purge, rewind, replay and cancel ask for confirmation' : 'Read-only'}</p></header>
<main><h1>${esc(title)}</h1>
<p id="status" role="status" aria-live="polite"></p>
${notice ? `<p>${esc(notice)}</p>` : BODIES[name](actions)}
</main></body></html>`;
}

export const CSS = `
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--accent:#0969da;--bad:#cf222e;--ok:#1a7f37;font-family:system-ui,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:#f6f8fa}
.brand{font-weight:700;margin:0}nav ul{display:flex;gap:.75rem;list-style:none;margin:0;padding:0}nav a{color:var(--accent)}nav a[aria-current]{font-weight:700;color:var(--fg)}
.mode{margin:0 0 0 auto;color:var(--muted);font-size:.9em}main{padding:1rem;max-width:80rem}h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9em}caption{text-align:left;color:var(--muted);padding:.25rem 0}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f8fa;border:1px solid var(--line);padding:.5rem;overflow:auto;max-height:30rem;white-space:pre-wrap;word-break:break-word}
.check{flex-direction:row!important;align-items:center;gap:.3rem}.search{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}.search label,#key-group label,#tail-form label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
input,select,button{font:inherit;padding:.25rem .4rem}button{cursor:pointer;border:1px solid var(--line);border-radius:4px;background:#f6f8fa}
button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
#tail-form,#key-group{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
.danger{color:var(--bad)}.summary{display:flex;gap:2rem;flex-wrap:wrap}.summary div{min-width:7rem}.summary dt{color:var(--muted);font-size:.85em}.summary dd{margin:0;font-size:1.4rem}
.detail{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}.detail dt{color:var(--muted)}.detail dd{margin:0}
.state-running{color:var(--ok)}.state-failed,.state-crashed{color:var(--bad)}#status:empty{display:none}#status.error{color:var(--bad)}.notice{border-left:3px solid var(--accent);padding:.25rem .5rem;background:#f6f8fa}
.legend{display:flex;flex-wrap:wrap;gap:.5rem 1rem;list-style:none;padding:0;font-size:.85em}.legend span{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}svg{max-width:100%;height:auto}
`;
