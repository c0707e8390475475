// The optimizers' update on the GPU: every parameter in one launch.
//
// device_optim.py compiles this file with NVRTC (cupy.RawModule) after "#define T float"
// (or double); the tests compile it for the host too, as device_sampling.cu. The update
// is optim.py's (read it there: RMSprop._numpy_update, Adam._numpy_update), written for
// one element; what is new is reaching every parameter from one grid. The K parameters,
// their state and their gradients are K separate arrays, so the kernel takes tables of
// their addresses (p[k], v[k], g[k]) and where each starts in one flat numbering of all
// their elements (start[k], start[K] = the total): thread i updates element i - start[k]
// of the parameter k whose range holds i.

typedef unsigned long long u64;

#define GRID_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)

// the k with start[k] <= i < start[k + 1], by bisection over the K + 1 starts
__device__ inline int owner(const long long* start, int K, long long i) {
    int lo = 0, hi = K;                      // start[lo] <= i < start[hi]
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (start[mid] <= i) lo = mid; else hi = mid;
    }
    return lo;
}

// RMSprop: g <- scale g (+ λ p); v <- ρ v + (1 - ρ) g²; p <- p - lr g / (√v + ε)
extern "C" __global__ void rmsprop_update(const u64* p_at, const u64* v_at, const u64* g_at,
                                          const long long* start, int K, T scale, T l2, T lr,
                                          T rho, T one_minus_rho, T eps) {
    GRID_LOOP(i, start[K]) {
        int k = owner(start, K, i);
        long long j = i - start[k];
        T* p = (T*)p_at[k];
        T* v = (T*)v_at[k];
        T g = ((const T*)g_at[k])[j] * scale;
        if (l2 != T(0)) g = g + l2 * p[j];
        T vj = v[j] * rho + g * g * one_minus_rho;
        v[j] = vj;
        p[j] = p[j] - g / (sqrt(vj) + eps) * lr;
    }
}

// Adam (AdamW with decay < 1): p <- decay p; g <- scale g (+ λ p); m <- β1 m + (1 - β1) g;
// v <- β2 v + (1 - β2) g²; p <- p - step_size m / (√v / root_bc2 + ε)   (torch's order)
extern "C" __global__ void adam_update(const u64* p_at, const u64* m_at, const u64* v_at,
                                       const u64* g_at, const long long* start, int K, T scale,
                                       T decay, T l2, T beta1, T one_minus_beta1, T beta2,
                                       T one_minus_beta2, T eps, T step_size, T root_bc2) {
    GRID_LOOP(i, start[K]) {
        int k = owner(start, K, i);
        long long j = i - start[k];
        T* p = (T*)p_at[k];
        T* m = (T*)m_at[k];
        T* v = (T*)v_at[k];
        T g = ((const T*)g_at[k])[j] * scale;
        if (l2 != T(0)) g = g + l2 * p[j];
        T pj = decay != T(1) ? p[j] * decay : p[j];
        T mj = m[j] * beta1 + g * one_minus_beta1;
        T vj = v[j] * beta2 + g * g * one_minus_beta2;
        m[j] = mj;
        v[j] = vj;
        p[j] = pj - mj / (sqrt(vj) / root_bc2 + eps) * step_size;
    }
}
