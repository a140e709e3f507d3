/*
 * Hand-written C99 reference of the spiking voice's per-sample chain.
 *
 * The same computation as spikesynth.dsp.voice.voice_run (driven the way
 * spikesynth.engine._render_voices drives it), for benchmarks/bench_c_reference.py:
 * membrane exponential, exact threshold crossing at a sub-sample position, FIRING drive as a
 * polynomial in E with the spring's particular solution p_k/d_k, REFRACTORY, the spring's
 * 2x2 transition matrix (plain samples) or closed form (partial samples), the envelope step,
 * the xorshift64* input noise, the band-limited events (spikesynth.dsp.blep: each spike's
 * drive jumps placed as windowed-sinc residuals into the voice's accumulator ring, read back
 * HALF_WIDTH samples later) and the write-back / finiteness check. Not included: the probe
 * input (drive_in) and trace arrays, which the engine's audio path compiles out.
 *
 * Layout: a voice is a row of N_FIELDS doubles; the column indices F_* and the constants come
 * from "voice_layout.h", which the benchmark generates from spikesynth.dsp.voice, so the two
 * kernels read the very same rows.
 *
 * Arithmetic is written in the same order as the Python source so that, compiled without
 * floating-point contraction (-ffp-contract=off, as numba compiles without fastmath), both
 * kernels produce the same bits.
 */

#include <math.h>
#include <stdint.h>

#include "voice_layout.h"

/* spikesynth.dsp.blep.RESIDUALS, C order, shape (ORDERS, 2 * HALF_WIDTH, PHASES + 1): set by
 * the benchmark through set_residuals before any rendering. */
static const double *residuals;

void set_residuals(const double *table) { residuals = table; }

static inline double residual(int order, int j, double s)
{
    double f = s * PHASES;
    long p = (long)f;
    if (p >= PHASES)
        p = PHASES - 1;
    const double *r = residuals + ((long)order * 2 * HALF_WIDTH + j) * (PHASES + 1);
    double a = r[p];
    return a + (f - (double)p) * (r[p + 1] - a);
}

/* blep.ring_add_events: the corrections of an event s samples (0..2) before sample pos. */
static void ring_add_events(double *ring, long pos, double s, double d0, double d1, double d2,
                            double d3)
{
    int first = 0;
    if (s > 1.0) {
        pos -= 1;
        s -= 1.0;
        first = 1;
    }
    for (int j = first; j < 2 * HALF_WIDTH; j++) {
        double r = d0 * residual(0, j, s);
        if (d1 != 0.0)
            r += d1 * residual(1, j, s);
        if (d2 != 0.0)
            r += d2 * residual(2, j, s);
        if (d3 != 0.0)
            r += d3 * residual(3, j, s);
        ring[(pos + j - HALF_WIDTH) & RING_MASK] += r;
    }
}

/* blep.ring_take: add the naive value of sample pos, return the finished sample pos - W. */
static inline double ring_take(double *ring, long pos, double value)
{
    ring[pos & RING_MASK] += value;
    long k = (pos - HALF_WIDTH) & RING_MASK;
    double out = ring[k];
    ring[k] = 0.0;
    return out;
}

static inline double xorshift_uniform(uint64_t *rng, long i)
{
    uint64_t s = rng[i];
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    rng[i] = s;
    return (double)((s * UINT64_C(2685821657736338717)) >> 11) * (1.0 / 9007199254740992.0);
}

/* Homogeneous spring state after h samples (0 < h). */
static inline void advance_spring(double *x, double *xd, double h, double omega, double sigma,
                                  double wd)
{
    double e = exp(-sigma * h);
    double c = cos(wd * h);
    double s = sin(wd * h) / wd;
    double nx = e * ((c + sigma * s) * *x + s * *xd);
    double nxd = e * (-omega * omega * s * *x + (c - sigma * s) * *xd);
    *x = nx;
    *xd = nxd;
}

/* Render samples start..stop-1 of voice i, adding into out_l/out_r. 0: state blew up. */
int voice_run(double *restrict V, long i, uint64_t *restrict rng, double *restrict out_l,
              double *restrict out_r, long start, long stop)
{
    double *restrict row = V + i * N_FIELDS;
    int state = (int)row[F_STATE];
    double v = row[F_V];
    double t_left = row[F_TLEFT];
    double E = row[F_E];
    double x = row[F_X];
    double xd = row[F_XD];
    int env_stage = (int)row[F_ENV_STAGE];
    double env = row[F_ENV];
    const double drive = row[F_DRIVE];
    const double leak = row[F_LEAK];
    const double tau = row[F_TAU];
    const double v_high = row[F_VHI];
    const double v_low = row[F_VLO];
    const double v_reset = row[F_VRESET];
    const double v_start = row[F_VSTART];
    const double t_fire = row[F_TFIRE];
    const double tau_f = row[F_TAUF];
    const double e_decay = row[F_EDECAY];
    const double e_end = row[F_EEND];
    const double q0 = row[F_Q0], q1 = row[F_Q1], q2 = row[F_Q2], q3 = row[F_Q3];
    const double p0 = row[F_P0], p1 = row[F_P1], p2 = row[F_P2], p3 = row[F_P3];
    const double d0 = row[F_D0], d1 = row[F_D1], d2 = row[F_D2], d3 = row[F_D3];
    const double t_ref = row[F_TREF];
    const double omega = row[F_OMEGA];
    const double sigma = row[F_SIGMA];
    const double wd = row[F_WD];
    const double f11 = row[F_PHI11], f12 = row[F_PHI12];
    const double f21 = row[F_PHI21], f22 = row[F_PHI22];
    const double dc = row[F_DC];
    const double noise = row[F_NOISE];
    const double amp = row[F_AMP];
    const double gain_l = row[F_GAIN_L] * amp;
    const double gain_r = row[F_GAIN_R] * amp;
    const double att_step = row[F_ATT_STEP];
    const double dec_coef = row[F_DEC_COEF];
    const double sustain = row[F_SUSTAIN];
    const double rel_coef = row[F_REL_COEF];
    const double fade_step = row[F_FADE_STEP];
    const double v_span = v_high - v_reset;
    const double w2 = omega * omega;
    double *ring = row + F_BL_RING;
    long pos = (long)row[F_BL_POS];

    for (long n = start; n < stop; n++) {
        double current = drive;
        if (noise != 0.0) {
            double u = xorshift_uniform(rng, i);
            u += xorshift_uniform(rng, i);
            u -= 1.0;
            current = current * (1.0 + noise * u);
        }
        double rem = 1.0; /* what is left of this sample */
        for (int t = 0; t < MAX_TRANSITIONS; t++) {
            if (state == RESTING) {
                double v_new;
                if (rem == 1.0)
                    v_new = current + (v - current) * leak;
                else
                    v_new = current + (v - current) * exp(-rem / tau);
                if (v_new >= v_high && v < v_high) {
                    /* exact crossing time within the remaining interval */
                    double h = tau * log((current - v) / (current - v_high));
                    if (h > rem)
                        h = rem;
                    if (h > 0.0)
                        advance_spring(&x, &xd, h, omega, sigma, wd);
                    rem -= h;
                    state = FIRING;
                    v = v_high;
                    E = 1.0;
                    t_left = t_fire;
                    x -= p0 + p1 + p2 + p3; /* to the homogeneous part */
                    xd -= d0 + d1 + d2 + d3;
                    /* the drive jumps from 0 to d(1), its slope from 0 to d'(1) */
                    double j2 = w2 * (q0 + q1 + q2 + q3);
                    double j3 = w2 * (-(q1 + 2.0 * q2 + 3.0 * q3) / tau_f) - 2.0 * sigma * j2;
                    ring_add_events(ring, pos, rem, 0.0, 0.0, j2, j3);
                    if (rem <= 0.0)
                        break;
                    continue;
                }
                v = v_new;
                if (rem == 1.0) {
                    double nx = f11 * x + f12 * xd;
                    xd = f21 * x + f22 * xd;
                    x = nx;
                } else {
                    advance_spring(&x, &xd, rem, omega, sigma, wd);
                }
                break;
            } else if (state == FIRING) {
                if (t_left > rem) {
                    if (rem == 1.0) {
                        double nx = f11 * x + f12 * xd;
                        xd = f21 * x + f22 * xd;
                        x = nx;
                        E *= e_decay;
                    } else {
                        advance_spring(&x, &xd, rem, omega, sigma, wd);
                        E *= exp(-rem / tau_f);
                    }
                    t_left -= rem;
                    v = v_reset + v_span * E;
                    break;
                }
                double h = t_left;
                if (h > 0.0)
                    advance_spring(&x, &xd, h, omega, sigma, wd);
                E = e_end;
                x += ((p3 * E + p2) * E + p1) * E + p0; /* back to the actual spring state */
                xd += ((d3 * E + d2) * E + d1) * E + d0;
                rem -= h;
                /* the drive falls from d(e_end) to 0, its slope from d'(e_end) to 0 */
                double j2 = -w2 * (((q3 * E + q2) * E + q1) * E + q0);
                double j3 = w2 * (((3.0 * q3 * E + 2.0 * q2) * E + q1) * E / tau_f)
                            - 2.0 * sigma * j2;
                ring_add_events(ring, pos, rem, 0.0, 0.0, j2, j3);
                state = REFRACTORY;
                v = v_low;
                t_left = t_ref;
                if (rem <= 0.0)
                    break;
            } else { /* REFRACTORY */
                if (t_left > rem) {
                    if (rem == 1.0) {
                        double nx = f11 * x + f12 * xd;
                        xd = f21 * x + f22 * xd;
                        x = nx;
                        v *= leak;
                    } else {
                        advance_spring(&x, &xd, rem, omega, sigma, wd);
                        v *= exp(-rem / tau);
                    }
                    t_left -= rem;
                    break;
                }
                double h = t_left;
                if (h > 0.0)
                    advance_spring(&x, &xd, h, omega, sigma, wd);
                rem -= h;
                state = RESTING;
                v = v_start;
                t_left = 0.0;
                if (rem <= 0.0)
                    break;
            }
        }

        double spring = x;
        if (state == FIRING)
            spring = x + ((p3 * E + p2) * E + p1) * E + p0; /* left to right, as in Python */

        /* envelope step */
        if (env_stage == ENV_DECAY) {
            env = sustain + (env - sustain) * dec_coef;
        } else if (env_stage == ENV_ATTACK) {
            env += att_step;
            if (env >= 1.0) {
                env = 1.0;
                env_stage = ENV_DECAY;
            }
        } else if (env_stage == ENV_RELEASE) {
            env *= rel_coef;
            if (env < 1e-4) {
                env = 0.0;
                env_stage = ENV_OFF;
            }
        } else if (env_stage == ENV_FADE) {
            env -= fade_step;
            if (env <= 0.0) {
                env = 0.0;
                env_stage = ENV_OFF;
            }
        }
        double out = ring_take(ring, pos, spring - dc) * env;
        pos++;
        out_l[n] += out * gain_l;
        out_r[n] += out * gain_r;
        if (env_stage == ENV_OFF)
            break;
    }

    row[F_STATE] = state;
    row[F_V] = v;
    row[F_TLEFT] = t_left;
    row[F_E] = E;
    row[F_X] = x;
    row[F_XD] = xd;
    row[F_BL_POS] = (double)(pos & RING_MASK);
    row[F_ENV_STAGE] = env_stage;
    row[F_ENV] = env;
    return isfinite(x) && isfinite(xd) && isfinite(v) && fabs(x) < 1e6;
}

/* spikesynth.engine._render_voices: every sounding slot renders start..stop-1 into the mix;
 * a voice whose state blew up is cleared. Returns the number of such resets. */
long render_voices(double *restrict V, uint64_t *restrict rng, long n_slots,
                   double *restrict mix_l, double *restrict mix_r, long start, long stop)
{
    long resets = 0;
    for (long i = 0; i < n_slots; i++) {
        if (V[i * N_FIELDS + F_ENV_STAGE] == ENV_OFF)
            continue;
        if (!voice_run(V, i, rng, mix_l, mix_r, start, stop)) {
            for (long k = 0; k < N_FIELDS; k++)
                V[i * N_FIELDS + k] = 0.0;
            resets++;
        }
    }
    return resets;
}

/* The benchmark's driver: frames start..stop-1 rendered in blocks of `block` samples, as the
 * engine renders a run of blocks without events. */
long render_blocks(double *restrict V, uint64_t *restrict rng, long n_slots,
                   double *restrict mix_l, double *restrict mix_r, long start, long stop,
                   long block)
{
    long resets = 0;
    for (long pos = start; pos < stop; pos += block) {
        long end = pos + block < stop ? pos + block : stop;
        resets += render_voices(V, rng, n_slots, mix_l, mix_r, pos, end);
    }
    return resets;
}
