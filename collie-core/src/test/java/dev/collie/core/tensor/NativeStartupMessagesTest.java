package dev.collie.core.tensor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class NativeStartupMessagesTest {

    @Test
    void quietsTheThreeLoggersUnderSlf4jSimpleAndLeavesAUsersChoice() {
        String userSet = "org.slf4j.simpleLogger.log.ai.djl.util.Platform";
        String before = System.getProperty(userSet);
        System.setProperty(userSet, "debug");
        try {
            NativeStartupMessages.quiet();
            assertEquals("slf4j", System.getProperty("org.bytedeco.javacpp.logger"));
            assertEquals("error", System.getProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils"));
            assertEquals("error", System.getProperty("org.slf4j.simpleLogger.log.org.bytedeco.javacpp.Loader"));
            assertEquals("debug", System.getProperty(userSet), "a level the user set is kept");
        } finally {
            if (before == null) {
                System.clearProperty(userSet);
            } else {
                System.setProperty(userSet, before);
            }
        }
    }
}
