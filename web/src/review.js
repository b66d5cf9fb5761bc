// The review loop in the web chat: feedback under each answer (a thumbs up or
// down, a comment, and corrected SQL for roles with `sql`), and the data
// steward's review queue (#/review): edit, approve under a role, or reject.
// Server text is inserted as text, never as HTML.

import { ApiError, json } from './api.js';
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
