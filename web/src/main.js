// steward's web chat: sign-in (company SSO or the loopback dev picker), chat
// with streamed answers, the metric browser, history and the admin audit view.
// Views are chosen by the URL hash (#/chat, #/metrics, #/history,
// #/subscriptions, #/boards, #/review, #/admin); feedback and the review
// queue live in review.js, boards in boards.js.

import './style.css';
import { ApiError, api, askStream, json } from './api.js';
import { dataTable, el, renderAnswer } from './render.js';
import { boardForm, pinControl, renderBoards } from './boards.js';
import { feedbackForm, renderReview, renderSubscriptions } from './review.js';

const $ = (id) => document.getElementById(id);
const PROGRESS = {
  planned: 'Understanding the question…',
  running_sql: 'Running SQL…',
  searching_docs: 'Searching the documentation…',
  thinking: 'Thinking…',
  writing: 'Writing the answer…',
};

const state = { me: null, conversation: null, metrics: [] };

function show(id, visible) {
  $(id).hidden = !visible;
}

function errorText(e) {
  return e instanceof ApiError ? e.message : 'steward could not be reached.';
}

// ---- sign-in -------------------------------------------------------------

async function whoAmI() {
  try {
    return await json('/api/me');
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return null;
    throw e;
  }
}

async function showSignIn(message = '') {
  state.me = null;
  show('nav', false);
  show('who', false);
  document.querySelectorAll('.view').forEach((v) => (v.hidden = true));
  show('sign-in', true);
  $('sign-in-error').textContent = message;
  const config = await json('/auth/config');
  show('sso-block', config.sso);
  $('sso-link').href = `/auth/login?return_to=${encodeURIComponent('/' + location.hash)}`;
  const devForm = $('dev-form');
  devForm.hidden = !(config.mode === 'dev' && config.dev_users.length);
  $('dev-user').replaceChildren(...config.dev_users.map((u) => el('option', { value: u, text: u })));
}

$('dev-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    await json('/auth/dev-login', { method: 'POST', body: { user: $('dev-user').value } });
    await start();
  } catch (e) {
    $('sign-in-error').textContent = errorText(e);
  }
});

$('sign-out').addEventListener('click', async () => {
  try {
    const { next } = await json('/auth/logout', { method: 'POST' });
    location.assign(next || '/');
  } catch {
    location.assign('/');
  }
});

// ---- chat ----------------------------------------------------------------

function suggestionButtons(list) {
  return list.map((q) => el('button', { type: 'button', class: 'chip', text: q, onclick: () => ask(q) }));
}

async function ask(question) {
  question = question.trim();
  if (!question) return;
  location.hash = '#/chat';
  const progress = el('p', { class: 'progress', role: 'status', text: 'Sending…' });
  const answerBox = el('div', { class: 'answer', 'aria-busy': 'true' }, progress);
  const turn = el('li', { class: 'turn' }, el('p', { class: 'question', text: question }), answerBox);
  $('turns').append(turn);
  turn.scrollIntoView({ block: 'end' });
  const button = $('ask-button');
  button.disabled = true;
  let streamed = '';
  const prose = el('p', { class: 'prose streaming' });
  try {
    await askStream(question, state.conversation, (name, data) => {
      if (name === 'progress') {
        const p = JSON.parse(data);
        progress.textContent = PROGRESS[p.stage] ?? 'Working…';
      } else if (name === 'delta') {
        if (!prose.isConnected) answerBox.append(prose);
        streamed += data;
        prose.textContent = streamed;
      } else if (name === 'answer') {
        const body = JSON.parse(data);
        state.conversation = body.conversation_id;
        renderAnswer(answerBox, body, question, ask);
        if (body.event_id) answerBox.append(feedbackForm(body.event_id, state.me?.sql));
        if (body.kind !== 'subscription') answerBox.append(pinControl(question, state.me?.user));
      } else if (name === 'error') {
        const body = JSON.parse(data);
        answerBox.replaceChildren(el('p', { class: 'error', role: 'alert', text: body.error?.message ?? 'Something went wrong.' }));
      }
    });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showSignIn('Your session has ended; sign in again.');
    answerBox.replaceChildren(el('p', { class: 'error', role: 'alert', text: errorText(e) }));
  } finally {
    answerBox.setAttribute('aria-busy', 'false');
    button.disabled = false;
  }
}

$('ask').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = $('question').value;
  $('question').value = '';
  ask(q);
});

$('question').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('ask').requestSubmit();
  }
});

$('new-conversation').addEventListener('click', () => {
  state.conversation = null;
  $('turns').replaceChildren();
  $('question').focus();
});

// ---- metrics ---------------------------------------------------------------

function renderMetrics() {
  const filter = $('metric-filter').value.trim().toLowerCase();
  const items = state.metrics
    .filter((m) => !filter || `${m.name} ${m.label} ${m.description}`.toLowerCase().includes(filter))
    .map((m) =>
      el(
        'li',
        { class: 'card' },
        el('h2', { text: m.label }),
        el('p', { class: 'hint', text: m.name }),
        el('p', { text: m.description }),
        el('p', { class: 'dims', text: m.dimensions.length ? `Dimensions: ${m.dimensions.join(', ')}` : 'No dimensions' }),
        el('button', { type: 'button', class: 'secondary', text: `Ask: ${m.label} last week`, onclick: () => ask(`${m.label} last week`) }),
      ),
    );
  $('metric-list').replaceChildren(...items);
}

$('metric-filter').addEventListener('input', renderMetrics);

// ---- history ---------------------------------------------------------------

async function renderHistory() {
  const { questions } = await json('/api/history?limit=200');
  const list = $('history-list');
  if (!questions.length) {
    list.replaceChildren(el('li', { class: 'hint', text: 'No questions yet.' }));
    return;
  }
  list.replaceChildren(
    ...questions.map((q) =>
      el(
        'li',
        {},
        el('button', { type: 'button', class: 'link', text: q.question, onclick: () => { state.conversation = null; ask(q.question); } }),
        el('span', { class: 'hint', text: ` ${new Date(q.asked_at * 1000).toLocaleString()} · ${q.kind}` }),
      ),
    ),
  );
}

$('clear-history').addEventListener('click', async () => {
  await json('/api/history', { method: 'DELETE' });
  await renderHistory();
});

// ---- admin -----------------------------------------------------------------

function auditQuery() {
  const form = new FormData($('audit-filter'));
  const params = new URLSearchParams();
  for (const [k, v] of form) if (String(v).trim()) params.set(k, String(v).trim());
  params.set('limit', '100');
  return params.toString();
}

async function renderAudit() {
  const [{ events }, verify] = await Promise.all([json(`/api/admin/audit?${auditQuery()}`), json('/api/admin/audit/verify')]);
  $('audit-verify').textContent = verify.problems.length
    ? `Audit trail BROKEN: ${verify.problems.join('; ')}`
    : `Audit trail intact: ${verify.events} events, head ${verify.head.slice(0, 16)}…`;
  const data = {
    columns: ['time', 'kind', 'user', 'channel', 'outcome', 'what'],
    rows: events.map((e) => [new Date(e.at_ms).toISOString().replace('T', ' ').slice(0, 19), e.kind, e.principal, e.channel, e.outcome, e.question ?? e.sql ?? e.purpose ?? '']),
  };
  const table = dataTable(data, `${events.length} events (newest first)`);
  table.querySelectorAll('tbody tr').forEach((tr, i) => {
    const open = el('button', { type: 'button', class: 'link', text: 'Details', onclick: () => showEvent(events[i].id) });
    tr.append(el('td', {}, open));
  });
  table.querySelector('thead tr').append(el('th', { scope: 'col', text: '' }));
  $('audit-events').replaceChildren(el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Audit events' }, table));
}

async function showEvent(id) {
  const { event, children } = await json(`/api/admin/audit/${id}`);
  const box = $('audit-detail');
  const pre = el('pre', { class: 'event', text: JSON.stringify({ event, children }, null, 2) });
  box.replaceChildren(el('h2', { text: `Event ${id}` }), pre);
  if (event.kind === 'statement') {
    const reason = el('textarea', { id: 'rerun-reason', rows: '2', maxlength: '500', required: true });
    const result = el('div', { class: 'rerun-result', 'aria-live': 'polite' });
    const form = el(
      'form',
      { class: 'rerun' },
      el('label', { for: 'rerun-reason', text: 'Reason for re-running this statement (recorded in the audit trail)' }),
      reason,
      el('button', { type: 'submit', text: 'Re-run' }),
      result,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      result.replaceChildren(el('p', { role: 'status', text: 'Running…' }));
      try {
        const r = await json(`/api/admin/queries/${id}/rerun`, { method: 'POST', body: { reason: reason.value } });
        result.replaceChildren(
          el('p', { text: `Re-run ${r.rerun_id} recorded.${r.masked.length ? ` Masked for you: ${r.masked.join(', ')}.` : ''}` }),
          el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Re-run result' }, dataTable({ columns: r.columns, rows: r.rows }, `${r.rows.length} rows`)),
        );
        renderAudit();
      } catch (e) {
        const parts = [el('p', { class: 'error', role: 'alert', text: errorText(e) })];
        if (e instanceof ApiError && e.code === 'reauthentication_required') {
          parts.push(el('a', { class: 'button', href: `/auth/login?reauth=1&return_to=${encodeURIComponent('/#/admin')}`, text: 'Sign in again' }));
        }
        result.replaceChildren(...parts);
      }
    });
    box.append(form);
  }
  box.scrollIntoView({ block: 'start' });
}

$('audit-filter').addEventListener('submit', (ev) => {
  ev.preventDefault();
  renderAudit().catch((e) => ($('audit-events').textContent = errorText(e)));
});

// ---- routing -----------------------------------------------------------------

async function route() {
  if (!state.me) return;
  let view = (location.hash.replace(/^#\//, '') || 'chat').split('?')[0];
  const allowed = ['chat', 'metrics', 'history', 'subscriptions', 'boards'];
  if (state.me.admin) allowed.push('admin');
  if (state.me.steward) allowed.push('review');
  if (!allowed.includes(view)) view = 'chat';
  document.querySelectorAll('.view').forEach((v) => (v.hidden = v.id !== `view-${view}`));
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  try {
    if (view === 'metrics') renderMetrics();
    if (view === 'history') await renderHistory();
    if (view === 'admin') await renderAudit();
    if (view === 'review') await renderReview($('review-list'), $('review-status'));
    if (view === 'boards') await renderBoards(state.me, $('board-list'), $('board-detail'), $('boards-status'), renderAnswer, ask);
    if (view === 'subscriptions') await renderSubscriptions($('subscription-list'), $('inbox-list'), $('subscriptions-status'), ask, renderAnswer);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) await showSignIn('Your session has ended; sign in again.');
  }
}

window.addEventListener('hashchange', route);

boardForm($('board-form'), $('board-name'), $('board-shared'), $('boards-status'), () =>
  renderBoards(state.me, $('board-list'), $('board-detail'), $('boards-status'), renderAnswer, ask),
);

async function start() {
  const me = await whoAmI();
  if (!me) return showSignIn();
  state.me = me;
  show('sign-in', false);
  show('nav', true);
  show('who', true);
  show('nav-admin', me.admin);
  show('nav-review', me.steward);
  $('who-name').textContent = me.user;
  $('who-roles').textContent = me.roles.join(', ');
  const { metrics, saved_queries: saved = [] } = await json('/api/metrics');
  state.metrics = metrics;
  // The project's saved queries the chat answers first, then a question per metric.
  const questions = [...saved.filter((q) => q.in_chat).map((q) => q.question), ...metrics.map((m) => `${m.label} last week`)];
  $('suggestions').replaceChildren(...suggestionButtons(questions.slice(0, 6)));
  await route();
}

start().catch((e) => {
  document.body.append(el('p', { class: 'error', role: 'alert', text: errorText(e) }));
});
