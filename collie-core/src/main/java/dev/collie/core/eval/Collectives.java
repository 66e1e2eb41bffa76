package dev.collie.core.eval;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The three collectives metrics (and evaluators) gather with: a sum of statistics, a maximum, and texts in rank
 * order.
 */
public final class Collectives {
    private Collectives() {
    }

    /**
     * The element-wise sum of every rank's {@code local} (each rank passes the same length). Counts travel as
     * doubles, exact up to 2^53.
     */
    public static double[] sum(Communicator group, double[] local) {
        if (group.size() == 1) {
            return local.clone();
        }
        INDArray a = Nd4j.createFromArray(local.clone());
        group.allReduce(a, ReduceOp.SUM);
        return a.toDoubleVector();
    }

    /** The largest of every rank's {@code local}. */
    public static long max(Communicator group, long local) {
        if (group.size() == 1) {
            return local;
        }
        INDArray a = Nd4j.createFromArray(new long[] {local});
        group.allReduce(a, ReduceOp.MAX);
        return a.getLong(0);
    }

    /** Every rank's {@code local} texts, concatenated in rank order, on every rank. */
    public static List<String> gather(Communicator group, List<String> local) {
        if (group.size() == 1) {
            return List.copyOf(local);
        }
        int n = group.size();
        long[] counts = everyRanks(group, local.size());
        List<byte[]> encoded = new ArrayList<>(local.size());
        long[] lengths = new long[Math.toIntExact(Arrays.stream(counts).max().orElse(0))];
        for (int i = 0; i < local.size(); i++) {
            byte[] b = local.get(i).getBytes(StandardCharsets.UTF_8);
            encoded.add(b);
            lengths[i] = b.length;
        }
        // every rank's text lengths, padded to the most texts a rank has
        INDArray allLengths = Nd4j.create(DataType.INT64, (long) n * lengths.length);
        if (lengths.length > 0) {
            group.allGather(Nd4j.createFromArray(lengths), allLengths);
        }
        long[] byteCounts = new long[n];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < counts[r]; i++) {
                byteCounts[r] += allLengths.getLong((long) r * lengths.length + i);
            }
        }
        int width = Math.toIntExact(Arrays.stream(byteCounts).max().orElse(0));
        byte[] mine = new byte[width];
        int at = 0;
        for (byte[] b : encoded) {
            System.arraycopy(b, 0, mine, at, b.length);
            at += b.length;
        }
        byte[] all = new byte[n * width];
        if (width > 0) {
            INDArray out = Nd4j.create(DataType.BYTE, all.length);
            group.allGather(Nd4j.createFromArray(mine), out);
            all = out.data().asBytes();
        }
        List<String> texts = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            int pos = r * width;
            for (int i = 0; i < counts[r]; i++) {
                int len = Math.toIntExact(allLengths.getLong((long) r * lengths.length + i));
                texts.add(new String(all, pos, len, StandardCharsets.UTF_8));
                pos += len;
            }
        }
        return texts;
    }

    /** Every rank's {@code local} value, in rank order. */
    private static long[] everyRanks(Communicator group, long local) {
        INDArray out = Nd4j.create(DataType.INT64, group.size());
        group.allGather(Nd4j.createFromArray(new long[] {local}), out);
        return out.toLongVector();
    }
}
