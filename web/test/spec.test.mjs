// Which chart a result table gets (web/src/spec.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartSpec } from '../src/spec.js';

const mark = (spec) => (spec ? (typeof spec.mark === 'string' ? spec.mark : spec.mark.type) : null);

test('time series get a line', () => {
  const s = chartSpec({ columns: ['period', 'dau'], rows: [['2026-11-01', 3], ['2026-11-02', 4]] });
  assert.equal(mark(s), 'line');
  assert.equal(s.encoding.x.type, 'temporal');
});

test('a breakdown gets a bar, or a pie when asked for shares', () => {
  const data = { columns: ['platform', 'signups'], rows: [['web', 3], ['ios', 2], ['android', 1]] };
  assert.equal(mark(chartSpec(data, 'signups by platform')), 'bar');
  assert.equal(mark(chartSpec(data, 'what share of signups came from each platform?')), 'arc');
  const negative = { columns: ['platform', 'delta'], rows: [['web', -3], ['ios', 2]] };
  assert.equal(mark(chartSpec(negative, 'share of change')), 'bar', 'no pie of negative parts');
});

test('two measures get a scatter', () => {
  const s = chartSpec({ columns: ['customer', 'seats', 'revenue'], rows: [['a', 1, 10], ['b', 2, 30], ['c', 5, 20]] });
  assert.equal(mark(s), 'point');
  assert.deepEqual([s.encoding.x.field, s.encoding.y.field], ['seats', 'revenue']);
});

test('shapes without a chart get none', () => {
  assert.equal(chartSpec({ columns: ['dau'], rows: [[3]] }), null, 'one number');
  assert.equal(chartSpec({ columns: ['platform', 'signups'], rows: [['web', 3]] }), null, 'one row');
  assert.equal(chartSpec({ columns: ['name', 'email'], rows: [['a', 'x'], ['b', 'y']] }), null, 'no numbers');
});
