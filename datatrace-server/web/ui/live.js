// A task's live stream (server-sent events) with its connection state: the browser
// reconnects by itself and the server replays what was missed (Last-Event-ID) or sends a
// fresh snapshot; while the connection is down the page says so.
'use strict';
import { auth } from './lib.js';

// Opens `/api/tasks/{id}/events`; `on` maps event names to handlers (parsed JSON);
// `state(s)` is told 'connecting', 'live' or 'reconnecting'. Returns { close }.
export function subscribe(taskId, on, state) {
  let es = null;
  let closed = false;
  let retry = null;
  const open = () => {
    const t = auth.token();
    const url = '/api/tasks/' + taskId + '/events' + (t ? '?access_token=' + encodeURIComponent(t) : '');
    es = new EventSource(url);
    state('connecting');
    es.onopen = () => state('live');
    es.onerror = () => {
      if (closed) return;
      state('reconnecting');
      // The browser retries by itself unless the stream was refused for good.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        clearTimeout(retry);
        retry = setTimeout(() => { if (!closed) open(); }, 3000);
      }
    };
    for (const [name, fn] of Object.entries(on)) {
      es.addEventListener(name, (e) => { state('live'); fn(JSON.parse(e.data)); });
    }
  };
  open();
  return { close() { closed = true; clearTimeout(retry); if (es) es.close(); } };
}
