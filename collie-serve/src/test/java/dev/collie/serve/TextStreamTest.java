package dev.collie.serve;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TextStreamTest {
    @Test
    void holdsBackAnUnfinishedCharacterUntilItCompletes() {
        TextStream s = new TextStream(List.of());
        assertEquals("ab", s.next("ab"));
        assertEquals("", s.next("ab\uFFFD"));
        assertEquals("", s.next("ab\uFFFD\uFFFD"));
        assertEquals("\u00e9x", s.next("ab\u00e9x"));
        assertEquals("", s.next("ab\u00e9x\uD83D"));
        assertEquals("\uD83D\uDE00", s.next("ab\u00e9x\uD83D\uDE00"));
    }

    @Test
    void neverSendsAStopStringOrWhatFollowsIt() {
        TextStream s = new TextStream(List.of("END", "\n\n"));
        assertEquals("hello ", s.next("hello E"));
        assertEquals("", s.next("hello EN"));
        assertEquals("ENt", s.next("hello ENt"));
        assertEquals("", s.next("hello ENt\n"));
        assertEquals("", s.next("hello ENt\n\n more"));
        assertEquals("hello ENt", s.sent());
        assertEquals("", s.finish("hello ENt"));
    }

    @Test
    void finishSendsWhatWasHeldBack() {
        TextStream s = new TextStream(List.of("stop"));
        assertEquals("a", s.next("a\uFFFD"));
        assertEquals("\uFFFD", s.finish("a\uFFFD"));
        TextStream t = new TextStream(List.of("stop"));
        assertEquals("go ", t.next("go st"));
        assertEquals("st", t.finish("go st"));
    }
}
