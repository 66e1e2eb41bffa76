package dev.collie.parallel.testing;

import dev.collie.core.tensor.Backends;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * {@code @ExtendWith(OneOpThread.class)}: one ND4J op thread per rank thread while the test class runs (the ranks of
 * an in-JVM test share the machine), all processors again afterwards.
 */
public final class OneOpThread implements BeforeAllCallback, AfterAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) {
        Backends.setOpThreads(1);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        Backends.setOpThreads(Runtime.getRuntime().availableProcessors());
    }
}
