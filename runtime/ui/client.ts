// The admin UI's one script, served as /ui/app.js: vanilla JS, no build step, no dependency. It
// reads the JSON API and writes the DOM with textContent only (no HTML from data), so an event's
// content cannot inject markup. Every action asks for confirmation first.
export const CLIENT_JS = String.raw`'use strict';
(function () {
  var body = document.body;
  var actions = body.dataset.actions === '1';
  var statusEl = document.getElementById('status');
  function say(msg, isError) { statusEl.textContent = msg || ''; statusEl.className = isError ? 'error' : ''; }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') e.textContent = attrs[k]; else if (k === 'cls') e.className = attrs[k]; else e.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (c) { e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function cell(v, cls) { return el('td', cls ? { cls: cls, text: String(v) } : { text: v === null || v === undefined ? '' : String(v) }); }
  function api(path, post) {
    var init = post === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json', 'x-agentbus-ui': '1' }, body: JSON.stringify(post) };
    return fetch('/ui/api' + path, init).then(function (r) {
      return r.json().then(function (v) { if (!r.ok) { var e = new Error(v.error || ('HTTP ' + r.status)); e.status = r.status; throw e; } return v; });
    });
  }
  function fill(tbody, rows) { tbody.replaceChildren.apply(tbody, rows); }
  function empty(tbody, cols, text) { fill(tbody, [el('tr', {}, [el('td', { colspan: String(cols), text: text })])]); }
  function fail(err) { say(err.message, true); }
  function when(t) { return t ? new Date(t).toLocaleString() : ''; }
  // A retry or purge of dead letters, confirmed; done(answer) after it. A retried event that fails
  // again is a new dead letter with a new id: the message says so.
  function act(op, ids, done, fresh) {
    var verb = op === 'retry' ? 'Retry' : 'Purge for good';
    var its = ids.length === 1 ? 'its' : 'their';
    var also = fresh ? ', fresh (' + its + ' recorded steps and waits removed: ' + its + ' steps run again)' : '';
    if (!window.confirm(verb + ' ' + ids.length + ' dead letter' + (ids.length === 1 ? '' : 's') + also + '?')) return;
    api('/dead-letters/' + op, fresh ? { ids: ids, fresh: true } : { ids: ids }).then(function (r) {
      var again = op === 'retry' && r.done > 0 ? '. An event that fails again becomes a new dead letter with a new id.' : '';
      say((op === 'retry' ? 'Retried ' : 'Purged ') + r.done + ' of ' + ids.length + (r.missing.length ? '; not found (retried or purged meanwhile?): ' + r.missing.join(', ') : '') + again, r.missing.length > 0);
      done(r);
    }, fail);
  }
  // The dead letters of a group, optionally of one event: where a retried event's new dead letter shows.
  function listLink(group, eventId, text) {
    var p = new URLSearchParams();
    if (group) p.set('group', group);
    if (eventId) p.set('event', eventId);
    return el('a', { href: '/ui/dead-letters' + (String(p) ? '?' + p : ''), text: text });
  }

  var pages = {
    overview: function () {
      api('/overview').then(function (o) {
        var dl = document.getElementById('summary');
        dl.replaceChildren();
        [['Topics', o.topics], ['Events stored', o.events], ['Lag', o.lag], ['Pending', o.pending], ['Dead letters', o.deadLetters]].forEach(function (p) {
          dl.appendChild(el('div', {}, [el('dt', { text: p[0] }), el('dd', { text: String(p[1]) })]));
        });
        var tbody = document.querySelector('#agents tbody');
        if (!o.host) { document.getElementById('agents-note').hidden = false; document.getElementById('agents').hidden = true; return; }
        if (o.host.agents.length === 0) return empty(tbody, 5, 'No agents.');
        fill(tbody, o.host.agents.map(function (a) {
          var last = a.history.slice(-3).reverse().map(function (t) { return t.from + ' \u2192 ' + t.to + ' at ' + when(t.at); }).join('; ');
          return el('tr', {}, [el('th', { scope: 'row', text: a.agent }), cell(a.state, 'state-' + a.state), cell(a.restarts, 'num'), cell(a.lastError), cell(last)]);
        }));
      }, fail);
    },

    topics: function () {
      api('/topics').then(function (stats) {
        var rows = [];
        stats.forEach(function (t) {
          var groups = t.groups.length ? t.groups : [null];
          groups.forEach(function (g) {
            var tr = el('tr', {}, [el('th', { scope: 'row', text: t.type }), cell(t.length, 'num'), cell(g ? g.group : '\u2014'), cell(g ? g.consumers : '', 'num'), cell(g ? g.pending : '', 'num'), cell(g ? g.lag : '', 'num'), cell(g ? g.deadLetters : '', 'num')]);
            if (actions) {
              var td = el('td');
              if (g) {
                var b = el('button', { type: 'button', text: 'Rewind\u2026', 'aria-label': 'Rewind group ' + g.group + ' on ' + t.type });
                b.addEventListener('click', function () { rewind(g.group, t.type); });
                td.appendChild(b);
              }
              tr.appendChild(td);
            }
            rows.push(tr);
          });
        });
        var tbody = document.querySelector('#topics tbody');
        if (rows.length === 0) empty(tbody, actions ? 8 : 7, 'No topics yet.'); else fill(tbody, rows);
        if (actions) replayForm(stats);
      }, fail);
      lagChart();
      setInterval(lagChart, 5000);
    },

    'dead-letters': function () {
      var form = document.getElementById('search');
      var q = new URLSearchParams(location.search);
      Array.prototype.forEach.call(form.elements, function (i) { if (i.name && q.get(i.name)) i.value = i.type === 'datetime-local' ? local(q.get(i.name)) : q.get(i.name); });
      function search() {
        var p = new URLSearchParams();
        Array.prototype.forEach.call(form.elements, function (i) {
          if (!i.name || !i.value) return;
          p.set(i.name, i.type === 'datetime-local' ? new Date(i.value).toISOString() : i.value.trim());
        });
        history.replaceState(null, '', '?' + p);
        var tbody = document.querySelector('#dead-letters tbody');
        api('/dead-letters?' + p).then(function (r) {
          document.getElementById('scan').textContent = r.items.length + ' shown' + (r.complete ? '' : ' (searched the ' + r.scanned + ' oldest only)');
          if (r.items.length === 0) return empty(tbody, actions ? 9 : 8, 'No dead letter matches.');
          fill(tbody, r.items.map(function (d) {
            var link = el('a', { href: '/ui/dead-letter?' + new URLSearchParams({ id: d.id, group: d.group }), text: d.failedAt ? when(d.failedAt) : '(invalid time)' });
            var tr = el('tr', {}, [el('td', {}, [link]), cell(d.type), cell(d.group), cell(d.event && d.event.subject), cell(d.event ? d.event.id : '(malformed)'), cell(d.reason), cell(d.attempts, 'num'), cell(d.error.slice(0, 120))]);
            if (actions) tr.insertBefore(el('td', {}, [el('input', { type: 'checkbox', name: 'pick', value: d.id, 'aria-label': 'Select dead letter ' + d.id })]), tr.firstChild);
            return tr;
          }));
        }, fail);
      }
      form.addEventListener('submit', function (e) { e.preventDefault(); say(''); search(); });
      form.addEventListener('reset', function () { setTimeout(search, 0); });
      function picked() { return Array.prototype.map.call(document.querySelectorAll('input[name=pick]:checked'), function (i) { return i.value; }); }
      [['retry', 'retry-selected'], ['purge', 'purge-selected'], ['retry', 'retry-fresh-selected', true]].forEach(function (a) {
        var b = document.getElementById(a[1]);
        if (b) b.addEventListener('click', function () {
          var ids = picked();
          if (ids.length === 0) return say('Select dead letters first.', true);
          act(a[0], ids, search, a[2]);
        });
      });
      search();
    },

    'dead-letter': function () {
      var q = new URLSearchParams(location.search);
      var id = q.get('id') || '';
      var gone = document.getElementById('gone');
      var buttons = ['retry-one', 'retry-fresh-one', 'purge-one'].map(function (b) { return document.getElementById(b); }).filter(Boolean);
      // Why the id names no dead letter now, and where its event's new dead letter would show.
      function explain(what, group, eventId) {
        buttons.forEach(function (b) { b.disabled = true; });
        var text = what === 'retried'
          ? 'Retried: dead letter ' + id + ' left the dead letters, and its event' + (eventId ? ' ' + eventId : '') + ' went back to ' + (group ? 'group ' + group : 'its group') + '. If it fails again it becomes a new dead letter with a new id: '
          : what === 'purged'
            ? 'Purged: dead letter ' + id + ' is gone for good. '
            : 'No dead letter ' + id + ' now: it was retried or purged, or never there. A retried event that failed again is a new dead letter with a new id: ';
        var link = what === 'retried' && eventId
          ? listLink(group, eventId, 'dead letters of ' + (group ? group + ' ' : '') + 'with this event')
          : listLink(group, null, group ? 'the dead letters of ' + group : 'all dead letters');
        gone.replaceChildren(document.createTextNode(text), link);
        gone.hidden = false;
      }
      function after(what, d) {
        return function (r) {
          if (r.done === 0) return explain('missing', d.group);
          // Kept in the address: a reload (the id now names nothing) still says what happened.
          if (what === 'retried') history.replaceState(null, '', '?' + new URLSearchParams({ id: id, retried: '1', group: d.group, event: d.event ? d.event.id : '' }));
          explain(what, d.group, d.event && d.event.id);
        };
      }
      api('/dead-letter?id=' + encodeURIComponent(id)).then(function (d) {
        var dl = document.getElementById('detail');
        [['Id', d.id], ['Group', d.group], ['Type', d.type], ['Position', d.position], ['Reason', d.reason], ['Attempts', d.attempts], ['Failed at', d.failedAt], ['Event id', d.event ? d.event.id : '(malformed)'], ['Subject', d.event && d.event.subject]].forEach(function (p) {
          dl.appendChild(el('dt', { text: p[0] })); dl.appendChild(el('dd', { text: p[1] === null || p[1] === undefined ? '' : String(p[1]) }));
        });
        document.getElementById('stack').textContent = d.stack || d.error || '(no error: dead-lettered by the handler with a reason)';
        document.getElementById('event').textContent = d.event ? JSON.stringify(d.event, null, 2) : (d.raw || '');
        ['retry', 'purge'].forEach(function (op) {
          var b = document.getElementById(op + '-one');
          if (b) b.addEventListener('click', function () { act(op, [d.id], after(op === 'retry' ? 'retried' : 'purged', d)); });
        });
        var fresh = document.getElementById('retry-fresh-one');
        if (fresh) fresh.addEventListener('click', function () { act('retry', [d.id], after('retried', d), true); });
      }, function (err) {
        if (err.status !== 404) return fail(err);
        // Not an error to show in red: the usual reason is a retry or a purge (this page's, after a reload).
        explain(q.get('retried') === '1' ? 'retried' : 'missing', q.get('group'), q.get('event'));
      });
    },

    keys: function () {
      var select = document.getElementById('f-group');
      var tbody = document.querySelector('#keys tbody');
      var more = document.getElementById('keys-more');
      var last = '';
      api('/keys').then(function (r) {
        if (r.groups.length === 0) { empty(tbody, 4, 'No keyed agent has state in this store.'); return; }
        r.groups.forEach(function (g) { select.appendChild(el('option', { value: g, text: g })); });
        var want = new URLSearchParams(location.search).get('group');
        if (want && r.groups.indexOf(want) >= 0) select.value = want;
        show(false);
      }, fail);
      function showKey(group, key) {
        api('/key?group=' + encodeURIComponent(group) + '&key=' + encodeURIComponent(key)).then(function (s) { document.getElementById('state').textContent = JSON.stringify(s, null, 2); }, fail);
      }
      // Resolves the group's waits and requests (null when they could not be read), for the keys table's empty text.
      function waits(group) {
        var body = document.querySelector('#waits tbody');
        return api('/waits?group=' + encodeURIComponent(group)).then(function (r) {
          var now = Date.now();
          var rows = r.waits.map(function (w) {
            var status = w.matched ? 'matched' : Date.parse(w.deadline) <= now ? 'past deadline' : 'waiting';
            var b = el('button', { type: 'button', text: w.key, 'aria-label': 'Show state of key ' + w.key });
            b.addEventListener('click', function () { showKey(group, w.key); });
            return el('tr', {}, [el('th', { scope: 'row' }, [b]), cell(w.type), cell(when(w.deadline)), cell(status), cell(w.id)]);
          });
          if (rows.length === 0) empty(body, 5, 'No handler of this group waits.');
          else fill(body, rows);
          return r.waits;
        }, function (err) { fail(err); return null; });
      }
      // No key has state yet: say how many keys only have records (their first handler waits), shown below.
      function noKeys(tbody, recorded) {
        recorded.then(function (ws) {
          var seen = {};
          (ws || []).forEach(function (w) { seen[w.key] = true; });
          var n = Object.keys(seen).length;
          empty(tbody, 4, n === 0 ? 'No keys.' : n + (n === 1 ? ' key waits' : ' keys wait') + ' with no state yet: see below.');
        });
      }
      function show(append) {
        var group = select.value;
        var recorded = append ? null : waits(group);
        api('/keys?group=' + encodeURIComponent(group) + (append ? '&after=' + encodeURIComponent(last) : '')).then(function (r) {
          var rows = r.keys.map(function (k) {
            var b = el('button', { type: 'button', text: k.key, 'aria-label': 'Show state of key ' + k.key });
            b.addEventListener('click', function () { showKey(group, k.key); });
            return el('tr', {}, [el('th', { scope: 'row' }, [b]), cell(k.version, 'num'), cell(k.bytes, 'num'), cell(when(k.updatedAt))]);
          });
          if (r.keys.length) last = r.keys[r.keys.length - 1].key;
          more.hidden = r.keys.length < 100;
          if (append) rows.forEach(function (tr) { tbody.appendChild(tr); });
          else if (rows.length === 0) noKeys(tbody, recorded);
          else fill(tbody, rows);
        }, fail);
      }
      document.getElementById('key-group').addEventListener('submit', function (e) { e.preventDefault(); show(false); });
      more.addEventListener('click', function () { show(true); });
    },

    tail: function () {
      var form = document.getElementById('tail-form');
      var input = document.getElementById('f-type');
      var stop = document.getElementById('tail-stop');
      var start = document.getElementById('tail-start');
      var tbody = document.querySelector('#tail tbody');
      var timer = null, since = 0, seen = {};
      var q = new URLSearchParams(location.search).get('type');
      if (q) input.value = q;
      function poll(type) {
        api('/tail?type=' + encodeURIComponent(type) + '&since=' + since).then(function (r) {
          r.events.forEach(function (e) {
            if (seen[e.id]) return;
            seen[e.id] = true;
            tbody.insertBefore(el('tr', {}, [cell(when(e.time)), cell(e.type), cell(e.subject), cell(e.id), el('td', {}, [el('code', { text: JSON.stringify(e.data).slice(0, 200) })])]), tbody.firstChild);
            if (e.time) since = Math.max(since, Date.parse(e.time));
          });
          while (tbody.rows.length > 200) tbody.deleteRow(tbody.rows.length - 1);
          if (!tbody.rows.length) empty(tbody, 5, 'Waiting for events of ' + type + '\u2026');
          else if (tbody.rows[tbody.rows.length - 1].cells.length === 1) tbody.deleteRow(tbody.rows.length - 1);
        }, function (err) { fail(err); halt(); });
      }
      function halt() { clearInterval(timer); timer = null; stop.disabled = true; start.disabled = false; }
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var type = input.value.trim();
        if (!type) return say('Name a type to tail.', true);
        halt(); say('');
        since = Date.now() - 60000; seen = {}; tbody.replaceChildren();
        history.replaceState(null, '', '?type=' + encodeURIComponent(type));
        poll(type);
        timer = setInterval(function () { poll(type); }, 2000);
        stop.disabled = false; start.disabled = true;
      });
      stop.addEventListener('click', halt);
      if (q) form.requestSubmit();
    },

    schedules: function () {
      var form = document.getElementById('schedule-filter');
      var tbody = document.querySelector('#schedules tbody');
      var prev = document.getElementById('schedules-prev');
      var next = document.getElementById('schedules-next');
      var q = new URLSearchParams(location.search);
      var typeInput = document.getElementById('f-type'), orderSelect = document.getElementById('f-order');
      var PAGE = 100, offset = Number(q.get('offset')) || 0;
      if (q.get('type')) typeInput.value = q.get('type');
      if (q.get('order') === 'latest') orderSelect.value = 'latest';
      function load() {
        var p = new URLSearchParams();
        var type = typeInput.value.trim();
        if (type) p.set('type', type);
        if (orderSelect.value === 'latest') p.set('order', 'latest');
        if (offset) p.set('offset', String(offset));
        history.replaceState(null, '', '?' + p);
        p.set('limit', String(PAGE));
        api('/schedules?' + p).then(function (r) {
          document.getElementById('schedules-count').textContent = r.total === 0 ? '' : (r.offset + 1) + '\u2013' + (r.offset + r.items.length) + ' of ' + r.total + (r.complete ? '' : ' (only the ' + r.total + ' earliest due were read)');
          prev.hidden = r.offset === 0;
          next.hidden = r.offset + r.items.length >= r.total;
          if (r.items.length === 0) return empty(tbody, actions ? 8 : 6, r.offset > 0 ? 'No more pending delayed events.' : 'Nothing pending' + (type ? ' of type ' + type : '') + '.');
          fill(tbody, r.items.map(function (s) {
            var what = s.type + ' due ' + when(s.dueAt);
            var tr = el('tr', {}, [cell(when(s.dueAt)), cell(s.type), cell(s.name), cell(s.event && s.event.subject), cell(s.event ? s.event.id : '(malformed)'), cell(s.id)]);
            if (actions) {
              tr.insertBefore(el('td', {}, [el('input', { type: 'checkbox', name: 'pick', value: s.id, 'aria-label': 'Select ' + what })]), tr.firstChild);
              var b = el('button', { type: 'button', cls: 'danger', text: 'Cancel', 'aria-label': 'Cancel ' + what });
              b.addEventListener('click', function () { cancel([s.id]); });
              tr.appendChild(el('td', {}, [b]));
            }
            return tr;
          }));
        }, fail);
      }
      function cancel(ids) {
        if (!window.confirm('Cancel ' + ids.length + ' pending delayed event' + (ids.length === 1 ? '' : 's') + '? ' + (ids.length === 1 ? 'It' : 'They') + ' will never fire.')) return;
        api('/schedules/cancel', { ids: ids }).then(function (r) {
          say('Cancelled ' + r.removed + ' of ' + r.of + (r.removed < r.of ? '; the others had already fired or been removed' : ''), r.removed < r.of);
          load();
        }, fail);
      }
      form.addEventListener('submit', function (e) { e.preventDefault(); say(''); offset = 0; load(); });
      prev.addEventListener('click', function () { offset = Math.max(0, offset - PAGE); load(); });
      next.addEventListener('click', function () { offset += PAGE; load(); });
      var bulk = document.getElementById('cancel-selected');
      if (bulk) bulk.addEventListener('click', function () {
        var ids = Array.prototype.map.call(document.querySelectorAll('#schedules input[name=pick]:checked'), function (i) { return i.value; });
        if (ids.length === 0) return say('Select pending delayed events first.', true);
        cancel(ids);
      });
      load();
    },
  };

  function local(iso) { var d = new Date(iso); if (isNaN(d)) return ''; return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }

  // Replay to an agent (topic page, actions on): the host's agents from the overview; confirmed, then POST /replay.
  function replayForm(stats) {
    var form = document.getElementById('replay-form');
    if (!form || form.dataset.ready) return;
    form.dataset.ready = '1';
    var types = document.getElementById('f-replay-type');
    var agents = document.getElementById('f-replay-agent');
    stats.forEach(function (t) { types.appendChild(el('option', { value: t.type, text: t.type })); });
    api('/overview').then(function (o) {
      if (!o.host) { form.hidden = true; document.getElementById('replay-note').hidden = false; return; }
      o.host.agents.forEach(function (a) { agents.appendChild(el('option', { value: a.agent, text: a.agent })); });
    }, fail);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var req = { type: types.value, agent: agents.value, from: document.getElementById('f-replay-from').value.trim(), to: document.getElementById('f-replay-to').value.trim(), publish: document.getElementById('f-replay-publish').checked };
      if (!req.type || !req.agent) return say('Choose a topic and an agent.', true);
      var span = (req.from ? ' from ' + req.from : ' from the oldest') + (req.to ? ' to ' + req.to : ' to the newest');
      if (!window.confirm('Replay ' + req.type + span + ' to a fresh instance of ' + req.agent + '? No group moves; what it publishes is ' + (req.publish ? 'STORED.' : 'listed, not stored.'))) return;
      say('Replaying ' + req.type + ' to ' + req.agent + '…');
      api('/replay', req).then(function (r) {
        var p = r.published;
        say('Replayed ' + (r.handled + r.failed) + ' to ' + r.agent + ': ' + r.handled + ' handled, ' + r.failed + ' failed; ' + (p.stored ? 'published ' + p.count + ' (stored)' : p.count + ' publish' + (p.count === 1 ? '' : 'es') + ' listed, not stored'), r.failed > 0);
        var out = document.getElementById('replay-result');
        out.textContent = JSON.stringify({ failures: r.failures, published: p.events }, null, 2);
        out.hidden = r.failures.length === 0 && p.events.length === 0;
      }, fail);
    });
  }

  function rewind(group, type) {
    var from = window.prompt('Rewind group ' + group + ' on ' + type + ': deliver its events again from (earliest, an ISO-8601 time, epoch ms or a position)', 'earliest');
    if (from === null) return;
    if (!window.confirm('Rewind ' + group + ' on ' + type + ' from ' + from + '? Its running consumers handle those events again.')) return;
    api('/rewind', { group: group, type: type, from: from }).then(function () { say('Rewound ' + group + ' on ' + type + ' from ' + from + '.'); }, fail);
  }

  var COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#1b7c83', '#d1242f', '#57606a'];
  function lagChart() {
    api('/lag').then(function (samples) {
      var box = document.getElementById('lag-chart');
      var legend = document.getElementById('lag-legend');
      var names = {};
      samples.forEach(function (s) { Object.keys(s.series).forEach(function (k) { names[k] = true; }); });
      var keys = Object.keys(names).sort().slice(0, COLORS.length);
      var W = 720, H = 200, P = 36;
      var ns = 'http://www.w3.org/2000/svg';
      function svgEl(tag, attrs) { var e = document.createElementNS(ns, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); return e; }
      var max = 1;
      samples.forEach(function (s) { keys.forEach(function (k) { max = Math.max(max, s.series[k] || 0); }); });
      // From the oldest sample kept (at most 15 minutes back) to the newest, so a fresh server's chart is not a sliver.
      var t1 = samples.length ? samples[samples.length - 1].at : Date.now(), t0 = samples.length > 1 ? samples[0].at : t1 - 60000;
      var span = (t1 - t0) / 1000, ago = span >= 120 ? '-' + Math.round(span / 60) + ' min' : '-' + Math.round(span) + ' s';
      var svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': 'lag-title' });
      var title = svgEl('title', { id: 'lag-title' });
      title.textContent = keys.length ? 'Lag per group and topic over the last ' + ago.slice(1) + '; highest ' + max : 'No group yet: nothing to chart';
      svg.appendChild(title);
      svg.appendChild(svgEl('line', { x1: P, y1: H - P, x2: W - 8, y2: H - P, stroke: '#d0d7de' }));
      svg.appendChild(svgEl('line', { x1: P, y1: 8, x2: P, y2: H - P, stroke: '#d0d7de' }));
      [[max, 12], [0, H - P]].forEach(function (l) { var t = svgEl('text', { x: P - 4, y: l[1] + 4, 'text-anchor': 'end', 'font-size': '11', fill: '#57606a' }); t.textContent = String(l[0]); svg.appendChild(t); });
      [[ago, P], ['now', W - 8]].forEach(function (l) { var t = svgEl('text', { x: l[1], y: H - P + 16, 'text-anchor': l[0] === 'now' ? 'end' : 'start', 'font-size': '11', fill: '#57606a' }); t.textContent = l[0]; svg.appendChild(t); });
      keys.forEach(function (k, i) {
        var pts = samples.filter(function (s) { return k in s.series; }).map(function (s) {
          var x = P + ((s.at - t0) / (t1 - t0)) * (W - 8 - P), y = H - P - 2 - (s.series[k] / max) * (H - P - 14);
          return x.toFixed(1) + ',' + y.toFixed(1);
        });
        svg.appendChild(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: COLORS[i], 'stroke-width': '2' }));
      });
      box.replaceChildren(svg);
      legend.replaceChildren.apply(legend, keys.map(function (k, i) {
        var last = samples.length ? samples[samples.length - 1].series[k] : undefined;
        var sw = el('span', { 'aria-hidden': 'true' }); sw.style.background = COLORS[i];
        return el('li', {}, [sw, k + ': ' + (last === undefined ? '\u2014' : last)]);
      }));
    }, fail);
  }

  var run = pages[body.dataset.page];
  if (run) run();
})();
`;
