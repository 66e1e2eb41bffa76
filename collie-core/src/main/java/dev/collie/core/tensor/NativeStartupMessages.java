package dev.collie.core.tensor;

import java.util.Map;

/**
 * Quiets three start-up messages of the native libraries under collie that tell a user nothing they can act on:
 * JavaCPP's "versions do not match" (ND4J's OpenBLAS presets are 1.5.7, JavaCPP 1.5.10 for oneDNN 3.3; the whole
 * test suite runs with them), DJL's CUDA probe (the tokenizer never runs on a GPU, yet DJL warns twice on every
 * machine with a CUDA runtime and no driver) and DJL's platform notice.
 *
 * <p>JavaCPP's messages are routed to SLF4J (instead of raw stderr), and for the {@code slf4j-simple} binding those
 * three loggers are set to show errors only. A property the user has already set is left as it is; with another
 * binding (Logback, Log4j 2) set the loggers named in {@link #LOGGERS} in its configuration.
 */
public final class NativeStartupMessages {
    /** Logger name → the level collie gives it under slf4j-simple. */
    public static final Map<String, String> LOGGERS = Map.of(
            "org.bytedeco.javacpp.Loader", "error",
            "ai.djl.util.cuda.CudaUtils", "error",
            "ai.djl.util.Platform", "warn");

    private NativeStartupMessages() {
    }

    /** Call before JavaCPP or DJL load (Backends.configure and HfTokenizer.load do); repeated calls are free. */
    public static void quiet() {
        setIfAbsent("org.bytedeco.javacpp.logger", "slf4j");
        LOGGERS.forEach((logger, level) -> setIfAbsent("org.slf4j.simpleLogger.log." + logger, level));
    }

    private static void setIfAbsent(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }
}
