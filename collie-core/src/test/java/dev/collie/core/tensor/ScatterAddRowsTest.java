package dev.collie.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A repeated row's updates are summed in the order they come, whatever the threads: the token embedding's gradient
 * is the same bits in every run (ND4J's scatter summed them in thread order, 1.9e-9 apart between two backward
 * passes of one batch of 8 × 64 tokens with two threads).
 */
class ScatterAddRowsTest {

    @Test
    void repeatedRowsAreSummedInTheOrderOfTheUpdates() {
        Random r = new Random(7);
        int n = 512;
        int cols = 96;
        long[] ids = new long[n];
        float[][] upd = new float[n][cols];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(40);                      // many repeats
            for (int j = 0; j < cols; j++) {
                upd[i][j] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(6) - 3));
            }
        }
        float[][] start = new float[40][cols];
        for (float[] row : start) {
            for (int j = 0; j < cols; j++) {
                row[j] = (float) r.nextGaussian();
            }
        }
        float[][] expect = new float[40][];
        for (int k = 0; k < 40; k++) {
            expect[k] = start[k].clone();
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < cols; j++) {
                expect[(int) ids[i]][j] += upd[i][j];
            }
        }
        int threads = Backends.opThreads();
        try {
            for (int t : new int[] {1, 2}) {
                Backends.setOpThreads(t);
                for (Kernels k : new Kernels[] {Kernels.get(), Nd4jKernels.INSTANCE}) {
                    INDArray target = Nd4j.createFromArray(start);
                    k.scatterAddRows(target, Nd4j.createFromArray(ids), Nd4j.createFromArray(upd));
                    assertArrayEquals(expect, target.toFloatMatrix(), k.getClass().getSimpleName() + ", " + t);
                }
            }
            // float64 (the gradient checks' type) in the same order
            double[][] expect64 = new double[40][cols];
            for (int k = 0; k < 40; k++) {
                for (int j = 0; j < cols; j++) {
                    expect64[k][j] = start[k][j];
                }
            }
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < cols; j++) {
                    expect64[(int) ids[i]][j] += upd[i][j];
                }
            }
            INDArray d = Nd4j.createFromArray(start).castTo(DataType.DOUBLE);
            Kernels.get().scatterAddRows(d, Nd4j.createFromArray(ids), Nd4j.createFromArray(upd).castTo(DataType.DOUBLE));
            assertArrayEquals(expect64, d.toDoubleMatrix());
        } finally {
            Backends.setOpThreads(threads);
        }
    }
}
