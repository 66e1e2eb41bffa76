package dev.collie.core;

/**
 * Something held until {@link #close()} (parameters gathered from their ZeRO-3 owners, a matmul precision): a
 * try-with-resources block whose close throws nothing checked. Closing twice releases once.
 */
@FunctionalInterface
public interface Scope extends AutoCloseable {
    /** A scope that holds nothing. */
    Scope NONE = () -> { };

    @Override
    void close();

    /** A scope that runs {@code release} at its first close only. */
    static Scope once(Runnable release) {
        return new Scope() {
            private boolean open = true;

            @Override
            public synchronized void close() {
                if (open) {
                    open = false;
                    release.run();
                }
            }
        };
    }
}
