package dev.collie.core.tensor;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4jBackend;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendsTest {

    @Test
    void noBackendNamesTheRuntimeArtifactAndTheDriver() {
        // what ND4J throws when collie-cuda is on a machine without a driver and collie-cpu is absent
        Throwable nd4j = new ExceptionInInitializerError(new RuntimeException(
                new Nd4jBackend.NoAvailableBackendException("Please ensure that you have an nd4j backend")));
        RuntimeException e = Backends.noBackend(nd4j);
        assertInstanceOf(CollieException.class, e);
        assertTrue(e.getMessage().contains("dev.collie:collie-cpu"), e.getMessage());
        assertTrue(e.getMessage().contains("libcuda.so.1"), e.getMessage());
        assertSame(nd4j, e.getCause());
    }

    @Test
    void otherStartFailuresPassThrough() {
        IllegalArgumentException other = new IllegalArgumentException("threads must be positive");
        assertSame(other, Backends.noBackend(other));
    }
}
