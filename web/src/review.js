// The trust loop in the web chat: feedback under each answer (a thumbs up or
// down, a comment, and corrected SQL for roles with `sql`), the data
// steward's review queue (#/review: edit, approve under a role, or reject),
// and subscriptions with their inbox (#/subscriptions).
// Server text is inserted as text, never as HTML.

import { ApiError, api, json } from './api.js';
import { el } from './render.js';

function errorText(e) {
  return e instanceof ApiError ? e.message : 'steward could not be reached.';
}

// The feedback form for the answer whose audit event is `eventId`; `canSql`
// adds the corrected-SQL field.
export function feedbackForm(eventId, canSql) {
  const id = (name) => `fb-${eventId}-${name}`;
  const status = el('p', { class: 'hint', role: 'status' });
  const rating = (value, label) =>
    el('label', {}, el('input', { type: 'radio', name: id('rating'), value, required: true }), ` ${label}`);
  const fields = [
    el('fieldset', {}, el('legend', { class: 'visually-hidden', text: 'Was this answer right?' }), rating('up', '👍 Right'), rating('down', '👎 Wrong')),
    el('label', { class: 'field', for: id('comment'), text: 'Comment (optional)' }),
    el('textarea', { id: id('comment'), rows: '2', maxlength: '2000' }),
  ];
  if (canSql) {
    fields.push(
      el('label', { class: 'field', for: id('sql'), text: 'Corrected SQL (optional)' }),
      el('textarea', { id: id('sql'), rows: '3', class: 'sql', spellcheck: 'false' }),
    );
  }
  const send = el('button', { type: 'submit', text: 'Send feedback' });
  const form = el('form', { class: 'feedback' }, ...fields, send, status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const chosen = form.querySelector(`input[name="${id('rating')}"]:checked`);
    if (!chosen) return;
    const body = { event_id: eventId, rating: chosen.value };
    const comment = form.querySelector(`#${id('comment')}`).value.trim();
    if (comment) body.comment = comment;
    const sql = canSql ? form.querySelector(`#${id('sql')}`).value.trim() : '';
    if (sql) body.corrected_sql = sql;
    send.disabled = true;
    try {
      const out = await json('/api/feedback', { method: 'POST', body });
      status.textContent = out.candidate_id
        ? 'Thanks. Your feedback was sent to the data stewards for review.'
        : 'Thanks for the feedback.';
    } catch (e) {
      status.textContent = errorText(e);
      send.disabled = false;
    }
  });
  return el('details', { class: 'feedback-box' }, el('summary', { text: 'Give feedback' }), form);
}

function outcomeText(o) {
  return `${o.right ? 'right' : 'wrong'} (${o.kind})`;
}

function reviewCard(c, roles, refresh) {
  const id = (name) => `rv-${c.id}-${name}`;
  const status = el('div', { role: 'status' });
  const question = el('input', { type: 'text', id: id('question'), value: c.question, maxlength: '2000' });
  const sql = el('textarea', { id: id('sql'), rows: '4', class: 'sql', spellcheck: 'false' });
  sql.value = c.sql;
  const role = el('select', { id: id('role') }, ...roles.map((r) => el('option', { value: r, text: r })));
  if (roles.includes('analyst')) role.value = 'analyst';
  const note = el('input', { type: 'text', id: id('note'), maxlength: '2000' });
  const seen = c.seen ?? {};
  const when = new Date(c.created_at * 1000).toISOString().slice(0, 16).replace('T', ' ');
  const approve = el('button', { type: 'button', text: 'Approve' });
  const reject = el('button', { type: 'button', class: 'secondary', text: 'Reject' });
  const act = async (path, body) => {
    approve.disabled = reject.disabled = true;
    status.replaceChildren(el('p', { class: 'hint', text: path.endsWith('approve') ? 'Checking and re-running the labelled questions…' : 'Rejecting…' }));
    try {
      const out = await json(path, { method: 'POST', body });
      const text = out.verified
        ? `Approved as version ${out.verified.version}: ${out.regression.right_after} of ${out.regression.questions} labelled questions right.`
        : 'Rejected.';
      status.replaceChildren(el('p', { text }));
      setTimeout(refresh, 1500);
    } catch (e) {
      approve.disabled = reject.disabled = false;
      status.replaceChildren(el('p', { class: 'error', text: errorText(e) }));
      if (e instanceof ApiError && e.code === 'regression' && e.body?.regression) {
        const list = el('ul', { class: 'diff', 'aria-label': 'Questions that would turn wrong' });
        for (const d of e.body.regression.turned_wrong) {
          list.append(el('li', { text: `${d.question} (${d.id}): ${outcomeText(d.before)} before, ${outcomeText(d.after)} after` }));
        }
        status.append(list);
      }
    }
  };
  approve.addEventListener('click', () =>
    act(`/api/review/candidates/${c.id}/approve`, { role: role.value, question: question.value, sql: sql.value, note: note.value || undefined }),
  );
  reject.addEventListener('click', () => act(`/api/review/candidates/${c.id}/reject`, { note: note.value || undefined }));
  return el(
    'li',
    { class: 'review' },
    el('h2', { text: c.question }),
    el('p', { class: 'hint', text: `Proposed by ${c.proposed_by}, ${when} UTC. They saw a ${seen.kind ?? 'no'} answer${seen.rows != null ? ` with ${seen.rows} rows` : ''}.` }),
    seen.statements?.length ? el('details', { class: 'sql' }, el('summary', { text: 'SQL they saw' }), el('pre', {}, el('code', { text: seen.statements.join(';\n\n') }))) : null,
    el('label', { class: 'field', for: id('question'), text: 'Question' }),
    question,
    el('label', { class: 'field', for: id('sql'), text: 'SQL' }),
    sql,
    el('label', { class: 'field', for: id('role'), text: 'Check the SQL under role' }),
    role,
    el('label', { class: 'field', for: id('note'), text: 'Note (optional)' }),
    note,
    el('div', { class: 'actions' }, approve, reject),
    status,
  );
}

// Fills the review queue into `list`, with a summary in `status`.
export async function renderReview(list, status) {
  const { candidates, roles } = await json('/api/review/candidates?status=pending');
  const refresh = () => renderReview(list, status).catch((e) => (status.textContent = errorText(e)));
  status.textContent = candidates.length ? `${candidates.length} proposed verified ${candidates.length === 1 ? 'query' : 'queries'} to review.` : 'Nothing to review.';
  list.replaceChildren(...candidates.map((c) => reviewCard(c, roles, refresh)));
}

// ---- subscriptions and the inbox (#/subscriptions) ---------------------------

function when(unix) {
  return new Date(unix * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

// Fills the subscription list and the inbox; `onAsk` asks a question in the chat.
export async function renderSubscriptions(list, inbox, status, onAsk, renderAnswer) {
  const refresh = () => renderSubscriptions(list, inbox, status, onAsk, renderAnswer).catch((e) => (status.textContent = errorText(e)));
  const [{ subscriptions }, { deliveries }] = await Promise.all([json('/api/subscriptions'), json('/api/inbox')]);
  status.textContent = subscriptions.length ? '' : 'No subscriptions yet.';
  list.replaceChildren(
    ...subscriptions.map((s) => {
      const act = async (path, method = 'POST') => {
        try {
          await api(path, { method });
          refresh();
        } catch (e) {
          status.textContent = errorText(e);
        }
      };
      const toggle = s.paused
        ? el('button', { type: 'button', class: 'secondary', text: 'Resume', onclick: () => act(`/api/subscriptions/${s.id}/resume`) })
        : el('button', { type: 'button', class: 'secondary', text: 'Pause', onclick: () => act(`/api/subscriptions/${s.id}/pause`) });
      const remove = el('button', { type: 'button', class: 'secondary', text: 'Delete', onclick: () => act(`/api/subscriptions/${s.id}`, 'DELETE') });
      return el(
        'li',
        { class: 'subscription' },
        el('strong', { text: s.question }),
        el('span', { class: 'hint', text: ` · ${s.cron} (${s.timezone}) · ${s.paused ? 'paused' : `next ${when(s.next_run_at)}`} · ${s.target === 'channel' ? `Slack channel ${s.slack_channel}` : s.target}${s.alert ? ' · alert' : ''} ` }),
        toggle,
        ' ',
        remove,
      );
    }),
  );
  if (!deliveries.length) {
    inbox.replaceChildren(el('li', { class: 'hint', text: 'Nothing delivered yet.' }));
    return;
  }
  inbox.replaceChildren(
    ...deliveries.map((d) => {
      const box = el('div', { class: 'answer' });
      if (d.body?.kind) renderAnswer(box, d.body, d.question, onAsk);
      else if (d.body?.notice) box.append(el('p', { class: 'prose', text: d.body.notice }));
      else if (d.outcome === 'refused') box.append(el('p', { class: 'prose', text: 'Not sent: the Slack user named is not you.' }));
      else box.append(el('p', { class: 'prose', text: 'This answer read personal data, which is not kept; ask again to see it.' }));
      const label = `${when(d.scheduled_for)}${d.late ? ' (late: sent after downtime)' : ''}`;
      return el('li', { class: 'turn' }, el('p', { class: 'question', text: d.question }), el('p', { class: 'hint', text: label }), box);
    }),
  );
}
