// Renders a chart spec (see spec.js) with Vega-Lite through vega-embed, using
// the CSP-safe expression interpreter (no eval).

import embed from 'vega-embed';
import { expressionInterpreter } from 'vega-interpreter';

export { chartSpec } from './spec.js';

export async function renderChart(container, spec) {
  await embed(container, spec, {
    actions: false,
    renderer: 'svg',
    ast: true,
    expr: expressionInterpreter,
  });
  const svg = container.querySelector('svg');
  if (svg) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', spec.description);
  }
}
