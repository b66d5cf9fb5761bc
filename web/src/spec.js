// Chooses a chart for a result table, or none (pure: no DOM, no Vega), so it
// is unit-tested in node (web/test/spec.test.mjs).
//   time series (a date-like first column, a numeric column) → line
//   category breakdown (a text column, one numeric column)   → bar
//   share of a whole (a breakdown asked as share/percent/mix) → arc (pie)
//   two numeric columns (with or without a label)             → scatter

const DATE = /^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2})?)?/;

function isNumber(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

function column(data, i) {
  return data.rows.map((r) => r[i]);
}

export function chartSpec(data, question = '') {
  const { columns, rows } = data;
  if (!rows || rows.length < 2 || columns.length < 2) return null;
  const numeric = columns.map((_, i) => column(data, i).every((v) => v === null || isNumber(v)));
  const dates = columns.map((_, i) => column(data, i).every((v) => typeof v === 'string' && DATE.test(v)));
  const text = columns.map((_, i) => !numeric[i] && !dates[i]);
  const values = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]])));
  const firstNum = numeric.findIndex((n, i) => n && !dates[i]);
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', data: { values }, width: 'container', height: 240 };
  if (dates[0] && firstNum > 0) {
    return {
      ...base,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: columns[0], type: 'temporal', title: columns[0] },
        y: { field: columns[firstNum], type: 'quantitative', title: columns[firstNum] },
        ...(text.findIndex(Boolean) > 0 ? { color: { field: columns[text.findIndex(Boolean)], type: 'nominal' } } : {}),
      },
      description: `Line chart of ${columns[firstNum]} over ${columns[0]}`,
    };
  }
  const label = text.findIndex(Boolean);
  const nums = numeric.map((n, i) => (n ? i : -1)).filter((i) => i >= 0);
  if (label >= 0 && nums.length === 1) {
    const [v] = nums;
    const share = /\b(share|percent|percentage|proportion|mix|split|distribution)\b/i.test(question);
    if (share && rows.length <= 8 && rows.every((r) => isNumber(r[v]) && r[v] >= 0)) {
      return {
        ...base,
        mark: { type: 'arc', tooltip: true },
        encoding: {
          theta: { field: columns[v], type: 'quantitative' },
          color: { field: columns[label], type: 'nominal' },
        },
        description: `Pie chart of ${columns[v]} by ${columns[label]}`,
      };
    }
    return {
      ...base,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: columns[label], type: 'nominal', sort: '-x', title: columns[label] },
        x: { field: columns[v], type: 'quantitative', title: columns[v] },
      },
      height: { step: 22 },
      description: `Bar chart of ${columns[v]} by ${columns[label]}`,
    };
  }
  if (nums.length >= 2) {
    const [a, b] = nums;
    return {
      ...base,
      mark: { type: 'point', tooltip: true },
      encoding: {
        x: { field: columns[a], type: 'quantitative' },
        y: { field: columns[b], type: 'quantitative' },
        ...(label >= 0 ? { tooltip: [{ field: columns[label] }, { field: columns[a] }, { field: columns[b] }] } : {}),
      },
      description: `Scatter plot of ${columns[b]} against ${columns[a]}`,
    };
  }
  return null;
}

