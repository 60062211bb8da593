// Shared helpers of the DataTrace UI: element building (text only: nothing the server
// sends is ever parsed as HTML), the API client, number and time formatting, toasts.
'use strict';

export const main = () => document.getElementById('main');

// h('tag', {attrs}, ...children): children are nodes or text; `on*` attributes take
// functions; `style` is set through the CSSOM (inline style attributes are blocked by the
// Content-Security-Policy).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v;
    else if (k === 'value' && (tag === 'input' || tag === 'textarea' || tag === 'select')) el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function toast(text, error) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = error ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 8000 : 3000);
}

// ---------- the API ----------
// A browser session (an HttpOnly cookie the page cannot read, plus the CSRF token it sends
// with every change) or a token typed in (the server token or an API token).
export const auth = {
  token() { return sessionStorage.getItem('datatrace-token'); },
  set(t) { sessionStorage.setItem('datatrace-token', t); },
  csrf() { return sessionStorage.getItem('datatrace-csrf'); },
  session(me) {
    sessionStorage.setItem('datatrace-csrf', me.csrf || '');
    sessionStorage.setItem('datatrace-user', JSON.stringify({ username: me.username, role: me.role }));
  },
  user() { try { return JSON.parse(sessionStorage.getItem('datatrace-user')) || null; } catch (_) { return null; } },
  signedIn() { return !!(this.token() || this.csrf()); },
  clear() { ['datatrace-token', 'datatrace-csrf', 'datatrace-user'].forEach((k) => sessionStorage.removeItem(k)); },
};

export class ApiError extends Error {
  constructor(status, message, field) { super(message); this.status = status; this.field = field; }
}

export async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  const t = auth.token();
  if (t) opts.headers.Authorization = 'Bearer ' + t;
  else if (auth.csrf() && method !== 'GET') opts.headers['X-CSRF-Token'] = auth.csrf();
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) {
    auth.clear();
    if (location.hash !== '#/login') location.hash = '#/login';
    throw new ApiError(401, 'please sign in');
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = { error: text.slice(0, 200) }; }
  }
  if (!r.ok) {
    const msg = (data && data.error) || r.statusText || ('HTTP ' + r.status);
    throw new ApiError(r.status, data && data.field ? data.field + ': ' + msg : msg, data && data.field);
  }
  return data;
}

// ---------- formatting ----------
export function fmt(n) { return n === null || n === undefined ? '' : Number(n).toLocaleString('en-US'); }

export function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}

export function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (isNaN(d)) return String(ts);
  return d.toLocaleString('sv-SE').replace('T', ' ');
}

export function since(ts) {
  if (!ts) return '';
  return duration(Date.now() - new Date(ts).getTime());
}

// ---------- small widgets ----------
export function badge(s, label) {
  return h('span', { class: 'badge ' + s, 'data-status': s }, label || s);
}

export function bar(percent, state, big) {
  const p = Math.max(0, Math.min(100, percent || 0));
  return h('div', { class: 'bar' + (big ? ' big ' : ' ') + (state || '') }, h('div', { style: 'width:' + p + '%' }));
}

// The status of a task as shown: a finished run that rejected records is amber.
export function taskBadge(t) {
  if (t.status === 'done' && t.overall && t.overall.rejected > 0) {
    return badge('done-rejects', 'done with ' + fmt(t.overall.rejected) + ' rejected');
  }
  return badge(t.status);
}

export const ACTIVE = ['running', 'queued', 'stopping'];

// A one-line cell that shows all of a long text on hover.
export function cell(text, cls) {
  return h('td', { class: 'clip ' + (cls || ''), title: text }, text);
}

// A generic rendering of a stream position: `file:pos` for objects with those keys,
// otherwise `key=value` pairs.
export function position(p) {
  if (p === null || p === undefined) return '';
  if (typeof p !== 'object') return String(p);
  if (p.file !== undefined && p.pos !== undefined) return p.file + ':' + p.pos + (p.gtid ? ' (gtid ' + p.gtid + ')' : '');
  return Object.entries(p).map(([k, v]) => k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v)).join(' ');
}

// A Kafka source's partitions: `topic[2] lag 5 (at 120 of 125)`, one per partition.
export function partitionLag(list) {
  return list.map((p) => p.topic + '[' + p.partition + '] lag ' + p.lag + ' (at ' + p.committed + ' of ' + p.end + ')').join('; ');
}

export function confirmed(text) { return window.confirm(text); }
