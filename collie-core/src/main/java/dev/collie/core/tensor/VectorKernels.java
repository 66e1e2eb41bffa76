package dev.collie.core.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.bytedeco.javacpp.BytePointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Element-wise kernels in one pass each, written with the Vector API ({@code jdk.incubator.vector}: AVX-512, AVX2 or
 * NEON, whatever the CPU's widest is) straight on ND4J's off-heap float32 buffers: RMSNorm and its backward, SiLU·b and
 * its backward, rotary embedding, softmax and its backward, cross-entropy with its gradient, and the optimizers'
 * updates (AdamW reads and writes each of its four arrays once; ND4J's path makes nine passes). Loaded only where the
 * JVM has the module ({@code --add-modules jdk.incubator.vector}, see {@link VectorSupport}); float64 arrays, views
 * with gaps and anything else go to the wrapped kernels unchanged, so every parity test in float64 runs as before.
 * Each product and sum is rounded as the wrapped kernels round it where their order allows; sums over a row use
 * vector lanes (a different order, within a few ulps of the float64 result).
 */
final class VectorKernels extends ForwardingKernels {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Elements per ByteBuffer window of an element-wise pass (a direct buffer holds at most 2³¹ − 1 bytes). */
    private static final int CHUNK = 1 << 28;
    /** Rows of weight-gradient partial sums kept in float32 before they are added into the float64 total. */
    private static final int FLUSH_ROWS = 32;

    VectorKernels(Kernels wrapped) {
        super(wrapped);
    }

    /** The SIMD width in use, e.g. "512-bit". */
    static String width() {
        return F.vectorBitSize() + "-bit";
    }

    // ---- which arrays are computed here -----------------------------------------------------------------------

    /** FLOAT, non-empty, its elements one c-ordered run (a view of whole rows qualifies). */
    private static boolean ok(INDArray x) {
        return x != null && x.dataType() == DataType.FLOAT && x.length() > 0 && Nd4jKernels.isDense(x);
    }

    private static boolean ok(INDArray... xs) {
        long n = xs[0].length();
        for (INDArray x : xs) {
            if (!ok(x) || x.length() != n) {
                return false;
            }
        }
        return true;
    }

    /** {@link #ok} and small enough for one buffer window. */
    private static boolean okRows(INDArray... xs) {
        return ok(xs) && xs[0].length() <= CHUNK;
    }

    /** A direct buffer over elements {@code [from, from + len)} of {@code a} (FLOAT, dense). */
    private static ByteBuffer bytes(INDArray a, long from, int len) {
        long start = (a.offset() + from) * Float.BYTES;
        BytePointer p = new BytePointer(a.data().addressPointer());
        p.capacity(start + (long) len * Float.BYTES).position(start).limit(start + (long) len * Float.BYTES);
        return p.asByteBuffer().order(ORDER);
    }

    /** A pass over one window of arrays of one length: {@code w[k]} is array k's window of {@code len} elements. */
    private interface Window {
        void run(ByteBuffer[] w, int len);
    }

    /**
     * Runs {@code pass} over each window of at most {@link #CHUNK} elements of {@code arrays} (FLOAT, dense, one
     * length): the element-wise passes' one place for buffer windows.
     */
    private static void inWindows(Window pass, INDArray... arrays) {
        long length = arrays[0].length();
        ByteBuffer[] w = new ByteBuffer[arrays.length];
        for (long from = 0; from < length; from += CHUNK) {
            int len = (int) Math.min(CHUNK, length - from);
            for (int k = 0; k < arrays.length; k++) {
                w[k] = bytes(arrays[k], from, len);
            }
            pass.run(w, len);
        }
    }

    private static ByteBuffer bytes(INDArray a) {
        return bytes(a, 0, (int) a.length());
    }

    private static FloatVector load(ByteBuffer b, int i) {
        return FloatVector.fromByteBuffer(F, b, i * Float.BYTES, ORDER);
    }

    private static void store(FloatVector v, ByteBuffer b, int i) {
        v.intoByteBuffer(b, i * Float.BYTES, ORDER);
    }

    private static float get(ByteBuffer b, int i) {
        return b.getFloat(i * Float.BYTES);
    }

    private static void put(ByteBuffer b, int i, float v) {
        b.putFloat(i * Float.BYTES, v);
    }

    private static int vectorEnd(int from, int n) {
        return from + (n - n % L);
    }

    // ---- deterministic building blocks --------------------------------------------------------------------------
    // The Vector API's own EXP and ADD reduction may give other bits in compiled code (SVML, a tree of adds) than in
    // the interpreter or C1 (per-lane Math.exp, a loop), so the first calls of a run would round differently from the
    // later ones and two backward passes of the same batch would differ. exp and lane sums here use only IEEE
    // operations (add, mul, fma, shifts), which every tier computes alike.

    private static final float LOG2E = 1.44269504088896341f;
    /** ln 2 split for Cody–Waite reduction: C1 + C2 = ln 2, C1 with few mantissa bits so n·C1 is exact. */
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5·2²³: adding it rounds to an integer held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    /** Below: the result is under float32's smallest normal number, returned as 0. Above: returned as +∞. */
    private static final float EXP_MIN = -87.33f;
    private static final float EXP_MAX = 88.0f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    /** e^x within ~1 ulp (Cephes' expf polynomial); 0 below {@link #EXP_MIN}, +∞ above {@link #EXP_MAX}, NaN kept. */
    static FloatVector exp(FloatVector x) {
        FloatVector t = x.mul(LOG2E).add(ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = x.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
        FloatVector p = FloatVector.broadcast(F, P0).fma(r, FloatVector.broadcast(F, P1))
                .fma(r, FloatVector.broadcast(F, P2)).fma(r, FloatVector.broadcast(F, P3))
                .fma(r, FloatVector.broadcast(F, P4)).fma(r, FloatVector.broadcast(F, P5));
        FloatVector e = p.mul(r.mul(r)).add(r).add(1f);
        FloatVector scale = ((IntVector) t.reinterpretAsInts()).sub(ROUND_BITS - 127)
                .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return e.mul(scale).blend(0f, x.lt(EXP_MIN)).blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, EXP_MAX));
    }

    /** The same operations as {@link #exp(FloatVector)} on one value (a row's tail gets the lanes' bits). */
    static float exp(float x) {
        float t = x * LOG2E + ROUND;
        float n = t - ROUND;
        float r = x - n * LN2_HI - n * LN2_LO;
        float p = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(P0, r, P1), r, P2), r, P3), r, P4), r, P5);
        float e = p * (r * r) + r + 1f;
        float scale = Float.intBitsToFloat((Float.floatToRawIntBits(t) - (ROUND_BITS - 127)) << 23);
        return x < EXP_MIN ? 0f : x > EXP_MAX ? Float.POSITIVE_INFINITY : e * scale;
    }

    /** The lanes added one after another, in float64. */
    private static double laneSum(FloatVector v) {
        double s = 0;
        for (float f : v.toArray()) {
            s += f;
        }
        return s;
    }

    // ---- RMSNorm ---------------------------------------------------------------------------------------------------

    @Override
    public INDArray[] rmsNorm(INDArray x, INDArray weight, double eps) {
        int n = (int) x.size(x.rank() - 1);
        if (!okRows(x) || !ok(weight) || weight.length() != n) {
            return super.rmsNorm(x, weight, eps);
        }
        int rows = (int) (x.length() / n);
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, x.shape());
        INDArray xhat = Nd4j.createUninitialized(DataType.FLOAT, x.shape());
        long[] rstdShape = x.shape().clone();
        rstdShape[rstdShape.length - 1] = 1;
        INDArray rstd = Nd4j.createUninitialized(DataType.FLOAT, rstdShape);
        ByteBuffer xb = bytes(x);
        ByteBuffer wb = bytes(weight);
        ByteBuffer yb = bytes(y);
        ByteBuffer hb = bytes(xhat);
        ByteBuffer rb = bytes(rstd);
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            float rs = (float) (1 / Math.sqrt(sumOfSquares(xb, o, n) / n + eps));
            put(rb, r, rs);
            int i = o;
            int end = vectorEnd(o, n);
            for (; i < end; i += L) {
                FloatVector h = load(xb, i).mul(rs);
                store(h, hb, i);
                store(h.mul(load(wb, i - o)), yb, i);
            }
            for (; i < o + n; i++) {
                float h = get(xb, i) * rs;
                put(hb, i, h);
                put(yb, i, h * get(wb, i - o));
            }
        }
        return new INDArray[] {y, xhat, rstd};
    }

    /** Σ x[o, o + n)² in float32 vector lanes, as a double. */
    private static double sumOfSquares(ByteBuffer b, int o, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = o;
        int end = vectorEnd(o, n);
        for (; i < end; i += L) {
            FloatVector v = load(b, i);
            acc = v.fma(v, acc);
        }
        double s = laneSum(acc);
        for (; i < o + n; i++) {
            float v = get(b, i);
            s += v * v;
        }
        return s;
    }

    @Override
    public INDArray[] rmsNormBackward(INDArray dy, INDArray xhat, INDArray rstd, INDArray weight,
                                      boolean needWeightGrad) {
        int n = (int) dy.size(dy.rank() - 1);
        if (!okRows(dy, xhat) || !ok(weight) || weight.length() != n || !ok(rstd) || rstd.length() * n != dy.length()) {
            return super.rmsNormBackward(dy, xhat, rstd, weight, needWeightGrad);
        }
        int rows = (int) (dy.length() / n);
        INDArray dx = Nd4j.createUninitialized(DataType.FLOAT, dy.shape());
        ByteBuffer db = bytes(dy);
        ByteBuffer hb = bytes(xhat);
        ByteBuffer rb = bytes(rstd);
        ByteBuffer wb = bytes(weight);
        ByteBuffer xb = bytes(dx);
        float[] part = needWeightGrad ? new float[n] : null;
        double[] total = needWeightGrad ? new double[n] : null;
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            int end = vectorEnd(o, n);
            // c = mean((dy·w)·xhat)
            FloatVector acc = FloatVector.zero(F);
            int i = o;
            for (; i < end; i += L) {
                acc = load(db, i).mul(load(wb, i - o)).fma(load(hb, i), acc);
            }
            double s = laneSum(acc);
            for (; i < o + n; i++) {
                s += get(db, i) * get(wb, i - o) * get(hb, i);
            }
            float c = (float) (s / n);
            float rs = get(rb, r);
            // dx = (dy·w − xhat·c)·rstd; dw += dy·xhat
            for (i = o; i < end; i += L) {
                FloatVector d = load(db, i);
                FloatVector h = load(hb, i);
                store(d.mul(load(wb, i - o)).sub(h.mul(c)).mul(rs), xb, i);
                if (part != null) {
                    FloatVector.fromArray(F, part, i - o).add(d.mul(h)).intoArray(part, i - o);
                }
            }
            for (; i < o + n; i++) {
                float d = get(db, i);
                float h = get(hb, i);
                put(xb, i, (d * get(wb, i - o) - h * c) * rs);
                if (part != null) {
                    part[i - o] += d * h;
                }
            }
            if (part != null && ((r + 1) % FLUSH_ROWS == 0 || r == rows - 1)) {
                for (int j = 0; j < n; j++) {
                    total[j] += part[j];
                }
                Arrays.fill(part, 0f);
            }
        }
        INDArray dw = null;
        if (needWeightGrad) {
            float[] w = new float[n];
            for (int j = 0; j < n; j++) {
                w[j] = (float) total[j];
            }
            dw = Nd4j.createFromArray(w);
        }
        return new INDArray[] {dx, dw};
    }

    // ---- SwiGLU ----------------------------------------------------------------------------------------------------

    @Override
    public INDArray siluMul(INDArray a, INDArray b) {
        if (!ok(a, b)) {
            return super.siluMul(a, b);
        }
        INDArray out = Nd4j.createUninitialized(DataType.FLOAT, a.shape());
        inWindows((w, len) -> siluMul(w[0], w[1], w[2], len), a, b, out);
        return out;
    }

    /** {@code 1 / (1 + exp(−x))}, rounded as ND4J's sigmoid rounds it. */
    private static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(F, 1f).div(exp(x.neg()).add(1f));
    }

    private static void siluMul(ByteBuffer ab, ByteBuffer bb, ByteBuffer ob, int n) {
        int i = 0;
        int end = vectorEnd(0, n);
        for (; i < end; i += L) {
            FloatVector x = load(ab, i);
            FloatVector sig = sigmoid(x);
            store(sig.mul(x).mul(load(bb, i)), ob, i);
        }
        for (; i < n; i++) {
            float x = get(ab, i);
            float sig = 1f / (1f + exp(-x));
            put(ob, i, sig * x * get(bb, i));
        }
    }

    @Override
    public INDArray[] siluMulBackward(INDArray dy, INDArray a, INDArray b) {
        if (!ok(dy, a, b)) {
            return super.siluMulBackward(dy, a, b);
        }
        INDArray da = Nd4j.createUninitialized(DataType.FLOAT, a.shape());
        INDArray db = Nd4j.createUninitialized(DataType.FLOAT, a.shape());
        inWindows((w, len) -> siluMulBackward(w[0], w[1], w[2], w[3], w[4], len), dy, a, b, da, db);
        return new INDArray[] {da, db};
    }

    /** {@code db = dy·silu(a)}, {@code da = (sig + silu·(1 − sig))·dy·b}, rounded in that order (as ND4J's path). */
    private static void siluMulBackward(ByteBuffer dyb, ByteBuffer ab, ByteBuffer bb, ByteBuffer dab, ByteBuffer dbb,
                                        int n) {
        int i = 0;
        int end = vectorEnd(0, n);
        for (; i < end; i += L) {
            FloatVector x = load(ab, i);
            FloatVector d = load(dyb, i);
            FloatVector sig = sigmoid(x);
            FloatVector silu = x.mul(sig);
            store(d.mul(silu), dbb, i);
            FloatVector dsilu = sig.neg().add(1f).mul(silu).add(sig);
            store(dsilu.mul(d).mul(load(bb, i)), dab, i);
        }
        for (; i < n; i++) {
            float x = get(ab, i);
            float d = get(dyb, i);
            float sig = 1f / (1f + exp(-x));
            float silu = x * sig;
            put(dbb, i, d * silu);
            put(dab, i, ((1f - sig) * silu + sig) * d * get(bb, i));
        }
    }

    // ---- rotary ----------------------------------------------------------------------------------------------------

    @Override
    public INDArray rotary(INDArray x, INDArray cos, INDArray sin, int heads, RotaryPairs pairs, boolean inverse) {
        if (pairs != RotaryPairs.HALVES || x.rank() != 2 || !ok(cos, sin) || x.dataType() != DataType.FLOAT
                || x.length() > CHUNK) {
            return super.rotary(x, cos, sin, heads, pairs, inverse);
        }
        INDArray rows = Nd4jKernels.rotaryRows(x, cos, sin, heads);   // checks the shapes; dense rows
        int width = (int) x.size(1);
        int d = width / heads;
        int half = d / 2;
        INDArray out = Nd4j.createUninitialized(DataType.FLOAT, x.shape());
        ByteBuffer xb = bytes(rows);
        ByteBuffer cb = bytes(cos);
        ByteBuffer sb = bytes(sin);
        ByteBuffer ob = bytes(out);
        boolean inv = inverse;
        int blocks = (int) (x.length() / d);   // (row, head) pairs
        for (int h = 0; h < blocks; h++) {
            int a0 = h * d;
            int b0 = a0 + half;
            int i = 0;
            int end = half - half % L;
            for (; i < end; i += L) {
                FloatVector xa = load(xb, a0 + i);
                FloatVector xbv = load(xb, b0 + i);
                FloatVector ta = xa.mul(load(cb, a0 + i));
                FloatVector tb = xbv.mul(load(cb, b0 + i));
                FloatVector sa = xbv.mul(load(sb, a0 + i));
                FloatVector sbv = xa.mul(load(sb, b0 + i));
                store(inv ? ta.add(sa) : ta.sub(sa), ob, a0 + i);
                store(inv ? tb.sub(sbv) : tb.add(sbv), ob, b0 + i);
            }
            for (; i < half; i++) {
                float xa = get(xb, a0 + i);
                float xv = get(xb, b0 + i);
                float ta = xa * get(cb, a0 + i);
                float tb = xv * get(cb, b0 + i);
                float sa = xv * get(sb, a0 + i);
                float sv = xa * get(sb, b0 + i);
                put(ob, a0 + i, inv ? ta + sa : ta - sa);
                put(ob, b0 + i, inv ? tb - sv : tb + sv);
            }
        }
        return out;
    }

    // ---- softmax ---------------------------------------------------------------------------------------------------

    @Override
    public INDArray softmax(INDArray x) {
        if (!okRows(x)) {
            return super.softmax(x);
        }
        int n = (int) x.size(x.rank() - 1);
        int rows = (int) (x.length() / n);
        INDArray out = Nd4j.createUninitialized(DataType.FLOAT, x.shape());
        ByteBuffer xb = bytes(x);
        ByteBuffer ob = bytes(out);
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            float max = max(xb, o, n);
            float sum = expShifted(xb, ob, o, n, max);
            scale(ob, o, n, 1f / sum);
        }
        return out;
    }

    /** Each row's visible keys only: max, exponentials and their sum over them; zeros written over the hidden ones. */
    @Override
    public INDArray causalSoftmaxInPlace(INDArray scores, int t, int window) {
        int tk = (int) scores.size(scores.rank() - 1);
        if (!okRows(scores) || t < 1 || t > tk || scores.length() % ((long) t * tk) != 0) {
            return super.causalSoftmaxInPlace(scores, t, window);
        }
        int rows = (int) (scores.length() / tk);
        int past = tk - t;
        ByteBuffer b = bytes(scores);
        for (int r = 0; r < rows; r++) {
            int i = r % t;
            int o = r * tk;
            int from = CausalMask.firstVisible(i, past, window);
            int to = past + i + 1;
            float max = max(b, o + from, to - from);
            float sum = expShifted(b, b, o + from, to - from, max);
            scale(b, o + from, to - from, 1f / sum);
            zero(b, o, from);
            zero(b, o + to, tk - to);
        }
        return scores;
    }

    private static void zero(ByteBuffer b, int o, int n) {
        FloatVector z = FloatVector.zero(F);
        int i = o;
        int end = vectorEnd(o, n);
        for (; i < end; i += L) {
            store(z, b, i);
        }
        for (; i < o + n; i++) {
            put(b, i, 0f);
        }
    }

    private static float max(ByteBuffer b, int o, int n) {
        int i = o;
        int end = vectorEnd(o, n);
        float m = Float.NEGATIVE_INFINITY;
        if (end > o) {
            FloatVector acc = load(b, i);
            for (i += L; i < end; i += L) {
                acc = acc.max(load(b, i));
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < o + n; i++) {
            m = Math.max(m, get(b, i));
        }
        return m;
    }

    /** {@code out[i] = exp(x[i] − shift)} over the row; returns their sum (float32 lanes). */
    private static float expShifted(ByteBuffer xb, ByteBuffer ob, int o, int n, float shift) {
        FloatVector acc = FloatVector.zero(F);
        int i = o;
        int end = vectorEnd(o, n);
        for (; i < end; i += L) {
            FloatVector e = exp(load(xb, i).sub(shift));
            store(e, ob, i);
            acc = acc.add(e);
        }
        float s = (float) laneSum(acc);
        for (; i < o + n; i++) {
            float e = exp(get(xb, i) - shift);
            put(ob, i, e);
            s += e;
        }
        return s;
    }

    private static void scale(ByteBuffer b, int o, int n, float c) {
        int i = o;
        int end = vectorEnd(o, n);
        for (; i < end; i += L) {
            store(load(b, i).mul(c), b, i);
        }
        for (; i < o + n; i++) {
            put(b, i, get(b, i) * c);
        }
    }

    @Override
    public INDArray softmaxBackward(INDArray p, INDArray dp) {
        if (!okRows(p, dp)) {
            return super.softmaxBackward(p, dp);
        }
        int n = (int) p.size(p.rank() - 1);
        int rows = (int) (p.length() / n);
        INDArray dx = Nd4j.createUninitialized(DataType.FLOAT, p.shape());
        ByteBuffer pb = bytes(p);
        ByteBuffer gb = bytes(dp);
        ByteBuffer xb = bytes(dx);
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            int end = vectorEnd(o, n);
            FloatVector acc = FloatVector.zero(F);
            int i = o;
            for (; i < end; i += L) {
                acc = load(pb, i).fma(load(gb, i), acc);
            }
            float s = (float) laneSum(acc);
            for (; i < o + n; i++) {
                s += get(pb, i) * get(gb, i);
            }
            for (i = o; i < end; i += L) {
                store(load(gb, i).sub(s).mul(load(pb, i)), xb, i);
            }
            for (; i < o + n; i++) {
                put(xb, i, (get(gb, i) - s) * get(pb, i));
            }
        }
        return dx;
    }

    // ---- cross-entropy ---------------------------------------------------------------------------------------------

    /**
     * Per row: the maximum, the exponentials (written over the logits when the gradient is wanted) and their sum, then
     * the gradient {@code (p − onehot)·gradScale/valid} scaled in place: the row is read from memory once and stays in
     * cache for the rest. The loss is {@code max + log Σ − x[target]} per row, summed in float64.
     */
    @Override
    public INDArray[] crossEntropy(INDArray logits, INDArray targets, long ignoreIndex, boolean needGrad,
                                   double gradScale) {
        if (logits.rank() != 2 || !okRows(logits)) {
            return super.crossEntropy(logits, targets, ignoreIndex, needGrad, gradScale);
        }
        int n = (int) logits.size(0);
        int v = (int) logits.size(1);
        long[] t = targets.reshape(targets.length()).toLongVector();
        long[] valid = Nd4jKernels.validRows(t, ignoreIndex);
        float rowScale = valid.length > 0 ? (float) (gradScale / valid.length) : 0f;
        ByteBuffer xb = bytes(logits);
        double loss = 0;
        for (int r = 0; r < n; r++) {
            int o = r * v;
            boolean counted = t[r] != ignoreIndex;
            if (counted && (t[r] < 0 || t[r] >= v)) {
                throw new IllegalArgumentException("target " + t[r] + " of row " + r + " is outside the vocabulary [0, "
                        + v + ")");
            }
            float max = max(xb, o, v);
            float target = counted ? get(xb, o + (int) t[r]) : 0f;
            float sum;
            if (needGrad) {
                sum = expShifted(xb, xb, o, v, max);
                if (counted) {
                    scale(xb, o, v, rowScale / sum);
                    put(xb, o + (int) t[r], get(xb, o + (int) t[r]) - rowScale);
                } else {
                    scale(xb, o, v, 0f);
                }
            } else {
                sum = sumExpShifted(xb, o, v, max);
            }
            if (counted) {
                loss += max + Math.log(sum) - target;
            }
        }
        double mean = valid.length > 0 ? loss / valid.length : Double.NaN;
        return new INDArray[] {Nd4j.scalar(DataType.FLOAT, mean), needGrad ? logits : null};
    }

    private static float sumExpShifted(ByteBuffer xb, int o, int n, float shift) {
        FloatVector acc = FloatVector.zero(F);
        int i = o;
        int end = vectorEnd(o, n);
        for (; i < end; i += L) {
            acc = acc.add(exp(load(xb, i).sub(shift)));
        }
        float s = (float) laneSum(acc);
        for (; i < o + n; i++) {
            s += exp(get(xb, i) - shift);
        }
        return s;
    }

    // ---- optimizer updates -----------------------------------------------------------------------------------------

    @Override
    public void scaleSubtract(INDArray x, double c, INDArray y) {
        if (!ok(x, y)) {
            super.scaleSubtract(x, c, y);
            return;
        }
        float k = (float) c;
        inWindows((w, len) -> {
            ByteBuffer xb = w[0];
            ByteBuffer yb = w[1];
            int i = 0;
            int end = vectorEnd(0, len);
            for (; i < end; i += L) {
                store(load(xb, i).mul(k).sub(load(yb, i)), xb, i);
            }
            for (; i < len; i++) {
                put(xb, i, get(xb, i) * k - get(yb, i));
            }
        }, x, y);
    }

    /**
     * One pass: {@code m ← β1·m + (1−β1)·g}, {@code v ← β2·v + (1−β2)·g²},
     * {@code θ ← θ·(1 − lr·wd) − α·m/(sqrt(v) + ε')} with {@code α = lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)} and
     * {@code ε' = ε·sqrt(1−β2ᵗ)} (PyTorch's rule rearranged as libnd4j's updater does); the gradient is only read.
     */
    @Override
    public void adamW(INDArray param, INDArray grad, INDArray m, INDArray v, AdamWStep s) {
        if (!ok(param, grad, m, v)) {
            super.adamW(param, grad, m, v, s);
            return;
        }
        double bc2 = 1 - Math.pow(s.beta2(), s.step());
        float b1 = (float) s.beta1();
        float c1 = (float) (1 - s.beta1());
        float b2 = (float) s.beta2();
        float c2 = (float) (1 - s.beta2());
        float alpha = (float) (s.lr() * Math.sqrt(bc2) / (1 - Math.pow(s.beta1(), s.step())));
        float eps = (float) (s.eps() * Math.sqrt(bc2));
        float decay = (float) (1 - s.lr() * s.weightDecay());
        inWindows((w, len) -> {
            ByteBuffer pb = w[0];
            ByteBuffer gb = w[1];
            ByteBuffer mb = w[2];
            ByteBuffer vb = w[3];
            int i = 0;
            int end = vectorEnd(0, len);
            for (; i < end; i += L) {
                FloatVector g = load(gb, i);
                FloatVector mv = load(mb, i).mul(b1).add(g.mul(c1));
                FloatVector vv = load(vb, i).mul(b2).add(g.mul(g).mul(c2));
                store(mv, mb, i);
                store(vv, vb, i);
                FloatVector u = mv.mul(alpha).div(vv.sqrt().add(eps));
                store(load(pb, i).mul(decay).sub(u), pb, i);
            }
            for (; i < len; i++) {
                float g = get(gb, i);
                float mv = get(mb, i) * b1 + g * c1;
                float vv = get(vb, i) * b2 + g * g * c2;
                put(mb, i, mv);
                put(vb, i, vv);
                put(pb, i, get(pb, i) * decay - mv * alpha / ((float) Math.sqrt(vv) + eps));
            }
        }, param, grad, m, v);
    }

    /** One pass over (θ, g, m, v, n, −g_prev) in the order of ND4J's path's roundings (products, then sums). */
    @Override
    public void adan(INDArray param, INDArray grad, INDArray m, INDArray v, INDArray n, INDArray negPre, AdanStep s) {
        if (!ok(param, grad, m, v, n, negPre)) {
            super.adan(param, grad, m, v, n, negPre, s);
            return;
        }
        float b1 = (float) s.beta1();
        float c1 = (float) (1 - s.beta1());
        float b2 = (float) s.beta2();
        float c2 = (float) (1 - s.beta2());
        float b3 = (float) s.beta3();
        float c3 = (float) (1 - s.beta3());
        float sqrtBc3 = (float) Math.sqrt(1 - Math.pow(s.beta3(), s.step()));
        float eps = (float) s.eps();
        float a1 = (float) (s.lr() / (1 - Math.pow(s.beta1(), s.step())));
        float a2 = (float) (s.lr() * s.beta2() / (1 - Math.pow(s.beta2(), s.step())));
        boolean decayFirst = s.noProx() && s.weightDecay() != 0;
        boolean decayAfter = !s.noProx() && s.weightDecay() != 0;
        float decay = (float) (1 - s.lr() * s.weightDecay());
        float prox = (float) (1 + s.lr() * s.weightDecay());
        boolean first = s.step() == 1;
        inWindows((w, len) -> {
            ByteBuffer pb = w[0];
            ByteBuffer gb = w[1];
            ByteBuffer mb = w[2];
            ByteBuffer vb = w[3];
            ByteBuffer nb = w[4];
            ByteBuffer qb = w[5];
            int i = 0;
            int end = vectorEnd(0, len);
            for (; i < end; i += L) {
                FloatVector g = load(gb, i);
                FloatVector diff = first ? FloatVector.zero(F) : load(qb, i).add(g);
                FloatVector mv = load(mb, i).mul(b1).add(g.mul(c1));
                FloatVector vv = load(vb, i).mul(b2).add(diff.mul(c2));
                FloatVector u = diff.mul(b2).add(g);
                FloatVector nv = load(nb, i).mul(b3).add(u.mul(u).mul(c3));
                FloatVector denom = nv.sqrt().div(sqrtBc3).add(eps);
                FloatVector p = load(pb, i);
                if (decayFirst) {
                    p = p.mul(decay);
                }
                p = p.sub(mv.div(denom).mul(a1)).sub(vv.div(denom).mul(a2));
                if (decayAfter) {
                    p = p.div(prox);
                }
                store(mv, mb, i);
                store(vv, vb, i);
                store(nv, nb, i);
                store(p, pb, i);
                store(g.neg(), qb, i);
            }
            for (; i < len; i++) {
                float g = get(gb, i);
                float diff = first ? 0f : get(qb, i) + g;
                float mv = get(mb, i) * b1 + g * c1;
                float vv = get(vb, i) * b2 + diff * c2;
                float u = diff * b2 + g;
                float nv = get(nb, i) * b3 + u * u * c3;
                float denom = (float) Math.sqrt(nv) / sqrtBc3 + eps;
                float p = decayFirst ? get(pb, i) * decay : get(pb, i);
                p = p - mv / denom * a1 - vv / denom * a2;
                put(mb, i, mv);
                put(vb, i, vv);
                put(nb, i, nv);
                put(pb, i, decayAfter ? p / prox : p);
                put(qb, i, -g);
            }
        }, param, grad, m, v, n, negPre);
    }

    @Override
    public void sophiaG(INDArray param, INDArray grad, INDArray m, INDArray h, double lr, double beta1, double rhoBs,
                        double weightDecay) {
        if (!ok(param, grad, m, h)) {
            super.sophiaG(param, grad, m, h, lr, beta1, rhoBs, weightDecay);
            return;
        }
        float b1 = (float) beta1;
        float c1 = (float) (1 - beta1);
        float scale = (float) rhoBs;
        float step = (float) lr;
        float decay = (float) (1 - lr * weightDecay);
        boolean decays = weightDecay != 0;
        inWindows((w, len) -> {
            ByteBuffer pb = w[0];
            ByteBuffer gb = w[1];
            ByteBuffer mb = w[2];
            ByteBuffer hb = w[3];
            int i = 0;
            int end = vectorEnd(0, len);
            for (; i < end; i += L) {
                // fused multiply-adds where ND4J's path calls BLAS axpy (y + a·x in one rounding): a parameter that
                // takes the other path (a view with gaps) rounds the same, and Sophia's clip and sign would
                // otherwise turn a last-bit difference of m into a step of lr
                FloatVector mv = load(gb, i).fma(FloatVector.broadcast(F, c1), load(mb, i).mul(b1));
                FloatVector ratio = mv.abs().div(load(hb, i).mul(scale).add(1e-15f)).min(1f);
                FloatVector p = load(pb, i);
                if (decays) {
                    p = p.mul(decay);
                }
                store(ratio.mul(sign(mv)).fma(FloatVector.broadcast(F, -step), p), pb, i);
                store(mv, mb, i);
            }
            for (; i < len; i++) {
                float mv = Math.fma(get(gb, i), c1, get(mb, i) * b1);
                float ratio = Math.min(Math.abs(mv) / (get(hb, i) * scale + 1e-15f), 1f);
                float p = decays ? get(pb, i) * decay : get(pb, i);
                put(pb, i, Math.fma(ratio * Math.signum(mv), -step, p));
                put(mb, i, mv);
            }
        }, param, grad, m, h);
    }

    /** −1, 0 or 1 by the sign of each lane, NaN for NaN (as {@link Math#signum(float)}). */
    private static FloatVector sign(FloatVector c) {
        return FloatVector.broadcast(F, 1f).blend(-1f, c.lt(0f)).blend(0f, c.eq(0f))
                .blend(Float.NaN, c.test(VectorOperators.IS_NAN));
    }

    @Override
    public void lion(INDArray param, INDArray grad, INDArray m, double lr, double beta1, double beta2,
                     double weightDecay) {
        if (!ok(param, grad, m)) {
            super.lion(param, grad, m, lr, beta1, beta2, weightDecay);
            return;
        }
        float b1 = (float) beta1;
        float c1 = (float) (1 - beta1);
        float b2 = (float) beta2;
        float c2 = (float) (1 - beta2);
        float step = (float) lr;
        float decay = (float) (1 - lr * weightDecay);
        boolean decays = weightDecay != 0;
        inWindows((w, len) -> {
            ByteBuffer pb = w[0];
            ByteBuffer gb = w[1];
            ByteBuffer mb = w[2];
            int i = 0;
            int end = vectorEnd(0, len);
            for (; i < end; i += L) {
                FloatVector g = load(gb, i);
                FloatVector mv = load(mb, i);
                FloatVector c = mv.mul(b1).add(g.mul(c1));
                FloatVector p = load(pb, i);
                if (decays) {
                    p = p.mul(decay);
                }
                store(p.sub(sign(c).mul(step)), pb, i);   // θ − lr·sign(c)
                store(mv.mul(b2).add(g.mul(c2)), mb, i);
            }
            for (; i < len; i++) {
                float g = get(gb, i);
                float mv = get(mb, i);
                float c = mv * b1 + g * c1;
                float p = decays ? get(pb, i) * decay : get(pb, i);
                put(pb, i, p - Math.signum(c) * step);
                put(mb, i, mv * b2 + g * c2);
            }
        }, param, grad, m);
    }
}
