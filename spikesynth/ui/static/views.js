// The live views: decode a view message (format: spikesynth/ui/bridge.py) and draw it.

export function decodeView(buffer) {
  const dv = new DataView(buffer);
  const h = dv.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, h)));
  const start = 4 + h + ((4 - ((4 + h) % 4)) % 4);
  const payload = new Float32Array(buffer, start, (buffer.byteLength - start) / 4);
  const arrays = {};
  for (const [name, [offset, length]] of Object.entries(header.arrays)) {
    arrays[name] = payload.subarray(offset, offset + length);
  }
  return { header, arrays };
}

const COLORS = { bg: '#101216', grid: '#262a33', line: '#e4e6ea', acc: '#5fc3ff',
                 fire: 'rgba(255,138,61,0.35)', ref: 'rgba(122,102,255,0.30)', dim: '#8a90a0' };

function clear(ctx, c) { ctx.fillStyle = COLORS.bg; ctx.fillRect(0, 0, c.width, c.height); }

export function drawMembrane(canvas, view) {
  const ctx = canvas.getContext('2d');
  clear(ctx, canvas);
  const v = view.arrays.membrane, st = view.arrays.state;
  if (!v || v.length < 2) { label(ctx, 'play a note', 8, 16); return; }
  const W = canvas.width, H = canvas.height, n = v.length;
  // States shaded behind the trace: runs of FIRING (1) and REFRACTORY (2).
  let run = 0;
  for (let i = 1; i <= n; i++) {
    if (i === n || st[i] !== st[run]) {
      const s = st[run];
      if (s === 1 || s === 2) {
        ctx.fillStyle = s === 1 ? COLORS.fire : COLORS.ref;
        ctx.fillRect(run / n * W, 0, Math.max((i - run) / n * W, 1), H);
      }
      run = i;
    }
  }
  let lo = Infinity, hi = -Infinity;
  for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
  for (const t of view.header.thresholds || []) { lo = Math.min(lo, t); hi = Math.max(hi, t); }
  if (!(hi > lo)) { hi = lo + 1; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const y = (x) => H - (x - lo) / (hi - lo) * H;
  ctx.strokeStyle = COLORS.grid; ctx.setLineDash([4, 4]);
  for (const t of view.header.thresholds || []) {
    ctx.beginPath(); ctx.moveTo(0, y(t)); ctx.lineTo(W, y(t)); ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.strokeStyle = COLORS.line; ctx.lineWidth = 1.5; ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const px = i / (n - 1) * W;
    if (i === 0) ctx.moveTo(px, y(v[i])); else ctx.lineTo(px, y(v[i]));
  }
  ctx.stroke();
  label(ctx, `${(view.header.membrane_seconds * 1000).toFixed(1)} ms · note ${view.header.note}`
        + ` · ${view.header.f0.toFixed(1)} Hz`, 8, 14);
}

export function drawRaster(canvas, view) {
  const ctx = canvas.getContext('2d');
  clear(ctx, canvas);
  const r = view.arrays.raster, rows = Math.max(view.header.neurons || 1, 1);
  if (!r) return;
  const W = canvas.width, H = canvas.height, rowH = H / rows;
  ctx.fillStyle = COLORS.acc;
  for (let k = 0; k + 1 < r.length; k += 2) {
    ctx.fillRect(r[k + 1] * W, r[k] * rowH + rowH * 0.15, 1.5, Math.max(rowH * 0.7, 1));
  }
  label(ctx, `${rows} neuron${rows > 1 ? 's' : ''} · ${(view.header.raster_seconds * 1000)
        .toFixed(0)} ms`, 8, 14);
}

export function drawSpectrum(canvas, view) {
  const ctx = canvas.getContext('2d');
  clear(ctx, canvas);
  const s = view.arrays.spectrum, hz = view.header.spectrum_hz;
  if (!s) return;
  const W = canvas.width, H = canvas.height, fmin = 20, fmax = s.length * hz;
  const x = (f) => Math.log(f / fmin) / Math.log(fmax / fmin) * W;
  const y = (db) => H - (db + 100) / 100 * H;
  ctx.strokeStyle = COLORS.grid;
  for (const f of [100, 1000, 10000]) { ctx.beginPath(); ctx.moveTo(x(f), 0); ctx.lineTo(x(f), H); ctx.stroke(); }
  const f0 = view.header.f0;
  ctx.strokeStyle = 'rgba(255,138,61,0.5)';
  for (let k = 1; k * f0 < fmax && k <= 40; k++) {
    ctx.beginPath(); ctx.moveTo(x(k * f0), 0); ctx.lineTo(x(k * f0), H); ctx.stroke();
  }
  ctx.strokeStyle = COLORS.acc; ctx.beginPath();
  for (let i = 1; i < s.length; i++) {
    const px = x(i * hz);
    if (px < 0) continue;
    if (i === 1) ctx.moveTo(px, y(s[i])); else ctx.lineTo(px, y(s[i]));
  }
  ctx.stroke();
  label(ctx, '100 Hz', x(100) + 3, H - 4); label(ctx, '1 kHz', x(1000) + 3, H - 4);
  label(ctx, '10 kHz', x(10000) + 3, H - 4);
}

export function drawMeters(canvas, view) {
  const ctx = canvas.getContext('2d');
  clear(ctx, canvas);
  const m = view.header.meters; if (!m) return;
  const W = canvas.width, H = canvas.height;
  const h = (db) => Math.max(0, Math.min(1, (db + 60) / 60)) * (H - 14);
  ['L', 'R'].forEach((name, i) => {
    const x0 = 20 + i * 60;
    ctx.fillStyle = '#2c8c5a'; ctx.fillRect(x0, H - 14 - h(m.rms_db[i]), 40, h(m.rms_db[i]));
    ctx.fillStyle = m.peak_db[i] > -0.5 ? '#ff5f6d' : '#e4e6ea';
    ctx.fillRect(x0, H - 14 - h(m.peak_db[i]), 40, 2);
    label(ctx, `${name} ${m.peak_db[i].toFixed(0)}`, x0, H - 2);
  });
}

export function formatStatus(s) {
  if (!s) return '';
  const pct = (x) => (100 * x).toFixed(1) + '%';
  return `${s.mode}   voices ${s.voices_active}/${s.voices}\n`
    + `load ${pct(s.load_mean)} mean  ${pct(s.load_p99)} p99  ${pct(s.load_max)} worst\n`
    + `xruns ${s.xruns}   MIDI ${s.midi_received} in, ${s.midi_rejected} rejected, `
    + `${s.midi_dropped} dropped\nprogram ${s.program}: ${s.patch}`;
}

function label(ctx, text, x, y) {
  ctx.fillStyle = COLORS.dim; ctx.font = '11px system-ui, sans-serif'; ctx.fillText(text, x, y);
}
