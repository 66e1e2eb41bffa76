package dev.collie.parallel.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.dist.SingleProcessCommunicator;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class SingleProcessCommunicatorTest {
    @Test
    void everyCollectiveIsAnIdentityOrACopy() {
        Communicator c = new SingleProcessCommunicator();
        INDArray a = Nd4j.createFromArray(1.5, -2.0);
        for (ReduceOp op : ReduceOp.values()) {
            c.allReduce(a, op);
        }
        assertArrayEquals(new double[] {1.5, -2.0}, a.toDoubleVector());
        INDArray out = Nd4j.create(DataType.DOUBLE, 2);
        c.reduceScatter(a, out, ReduceOp.SUM);
        assertArrayEquals(a.toDoubleVector(), out.toDoubleVector());
        INDArray g = Nd4j.create(DataType.DOUBLE, 2);
        c.allGather(a, g);
        assertArrayEquals(a.toDoubleVector(), g.toDoubleVector());
        c.broadcast(a, 0);
        c.barrier();
        assertSame(c, c.subGroup(new int[] {0}));
        assertEquals(1, c.size());
    }

    @Test
    void sendToSelfIsReceivedAndAnEmptyRecvFailsAtOnce() {
        Communicator c = new SingleProcessCommunicator();
        c.send(Nd4j.createFromArray(3L, 4L), 0, 9);
        INDArray into = Nd4j.create(DataType.INT64, 2);
        c.recv(into, 0, 9);
        assertArrayEquals(new long[] {3, 4}, into.toLongVector());
        assertEquals(16, c.bytesSent());
        assertThrows(CollieException.class, () -> c.recv(into, 0, 9));
        assertThrows(IllegalArgumentException.class, () -> c.broadcast(into, 1));
    }
}
