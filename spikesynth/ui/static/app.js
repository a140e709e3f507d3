// spikesynth's page: controls generated from the patch schema, programs, save, undo, MIDI
// learn, an on-screen keyboard, and the live views. Talks to spikesynth/ui/server.py.
import { decodeView, drawMembrane, drawRaster, drawSpectrum, drawMeters, formatStatus }
  from './views.js';

const $ = (sel) => document.querySelector(sel);
const token = new URLSearchParams(location.search).get('token') || '';
let ws = null, state = null, signature = '', nextId = 1;
const pending = new Map();  // id -> control key awaiting a result

// ---- the connection ------------------------------------------------------------------
function connect() {
  ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') { showView(decodeView(ev.data)); return; }
    const msg = JSON.parse(ev.data);
    if (msg.type === 'state') showState(msg);
    else if (msg.type === 'result') showResult(msg);
  };
  ws.onclose = () => { message('disconnected; reload the page to reconnect', true);
                       document.body.dataset.connected = 'false'; };
  ws.onopen = () => { document.body.dataset.connected = 'true'; };
}

function send(op, fields = {}) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return null;
  const id = nextId++;
  ws.send(JSON.stringify({ op, id, ...fields }));
  return id;
}

function message(text, error = false) {
  const m = $('#message');
  m.textContent = text;
  m.className = error ? 'error' : '';
}

// ---- controls ------------------------------------------------------------------------
const curves = {
  linear: { to: (t, lo, hi) => lo + t * (hi - lo), from: (v, lo, hi) => (v - lo) / (hi - lo) },
  log: { to: (t, lo, hi) => lo * Math.pow(hi / lo, t),
         from: (v, lo, hi) => Math.log(v / lo) / Math.log(hi / lo) },
  cube: { to: (t, lo, hi) => lo + t * t * t * (hi - lo),
          from: (v, lo, hi) => Math.cbrt((v - lo) / (hi - lo)) },
};

function fmt(x) {
  if (typeof x !== 'number') return String(x);
  return Number.isInteger(x) ? String(x) : String(+x.toPrecision(6));
}

function makeControl(c) {
  const div = document.createElement('div');
  div.className = 'control';
  div.dataset.param = c.key;
  div.dataset.kind = c.kind;
  const name = c.key.includes('.') ? c.key.split('.').slice(1).join('.') : c.key;
  const label = document.createElement('label');
  label.textContent = name;
  let tip = c.doc || '';
  if (c.lo !== null && c.lo !== undefined) tip += ` [${fmt(c.lo)} … ${fmt(c.hi)} ${c.unit}]`;
  label.title = `${c.key}: ${tip} (default ${fmt(c.default)})`;
  div.append(label);
  if (c.kind === 'float' || c.kind === 'int') {
    const range = document.createElement('input');
    range.type = 'range'; range.min = 0; range.max = 1000; range.step = 1;
    range.className = 'slider';
    const num = document.createElement('input');
    num.type = 'number'; num.className = 'value'; num.min = c.lo; num.max = c.hi;
    num.step = c.kind === 'int' ? 1 : 'any';
    const curve = curves[c.curve] || curves.linear;
    const toSlider = (v) => { range.value = Math.round(1000 * Math.min(Math.max(curve.from(v, c.lo, c.hi), 0), 1)); };
    let timer = null;
    range.addEventListener('input', () => {
      let v = curve.to(range.value / 1000, c.lo, c.hi);
      v = c.kind === 'int' ? Math.round(v) : +v.toPrecision(4);
      num.value = fmt(v);
      if (!timer) timer = setTimeout(() => { timer = null; setValue(c.key, +num.value); }, 40);
    });
    num.addEventListener('change', () => {
      const v = num.value.trim() === '' ? NaN : Number(num.value);
      setValue(c.key, Number.isFinite(v) ? v : num.value);
    });
    div.append(range, num);
    div.setValue = (v) => { if (document.activeElement !== num) num.value = fmt(v); toSlider(v); };
  } else if (c.kind === 'choice') {
    const sel = document.createElement('select');
    sel.className = 'value';
    for (const ch of c.choices) { const o = document.createElement('option'); o.value = o.textContent = ch; sel.append(o); }
    sel.addEventListener('change', () => setValue(c.key, sel.value));
    div.append(sel, document.createElement('span'));
    div.setValue = (v) => { sel.value = v; };
  } else {
    const input = document.createElement('input');
    input.className = 'value text';
    input.addEventListener('change', () => setValue(c.key, input.value));
    div.append(input, document.createElement('span'));
    div.setValue = (v) => { if (document.activeElement !== input) input.value = v; };
  }
  const unit = document.createElement('span');
  unit.className = 'unit';
  unit.textContent = c.unit;
  unit.title = c.unit;
  div.append(unit);
  if (c.controllable) {
    const learn = document.createElement('button');
    learn.className = 'learn'; learn.textContent = 'learn';
    learn.title = 'MIDI learn: click, then move a controller';
    learn.addEventListener('click', () => send('learn', { path: state.learning === c.key ? null : c.key }));
    div.append(learn);
  } else {
    div.append(document.createElement('span'));
  }
  const err = document.createElement('div');
  err.className = 'error'; err.hidden = true;
  div.append(err);
  div.setValue(c.value);
  return div;
}

function setValue(key, value) {
  const id = send('set', { path: key, value });
  if (id !== null) pending.set(id, key);
}

function control(key) { return document.querySelector(`.control[data-param="${CSS.escape(key)}"]`); }

function buildControls(s) {
  const root = $('#controls');
  root.textContent = '';
  const groups = new Map();
  for (const c of s.controls) {
    const g = c.key.includes('.') ? c.group : (c.relevant ? 'voice' : 'other');
    if (!groups.has(g)) groups.set(g, { relevant: false, items: [] });
    groups.get(g).items.push(c);
    groups.get(g).relevant ||= c.relevant;
  }
  let others = null;
  for (const [name, g] of groups) {
    const fs = document.createElement('fieldset');
    fs.className = g.relevant ? '' : 'other';
    fs.dataset.group = name;
    const lg = document.createElement('legend');
    lg.textContent = g.relevant ? name : `${name} (other models)`;
    fs.append(lg);
    for (const c of g.items) fs.append(makeControl(c));
    if (g.relevant) { root.append(fs); continue; }
    if (!others) {  // the settings of the other voice models, folded away
      others = document.createElement('details');
      others.className = 'other';
      const summary = document.createElement('summary');
      summary.textContent = 'settings of the other voice models';
      others.append(summary);
    }
    others.append(fs);
  }
  if (others) root.append(others);
}

function showState(s) {
  state = s;
  const sig = s.model + '|' + s.controls.map((c) => c.key).join(',');
  if (sig !== signature) { buildControls(s); signature = sig; }
  else for (const c of s.controls) { const d = control(c.key); if (d) d.setValue(c.value); }
  for (const d of document.querySelectorAll('.control button.learn')) {
    d.classList.toggle('armed', s.learning === d.closest('.control').dataset.param);
  }
  $('#patch-name').textContent = `${s.name} (${s.file}, ${s.mode})`;
  const sel = $('#programs');
  sel.textContent = '';
  s.programs.forEach((p, i) => { const o = document.createElement('option'); o.value = i; o.textContent = `${i}: ${p}`; sel.append(o); });
  sel.value = s.program;
  $('#undo').disabled = !s.can_undo;
  buildMappings(s);
  document.body.dataset.version = s.version;
}

function showResult(r) {
  const key = pending.get(r.id);
  pending.delete(r.id);
  if (r.op === 'set' && key) {
    const d = control(key);
    if (!d) return;
    const err = d.querySelector('.error');
    d.classList.toggle('invalid', !r.ok);
    err.hidden = r.ok;
    err.textContent = r.ok ? '' : r.error;
    if (!r.ok) {  // changes nothing: back to the engine's value
      const c = state.controls.find((x) => x.key === key);
      if (c) { const input = d.querySelector('.value'); if (input) input.blur(); d.setValue(c.value); }
    }
    return;
  }
  if (r.op === 'save') message(r.ok ? `saved ${$('#save-name').value.trim() || state.file}` : r.error, !r.ok);
  else if (!r.ok) message(r.error, true);
}

// ---- MIDI mappings -------------------------------------------------------------------
function buildMappings(s) {
  const body = $('#mapping-rows');
  body.textContent = '';
  s.controllers.forEach((m, i) => {
    const tr = document.createElement('tr');
    tr.dataset.mapping = i;
    const src = 'cc' in m ? `CC ${m.cc}` : m.source;
    tr.innerHTML = `<td>${src}</td><td>${m.param}</td><td><input data-field="min" value="${fmt(m.min)}"></td>`
      + `<td><input data-field="max" value="${fmt(m.max)}"></td><td><select data-field="curve">`
      + `<option>linear</option><option>exp</option></select></td><td><button>remove</button></td>`;
    tr.querySelector('select').value = m.curve;
    const update = () => {
      const list = s.controllers.map((x) => ({ ...x }));
      list[i].min = Number(tr.querySelector('[data-field=min]').value);
      list[i].max = Number(tr.querySelector('[data-field=max]').value);
      list[i].curve = tr.querySelector('[data-field=curve]').value;
      send('controllers', { list });
    };
    tr.querySelectorAll('input, select').forEach((el) => el.addEventListener('change', update));
    tr.querySelector('button').addEventListener('click', () =>
      send('controllers', { list: s.controllers.filter((_, j) => j !== i) }));
    body.append(tr);
  });
}

// ---- keyboard ------------------------------------------------------------------------
const LOW = 48, HIGH = 84, BLACK = new Set([1, 3, 6, 8, 10]);
const NOTE_KEYS = "awsedftgyhujkolp;'";  // as spikesynth play --keys maps them
let base = 60, keyVelocity = 100;
const sounding = new Map();  // source ("p<pointer>" or "k<key>") -> note

function noteOn(source, note, velocity) {
  if (sounding.has(source)) noteOff(source);
  sounding.set(source, note);
  send('note', { note, velocity, on: true });
  const k = document.querySelector(`[data-note="${note}"]`); if (k) k.classList.add('down');
}

function noteOff(source) {
  const note = sounding.get(source);
  if (note === undefined) return;
  sounding.delete(source);
  send('note', { note, velocity: 0, on: false });
  if (![...sounding.values()].includes(note)) {
    const k = document.querySelector(`[data-note="${note}"]`); if (k) k.classList.remove('down');
  }
}

function buildKeyboard() {
  const kb = $('#keyboard');
  const whites = [];
  for (let n = LOW; n <= HIGH; n++) if (!BLACK.has(n % 12)) whites.push(n);
  const w = 100 / whites.length;
  let wi = 0;
  for (let n = LOW; n <= HIGH; n++) {
    const key = document.createElement('div');
    const black = BLACK.has(n % 12);
    key.className = `key ${black ? 'black' : 'white'}`;
    key.dataset.note = n;
    if (black) { key.style.left = `${(wi - 0.3) * w}%`; key.style.width = `${0.6 * w}%`; }
    else { key.style.left = `${wi * w}%`; key.style.width = `${w}%`; wi++; }
    if (n % 12 === 0) { const s = document.createElement('span'); s.textContent = `C${n / 12 - 1}`; key.append(s); }
    key.addEventListener('pointerdown', (ev) => {
      ev.preventDefault();
      const r = key.getBoundingClientRect();
      const depth = Math.min(Math.max((ev.clientY - r.top) / r.height, 0), 1);
      noteOn(`p${ev.pointerId}`, n, Math.max(1, Math.round(20 + 107 * depth)));
    });
    for (const type of ['pointerup', 'pointercancel', 'pointerleave']) {
      key.addEventListener(type, (ev) => noteOff(`p${ev.pointerId}`));
    }
    kb.append(key);
  }
}

function typing(ev) { const t = ev.target; return t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA'; }

window.addEventListener('keydown', (ev) => {
  if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
  const k = ev.key.toLowerCase();
  const i = NOTE_KEYS.indexOf(k);
  if (i >= 0) { noteOn(`k${k}`, Math.min(base + i, 127), keyVelocity); ev.preventDefault(); }
  else if (k === 'z') base = Math.max(base - 12, 0);
  else if (k === 'x') base = Math.min(base + 12, 108);
  else if (k >= '1' && k <= '9') keyVelocity = Math.floor(Number(k) * 127 / 9);
});
window.addEventListener('keyup', (ev) => noteOff(`k${ev.key.toLowerCase()}`));
window.addEventListener('blur', () => { for (const s of [...sounding.keys()]) noteOff(s); });

// ---- views ---------------------------------------------------------------------------
let lastView = null, drawScheduled = false;
function showView(view) {
  lastView = view;
  if (!drawScheduled) { drawScheduled = true; requestAnimationFrame(draw); }
}
function draw() {
  drawScheduled = false;
  const v = lastView; if (!v) return;
  drawMembrane($('#membrane'), v);
  drawRaster($('#raster'), v);
  drawSpectrum($('#spectrum'), v);
  drawMeters($('#meters'), v);
  $('#status').textContent = formatStatus(v.header.status) + (v.header.error ? `\n${v.header.error}` : '');
  document.body.dataset.views = v.header.seq;
  document.body.dataset.viewSource = v.header.source;
}

// ---- buttons -------------------------------------------------------------------------
$('#undo').addEventListener('click', () => send('undo'));
$('#save').addEventListener('click', () => { $('#save-name').value = ''; send('save'); });
$('#save-as').addEventListener('click', () => {
  const name = $('#save-name').value.trim();
  if (name) send('save', { name }); else message('type a file name to save as', true);
});
$('#programs').addEventListener('change', (ev) => send('program', { index: Number(ev.target.value) }));

buildKeyboard();
connect();
