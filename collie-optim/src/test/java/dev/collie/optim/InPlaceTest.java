package dev.collie.optim;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

class InPlaceTest {
    @Test
    void columnSquaredSumsEqualTheDirectSumOverBlocksAndARemainder() {
        Nd4j.getRandom().setSeed(3);
        for (int rows : new int[] {1, 7, 256, 600}) {
            INDArray g = Nd4j.randn(DataType.DOUBLE, rows, 5);
            double[] want = new double[5];
            double[][] v = g.toDoubleMatrix();
            for (double[] row : v) {
                for (int j = 0; j < 5; j++) {
                    want[j] += row[j] * row[j];
                }
            }
            assertTrue(Drive.maxDiff(InPlace.columnSquaredSums(g), want) < 1e-12, rows + " rows");
        }
    }
}
