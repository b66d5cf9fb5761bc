// Rendering one answer: prose, key numbers, chart, sortable table with CSV
// download, collapsed SQL, citations, and for refusals the reason and what to
// ask instead. Everything from the server is inserted as text, never as HTML.

import { chartSpec, renderChart } from './chart.js';

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function cellText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return String(v);
}

// RFC 4180: quote fields holding a comma, quote or line break; double quotes inside.
// Cells that a spreadsheet would run as a formula get a leading apostrophe.
export function toCsv(columns, rows) {
  const field = (v) => {
    let s = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s) && typeof v === 'string') s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns, ...rows].map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}

function compare(a, b) {
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

export function dataTable(data, caption) {
  const rows = data.rows.slice();
  const table = el('table', { class: 'data' });
  table.append(el('caption', { text: caption }));
  const head = el('tr');
  const sortState = { col: -1, dir: 'none' };
  const body = el('tbody');
  const fill = () => {
    body.replaceChildren(
      ...rows.map((r) => el('tr', {}, ...r.map((v) => el('td', { class: typeof v === 'number' ? 'num' : undefined, text: cellText(v) })))),
    );
  };
  data.columns.forEach((c, i) => {
    const th = el('th', { scope: 'col', 'aria-sort': 'none' });
    const button = el('button', {
      type: 'button',
      class: 'sort',
      text: c,
      onclick: () => {
        const dir = sortState.col === i && sortState.dir === 'ascending' ? 'descending' : 'ascending';
        sortState.col = i;
        sortState.dir = dir;
        rows.sort((a, b) => (dir === 'ascending' ? compare(a[i], b[i]) : -compare(a[i], b[i])));
        head.querySelectorAll('th').forEach((h) => h.setAttribute('aria-sort', 'none'));
        th.setAttribute('aria-sort', dir);
        fill();
      },
    });
    th.append(button);
    head.append(th);
  });
  table.append(el('thead', {}, head), body);
  fill();
  return table;
}

function csvButton(data, name) {
  return el('button', {
    type: 'button',
    class: 'secondary',
    text: 'Download CSV',
    onclick: () => {
      const blob = new Blob([toCsv(data.columns, data.rows)], { type: 'text/csv;charset=utf-8' });
      const a = el('a', { href: URL.createObjectURL(blob), download: `${name}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    },
  });
}

export function renderAnswer(container, answer, question, onAsk) {
  container.replaceChildren();
  const refusal = answer.kind === 'refusal';
  container.classList.toggle('refusal', refusal);
  if (answer.interpretation?.sentence) {
    container.append(el('p', { class: 'interpretation', text: answer.interpretation.sentence }));
  }
  container.append(el('p', { class: 'prose', text: answer.answer }));
  if (refusal) {
    if (answer.reason) container.append(el('p', { class: 'reason', text: `Why: ${answer.reason}` }));
    if (answer.suggestions?.length) {
      container.append(
        el('p', { class: 'label', text: 'You could ask instead:' }),
        el('div', { class: 'chips' }, ...answer.suggestions.map((s) => el('button', { type: 'button', class: 'chip', text: s, onclick: () => onAsk(s) }))),
      );
    }
  }
  if (answer.key_numbers?.length) {
    container.append(
      el('dl', { class: 'key-numbers' }, ...answer.key_numbers.flatMap((k) => [el('dt', { text: k.label }), el('dd', { text: k.formatted })])),
    );
  }
  const data = answer.data;
  if (data?.rows?.length) {
    const spec = chartSpec(data, question);
    if (spec) {
      const figure = el('figure', { class: 'chart' });
      const box = el('div', { class: 'chart-box' });
      figure.append(box, el('figcaption', { text: spec.description }));
      container.append(figure);
      renderChart(box, spec).catch(() => figure.remove());
    }
    container.append(
      el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Result table' }, dataTable(data, `${data.rows.length} row${data.rows.length === 1 ? '' : 's'}`)),
      csvButton(data, answer.metric ?? 'steward-result'),
    );
  }
  if (answer.as_of) {
    const when = new Date(answer.as_of);
    const label = `Data as of ${when.toISOString().slice(0, 16).replace('T', ' ')} UTC${answer.cached ? ', from the cache' : ''}`;
    container.append(el('p', { class: 'as-of' }, el('time', { datetime: answer.as_of, text: label })));
  }
  if (answer.sql) {
    container.append(el('details', { class: 'sql' }, el('summary', { text: 'SQL that ran' }), el('pre', {}, el('code', { text: answer.sql }))));
  }
  if (answer.citations?.length) {
    const list = el('ul', { class: 'citations', 'aria-label': 'Sources' });
    for (const c of answer.citations) {
      const label = c.section ? `${c.title} › ${c.section}` : c.title;
      const safe = c.url && /^https?:\/\//i.test(c.url);
      list.append(el('li', {}, safe ? el('a', { href: c.url, rel: 'noopener noreferrer', target: '_blank', text: label }) : el('span', { text: `${label} (${c.source})` })));
    }
    container.append(el('p', { class: 'label', text: 'Sources' }), list);
  }
  if (answer.notes?.length) container.append(el('p', { class: 'notes', text: answer.notes.join(' ') }));
}
