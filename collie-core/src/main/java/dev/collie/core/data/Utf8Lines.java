package dev.collie.core.data;

import dev.collie.core.CollieException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Reads a data file line by line as strict UTF-8 (a leading byte-order mark dropped), with 1-based line numbers. */
public final class Utf8Lines {
    /** Receives each line with its number. */
    @FunctionalInterface
    public interface LineConsumer {
        void line(String line, int lineNo) throws IOException;
    }

    private Utf8Lines() {
    }

    /** Feeds every line of {@code in} to {@code consumer}; invalid UTF-8 is an error naming {@code file} and the line. */
    public static void read(InputStream in, Path file, LineConsumer consumer) throws IOException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        BufferedReader reader = new BufferedReader(new InputStreamReader(in, decoder), 1 << 16);
        int lineNo = 0;
        while (true) {
            String line;
            try {
                line = reader.readLine();
            } catch (CharacterCodingException e) {
                throw new CollieException(file + ":" + (lineNo + 1) + ": not valid UTF-8 text", e);
            }
            if (line == null) {
                return;
            }
            lineNo++;
            if (lineNo == 1 && line.startsWith("\uFEFF")) {
                line = line.substring(1);
            }
            consumer.line(line, lineNo);
        }
    }
}
