// Generation on the GPU, one character per pass of these kernels, drawn on the device.
//
// device_sampling.py compiles this file with NVRTC (cupy.RawModule) after a
// prelude of #defines: T (float or double), the gate blocks' positions (GATE_I, GATE_F,
// GATE_G, GATE_O of the LSTM; GATE_R, GATE_Z, GATE_N of the GRU, from nn/gates.py and
// nn/gru.py). The tests compile the same file for the host, where blockIdx and friends
// are zeros and ones, so every grid-stride loop below runs each index in turn.
//
// One character, for N rows (each row its own sample) and L layers:
//
//   draw         z (N, V) -> ids (N,): the next char of each row (softmax, temperature,
//                top-k, top-p; or argmax), written at out[n, step[n]]
//   for l < L:   partial_products: part (N, S, GH) = slices of [x | h] [Wx ; Wh]
//                <cell>_cell: a = base + Σ_s part; the cell's update of h (and c), in place
//   partial_products over h of the top layer and Wy, then logits: z = by + Σ_s part
//
// Layer 0 reads its input sums from a table (V, GH), E Wx0 + b or Wx0 + b, one row per
// char (base + ids[n] * GH); the layers above read their bias (base, lookup = 0). A row
// of a layer's product is cut into S slices of rows of [Wx ; Wh]: the first sx cover Wx
// (the input), the rest Wh (the state), so the GRU can keep x Wx and h Wh apart.

typedef unsigned long long u64;

#define GRID_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)

__device__ inline T sigma(T x) { return T(0.5) * tanh(T(0.5) * x) + T(0.5); }   // σ, never overflows

// rows [k0, k1) of slice s of S slices over K rows
__device__ inline void slice_rows(int s, int S, int K, int* k0, int* k1) {
    int per = (K + S - 1) / S;
    *k0 = s * per < K ? s * per : K;
    *k1 = *k0 + per < K ? *k0 + per : K;
}

// part[n][s][col] = Σ_{k in slice s} v[n][k] W[k][col], v|W = x|Wx for s < sx, else h|Wh.
// Thread i owns one (n, s, col): consecutive threads read consecutive columns of W.
extern "C" __global__ void partial_products(const T* x, const T* Wx, int D, int sx,
                                            const T* h, const T* Wh, int H, int S,
                                            int cols, int N, T* part) {
    GRID_LOOP(i, (long long)N * S * cols) {
        int col = (int)(i % cols);
        int s = (int)((i / cols) % S);
        int n = (int)(i / ((long long)cols * S));
        const T* v = s < sx ? x + (long long)n * D : h + (long long)n * H;
        const T* W = s < sx ? Wx : Wh;
        int k0, k1;
        if (s < sx) slice_rows(s, sx, D, &k0, &k1); else slice_rows(s - sx, S - sx, H, &k0, &k1);
        T acc = 0;
        for (int k = k0; k < k1; ++k) acc += v[k] * W[(long long)k * cols + col];
        part[i] = acc;
    }
}

// the input sums of column col of row n: the table's row for the char, or the bias
__device__ inline T base_of(const T* base, const int* ids, int lookup, int n, long long GH,
                            long long col) {
    return lookup ? base[(long long)ids[n] * GH + col] : base[col];
}

// Σ over slices [s0, s1) of part, at (n, col)
__device__ inline T sum_slices(const T* part, int s0, int s1, int S, long long GH, int n,
                               long long col) {
    T acc = 0;
    for (int s = s0; s < s1; ++s) acc += part[((long long)n * S + s) * GH + col];
    return acc;
}

// The LSTM (nn/lstm.py): a = base + Σ part (N, 4H); i, f, o = σ(a_·), g = tanh(a_g);
// c̃ = f c + i g; h̃ = o tanh(c̃); then zoneout by its rates zc, zh (nn/zoneout.py; 0 when
// off: c = c̃, h = h̃): c = zc c + (1 - zc) c̃, h = zh h + (1 - zh) h̃.
// Thread (n, j) reads and writes only its own c, h.
extern "C" __global__ void lstm_cell(const T* part, int S, const T* base, const int* ids,
                                     int lookup, int H, int N, T zc, T zh, T* h, T* c) {
    GRID_LOOP(i, (long long)N * H) {
        int n = (int)(i / H), j = (int)(i % H);
        long long GH = 4LL * H;
        T a[4];
        for (int g = 0; g < 4; ++g)
            a[g] = base_of(base, ids, lookup, n, GH, (long long)g * H + j)
                 + sum_slices(part, 0, S, S, GH, n, (long long)g * H + j);
        T ig = sigma(a[GATE_I]), fg = sigma(a[GATE_F]), gg = tanh(a[GATE_G]), og = sigma(a[GATE_O]);
        T ct = fg * c[i] + ig * gg;
        T ht = og * tanh(ct);
        c[i] = zc * c[i] + ((T)1 - zc) * ct;
        h[i] = zh * h[i] + ((T)1 - zh) * ht;
    }
}

// The GRU (nn/gru.py): ax = base + Σ_{s < sx} part, ah = bh + Σ_{s >= sx} part (N, 3H);
// r = σ(ax_r + ah_r), z = σ(ax_z + ah_z), n = tanh(ax_n + r ah_n), h = (1 - z) n + z h.
extern "C" __global__ void gru_cell(const T* part, int S, int sx, const T* base, const int* ids,
                                    int lookup, const T* bh, int H, int N, T zh, T* h) {
    GRID_LOOP(i, (long long)N * H) {
        int n = (int)(i / H), j = (int)(i % H);
        long long GH = 3LL * H;
        T ax[3], ah[3];
        for (int g = 0; g < 3; ++g) {
            long long col = (long long)g * H + j;
            ax[g] = base_of(base, ids, lookup, n, GH, col) + sum_slices(part, 0, sx, S, GH, n, col);
            ah[g] = bh[col] + sum_slices(part, sx, S, S, GH, n, col);
        }
        T r = sigma(ax[GATE_R] + ah[GATE_R]), z = sigma(ax[GATE_Z] + ah[GATE_Z]);
        T nt = tanh(ax[GATE_N] + r * ah[GATE_N]);
        T ht = (T(1) - z) * nt + z * h[i];
        h[i] = zh * h[i] + ((T)1 - zh) * ht;               // zoneout by its rate (0: off)
    }
}

// The vanilla RNN (nn/rnn.py): h = tanh(base + Σ part).
extern "C" __global__ void rnn_cell(const T* part, int S, const T* base, const int* ids,
                                    int lookup, int H, int N, T zh, T* h) {
    GRID_LOOP(i, (long long)N * H) {
        int n = (int)(i / H), j = (int)(i % H);
        T ht = tanh(base_of(base, ids, lookup, n, H, j) + sum_slices(part, 0, S, S, H, n, j));
        h[i] = zh * h[i] + ((T)1 - zh) * ht;               // zoneout by its rate (0: off)
    }
}

// z (N, V) = by + Σ_s part
extern "C" __global__ void logits(const T* part, int S, const T* by, int V, int N, T* z) {
    GRID_LOOP(i, (long long)N * V) {
        int n = (int)(i / V), v = (int)(i % V);
        z[i] = by[v] + sum_slices(part, 0, S, S, V, n, v);
    }
}

// -- the draw ------------------------------------------------------------------------------

__device__ inline u64 mulhi64(u64 a, u64 b) {
#ifdef __CUDA_ARCH__
    return __umul64hi(a, b);
#else
    return (u64)(((unsigned __int128)a * b) >> 64);
#endif
}

// The host's generator, PCG64 (O'Neill 2014; NumPy's default_rng): a 128-bit LCG,
// state <- state M + inc, whose output is the state's two halves xor-ed and rotated
// by its top 6 bits (XSL-RR). rng.random(N) gives row k of step t the uniform of the
// LCG's (tN + k + 1)-th state, so each row keeps its own state, which the host starts
// at step k + 1 (PCG64.advance), and steps N states at a time: state <- state A + C,
// (A, C) the LCG of N steps, also from the host.
struct u128 { u64 hi, lo; };

__device__ inline u128 mul_add(u128 s, u128 a, u128 c) {    // s a + c mod 2^128
    u128 r;
    r.lo = s.lo * a.lo;
    r.hi = mulhi64(s.lo, a.lo) + s.lo * a.hi + s.hi * a.lo;
    u64 lo = r.lo + c.lo;
    r.hi += c.hi + (lo < r.lo);
    r.lo = lo;
    return r;
}

__device__ inline u64 xsl_rr(u128 s) {
    u64 x = s.hi ^ s.lo;
    unsigned rot = (unsigned)(s.hi >> 58);
    return (x >> rot) | (x << ((64 - rot) & 63));
}

// this row's uniform in [0, 1), as NumPy's random(): the output's top 53 bits; then
// the row's state moves on N states
__device__ inline double next_uniform(u64* state, u128 a, u128 c) {
    u128 s = {state[0], state[1]};
    double u = (double)(xsl_rr(s) >> 11) * (1.0 / 9007199254740992.0);
    s = mul_add(s, a, c);
    state[0] = s.hi; state[1] = s.lo;
    return u;
}

// n uniforms of one row from state (hi, lo), stepping (A, C) each time: for the
// tests, which hold them against NumPy's
extern "C" __global__ void pcg64_uniforms(u64* state, u64 a_hi, u64 a_lo, u64 c_hi, u64 c_lo,
                                          long long n, double* out) {
    GRID_LOOP(i, 1) {
        u128 a = {a_hi, a_lo}, c = {c_hi, c_lo};
        for (long long k = 0; k < n; ++k) out[k] = next_uniform(state, a, c);
    }
}

// A key whose unsigned order is the order of the doubles (sign flipped in, -0 = +0).
__device__ inline u64 order_key(double x) {
    union { double d; u64 u; } v;
    v.d = x + 0.0;
    return (v.u >> 63) ? ~v.u : (v.u | 0x8000000000000000ULL);
}

// The key of the k-th largest (k >= 1) of z[0..V): a radix select, one pass per bit,
// so 64 V steps for any k (a sort would be V log V, but needs memory per row).
__device__ inline u64 kth_largest_key(const T* z, int V, int k) {
    u64 prefix = 0;
    for (int bit = 63; bit >= 0; --bit) {
        u64 high = ~0ULL << bit, want = prefix | (1ULL << bit);
        int count = 0;
        for (int v = 0; v < V; ++v) count += (order_key((double)z[v]) & high) == want;
        if (count >= k) prefix = want; else k -= count;
    }
    return prefix;
}

// Σ of the weights w[v] >= 0 whose bits (as u64: ordered as the weights) exceed t
__device__ inline double mass_above(const double* w, int V, u64 t) {
    double mass = 0;
    for (int v = 0; v < V; ++v) {
        union { double d; u64 u; } b;
        b.d = w[v];
        if (b.u > t) mass += w[v];
    }
    return mass;
}

// Top-p (sampling.nucleus): keep the fewest most likely chars whose weight reaches
// top_p of the total, ties taken lower id first; zero the rest. The most likely chars,
// in order, come first: a char is kept when the weight ahead of it is < P = top_p total.
// So every weight above the smallest kept weight w* is kept, and w* is the smallest
// weight with mass_above(w*) < P: found bit by bit, as the largest t where it is not.
__device__ inline void nucleus(double* w, int V, double top_p) {
    double total = 0;
    for (int v = 0; v < V; ++v) total += w[v];
    double P = top_p * total;
    u64 t = 0;                                 // mass_above(t) >= P for every t <= this
    for (int bit = 63; bit >= 0; --bit) {
        u64 candidate = t | (1ULL << bit);
        if (mass_above(w, V, candidate) >= P) t = candidate;
    }
    u64 w_star = t + 1;                        // the bits of w*
    double ahead = mass_above(w, V, w_star);   // the weight ahead of w*'s first tie
    for (int v = 0; v < V; ++v) {
        union { double d; u64 u; } b;
        b.d = w[v];
        if (b.u == w_star) {                   // a tie at w*: kept while the mass ahead < P
            if (ahead < P) ahead += w[v]; else w[v] = 0;
        } else if (b.u < w_star) {
            w[v] = 0;
        }
    }
}

// The next char of each row n: argmax z (greedy), or drawn from the weights
// exp((z - max z) / temperature) (sampling.next_char_weights: z below the k-th largest
// dropped, then the nucleus only) by the inverse CDF with the row's uniform u: the first
// v whose cumulative weight exceeds u times the total (sampling.draw_rows), u from the
// row's PCG64 state (rng (N, 2): hi, lo). w (N, V) is scratch; top_k >= V and top_p >= 1
// filter nothing.
extern "C" __global__ void draw(const T* z, int V, int N, int greedy, double temperature,
                                int top_k, double top_p, u64* rng, u64 a_hi, u64 a_lo,
                                u64 c_hi, u64 c_lo, long long* step, int* ids, int* out,
                                long long out_len, double* w) {
    GRID_LOOP(n, N) {
        const T* zn = z + n * (long long)V;
        double* wn = w + n * (long long)V;
        int pick = 0;
        for (int v = 1; v < V; ++v) if (zn[v] > zn[pick]) pick = v;       // the first max
        if (!greedy) {
            double z_max = (double)zn[pick];
            u64 cutoff = top_k < V ? kth_largest_key(zn, V, top_k) : 0;
            for (int v = 0; v < V; ++v)
                wn[v] = order_key((double)zn[v]) >= cutoff ? exp(((double)zn[v] - z_max) / temperature) : 0.0;
            if (top_p < 1) nucleus(wn, V, top_p);
            double total = 0;
            for (int v = 0; v < V; ++v) total += wn[v];
            u128 a = {a_hi, a_lo}, c = {c_hi, c_lo};
            double target = next_uniform(rng + 2 * n, a, c) * total;
            double cum = 0;
            pick = 0;
            for (int v = 0; v < V; ++v) { cum += wn[v]; pick += cum <= target; }
            pick = pick < V - 1 ? pick : V - 1;
        }
        ids[n] = pick;
        if (step[n] < out_len) out[n * out_len + step[n]] = pick;
        step[n] += 1;
    }
}
